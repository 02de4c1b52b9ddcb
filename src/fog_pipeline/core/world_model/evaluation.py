"""Fidelity of the global world model on held-out (validation) episodes.

- Open-loop rollouts driven by the recorded actions: per-step MSE and PSNR of imagined
  vs real frames, beside the copy-the-last-frame baseline on the same windows. Few pixels
  change per step at low resolution, so whole-frame numbers flatter copy-last; the error
  on the pixels that really changed, as a ratio to copy-last's, shows the dynamics.
- The proprioceptive state along the same rollouts: per-step MSE of G's predicted state
  against the recorded one, beside holding the last state.
- The reward model on real transitions: MAE of the reward and of the progress label
  (and of predicting the training mean), success accuracy and AUROC.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from fog_pipeline.core.device import autocast
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.world_model.frames import to_model, to_uint8
from fog_pipeline.core.world_model.model import WorldModel

CHANGED_PIXEL_THRESHOLD = 0.05  # in [0, 1] intensity: what counts as "this pixel moved"


def _psnr(mse: np.ndarray) -> float:
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); None with one class."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    for end in range(1, len(scores) + 1):  # average ranks over ties
        if end == len(scores) or sorted_scores[end] != sorted_scores[start]:
            ranks[order[start:end]] = (start + end + 1) / 2
            start = end
    u = ranks[labels].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


@torch.no_grad()
def open_loop_rollouts(
    model: WorldModel,
    data: TrainingSet,
    horizon: int,
    n_windows: int,
    seed: int,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Imagine ``horizon`` frames from real contexts of validation episodes.

    Returns ``(real, imagined, state_errors)``: frames as float arrays in [0, 1], real
    (n, L + horizon, H, W, 3) with the context first, imagined (n, horizon, H, W, 3);
    ``state_errors`` (n, horizon, 2) holds the squared error of G's state (summed over P)
    and of holding the last context state, per window and step (zeros when P = 0).
    """
    context = model.context
    starts = data.window_starts("val", context + horizon)
    if len(starts) == 0:
        raise ValueError(
            f"No validation segment holds {context + horizon} steps for a {horizon}-step "
            "open-loop rollout: lower world_model.evaluation.horizons or record longer episodes."
        )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(starts, size=min(n_windows, len(starts)), replace=False))
    windows = data.windows(chosen, context + horizon)
    generator = torch.Generator(device).manual_seed(seed)
    imagined, state_errors = [], []
    for begin in range(0, len(chosen), batch_size):
        batch = slice(begin, begin + batch_size)
        frames = to_model(windows["frames"][batch]).to(device)
        actions = torch.as_tensor(windows["actions"][batch], device=device)
        states = torch.as_tensor(windows["state"][batch], device=device)
        context_frames, context_states = frames[:, :context], states[:, :context]
        steps, errors = [], []
        for k in range(horizon):
            with autocast(device, precision):
                out = model.step(
                    context_frames, actions[:, k : k + context], context_states, generator=generator
                )
            frame, state = out.frame.float(), out.state.float()
            truth = states[:, context + k]
            errors.append(
                torch.stack(
                    [
                        (state - truth).square().sum(-1),
                        (states[:, context - 1] - truth).square().sum(-1),
                    ],
                    dim=-1,
                )
            )
            steps.append(frame)
            context_frames = torch.cat([context_frames[:, 1:], frame[:, None]], dim=1)
            context_states = torch.cat([context_states[:, 1:], state[:, None]], dim=1)
        imagined.append(to_uint8(torch.stack(steps, dim=1).cpu()))
        state_errors.append(torch.stack(errors, dim=1).cpu().numpy())
    real = windows["frames"].astype(np.float32) / 255.0
    imagined_frames = np.concatenate(imagined).astype(np.float32) / 255.0
    return real, imagined_frames, np.concatenate(state_errors)


