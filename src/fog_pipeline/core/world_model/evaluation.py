"""Fidelity of the global world model on held-out (validation) episodes.

- Open-loop rollouts driven by the recorded actions: per-step MSE and PSNR of imagined
  vs real frames, beside the copy-the-last-frame baseline on the same windows. Few pixels
  change per step at low resolution, so whole-frame numbers flatter copy-last; the error
  on the pixels that really changed, as a ratio to copy-last's, shows the dynamics.
- The reward model on real transitions: MAE against the label (and against predicting
  the training mean), success accuracy and AUROC.
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

    Returns ``(real, imagined)`` as float arrays in [0, 1]: real (n, L + horizon, H, W, 3)
    with the context first, imagined (n, horizon, H, W, 3).
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
    imagined = []
    for begin in range(0, len(chosen), batch_size):
        frames = to_model(windows["frames"][begin : begin + batch_size]).to(device)
        actions = torch.as_tensor(windows["actions"][begin : begin + batch_size], device=device)
        context_frames = frames[:, :context]
        steps = []
        for k in range(horizon):
            with autocast(device, precision):
                frame = model.denoiser.sample(
                    context_frames, actions[:, k : k + context], generator=generator
                ).float()
            steps.append(frame)
            context_frames = torch.cat([context_frames[:, 1:], frame[:, None]], dim=1)
        imagined.append(to_uint8(torch.stack(steps, dim=1).cpu()))
    real = windows["frames"].astype(np.float32) / 255.0
    return real, np.concatenate(imagined).astype(np.float32) / 255.0


def frame_fidelity(real: np.ndarray, imagined: np.ndarray, context: int) -> dict[str, Any]:
    """Per-step errors of imagined frames and of copy-last-frame, on the same windows."""
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
        per_step.append(
            {
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
    """Reward-model errors on every real validation transition."""
    frames_needed = model.reward_model.config.frames
    starts = data.window_starts("val", frames_needed)
    predictions, successes, labels, flags = [], [], [], []
    for begin in range(0, len(starts), batch_size):
        window = data.windows(starts[begin : begin + batch_size], frames_needed)
        frames = to_model(window["frames"]).to(device)
        action = torch.as_tensor(window["actions"][:, -2], device=device)
        reward, success_logit = model.reward_model(frames, action)
        predictions.append(reward.float().cpu().numpy())
        successes.append(torch.sigmoid(success_logit.float()).cpu().numpy())
        labels.append(window["rewards"][:, -2])
        flags.append(window["success"][:, -2])
    predicted, label = np.concatenate(predictions), np.concatenate(labels)
    success_prob, success = np.concatenate(successes), np.concatenate(flags)
    train_mean = data.meta["stats"]["reward_mean"]
    return {
        "transitions": len(label),
        "reward_mae": float(np.abs(predicted - label).mean()),
        "reward_mae_predict_mean": float(np.abs(train_mean - label).mean()),
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