def frame_fidelity(
    real: np.ndarray,
    imagined: np.ndarray,
    context: int,
    state_errors: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-step errors of imagined frames and of copy-last-frame, on the same windows, and
    of G's proprioceptive state and of holding the last one (``state_errors`` from
    :func:`open_loop_rollouts`; left out when None or P = 0)."""
    horizon = imagined.shape[1]
    truth = real[:, context:]
    last_seen = real[:, context - 1 : context]
    model_err = (imagined - truth) ** 2
    copy_err = (last_seen - truth) ** 2
    moved = np.abs(truth - last_seen).max(axis=-1, keepdims=True) > CHANGED_PIXEL_THRESHOLD
    per_step = []
    for k in range(horizon):
        model_mse = model_err[:, k].mean(axis=(1, 2, 3))
        copy_mse = copy_err[:, k].mean(axis=(1, 2, 3))
        mask = np.broadcast_to(moved[:, k], model_err[:, k].shape)
        changed = mask.sum()
        state_entry = {}
        if state_errors is not None and state_errors.any():
            state_entry = {
                "state_mse": float(state_errors[:, k, 0].mean()),
                "state_mse_hold_last": float(state_errors[:, k, 1].mean()),
            }
        per_step.append(
            {
                **state_entry,
                "k": k + 1,
                "mse": float(model_mse.mean()),
                "mse_copy_last": float(copy_mse.mean()),
                "psnr": _psnr(model_mse),
                "psnr_copy_last": _psnr(copy_mse),
                "changed_pixel_share": float(changed / mask.size),
                "changed_pixel_error_ratio": (
                    float(model_err[:, k][mask].mean() / copy_err[:, k][mask].mean())
                    if changed
                    else math.nan
                ),
            }
        )
    return {"per_step": per_step}


@torch.no_grad()
def reward_fidelity(
    model: WorldModel, data: TrainingSet, device: torch.device, batch_size: int = 256
) -> dict[str, Any]:
    """Reward-model errors on every real validation transition (the recorded next frames
    and state, so that only the reward model is measured)."""
    frames_needed = model.reward_model.config.frames
    # Windows of R + 1 steps: the labels logged after a_t describe frames[t + 1].
    starts = data.window_starts("val", frames_needed + 1)
    columns: dict[str, list[np.ndarray]] = {
        key: [] for key in ("reward", "progress", "success_prob", "rewards", "labels", "flags")
    }
    for begin in range(0, len(starts), batch_size):
        window = data.windows(starts[begin : begin + batch_size], frames_needed + 1)
        frames = to_model(window["frames"][:, 1:]).to(device)
        state = torch.as_tensor(window["state"][:, -1], device=device)
        out = model.reward_model(frames, state if model.state_dim else None)
        columns["reward"].append(out.reward.float().cpu().numpy())
        columns["progress"].append(out.progress.float().cpu().numpy())
        columns["success_prob"].append(torch.sigmoid(out.success_logit.float()).cpu().numpy())
        columns["rewards"].append(window["rewards"][:, -2])
        columns["labels"].append(window["progress"][:, -2])
        columns["flags"].append(window["success"][:, -2])
    joined = {key: np.concatenate(values) for key, values in columns.items()}
    predicted, label = joined["reward"], joined["rewards"]
    success_prob, success = joined["success_prob"], joined["flags"].astype(bool)
    stats = data.meta["stats"]
    return {
        "transitions": len(label),
        "reward_mae": float(np.abs(predicted - label).mean()),
        "reward_mae_predict_mean": float(np.abs(stats["reward_mean"] - label).mean()),
        "progress_mae": float(np.abs(joined["progress"] - joined["labels"]).mean()),
        "progress_mae_predict_mean": float(
            np.abs(stats["progress_mean"] - joined["labels"]).mean()
        ),
        "success_positives": int(success.sum()),
        "success_accuracy": float(((success_prob > 0.5) == success).mean()),
        "success_auroc": auroc(success_prob, success),
    }


def rollout_figure(real: np.ndarray, imagined: np.ndarray, context: int, rows: int = 4):
    """Rows of real vs imagined frames (last context frame, then each imagined step)."""
    rows = min(rows, len(real))
    horizon = imagined.shape[1]
    figure = Figure(figsize=(0.9 * (horizon + 1), 0.95 * 2 * rows))
    axes = figure.subplots(2 * rows, horizon + 1, squeeze=False)
    for r in range(rows):
        for c in range(horizon + 1):
            for offset, source in ((0, "real"), (1, "imagined")):
                ax = axes[2 * r + offset, c]
                if c == 0:
                    image = real[r, context - 1]
                elif source == "real":
                    image = real[r, context + c - 1]
                else:
                    image = imagined[r, c - 1]
                ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(f"{source}\n#{r}", fontsize=7)
                if r == 0 and offset == 0:
                    ax.set_title("context" if c == 0 else f"k={c}", fontsize=7)
    figure.suptitle("World model open-loop rollouts on validation episodes (recorded actions)")
    figure.tight_layout()
    return figure
