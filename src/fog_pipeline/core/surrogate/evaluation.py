"""How well the surrogate imitates the global world model, on held-out (validation) data.

- latent prediction: the prior's z after k open-loop steps against the posterior's z
  filtered from the real frames (k = 1 is the one-step error), relative to the spread of
  the posterior z (1.0 = no better than predicting the mean);
- reward head MAE against the logged label;
- gradient fidelity: per held-out state, the cosine between the surrogate's directional
  derivative of the next latent with respect to the action and the global model's (finite
  differences of the posterior z of G's next frame, with G's sampler noise held fixed),
  and the same for the reward (full action gradients). This is what says whether FoG's
  gradients point the right way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.surrogate.fidelity import gradient_cosine, latent_transition_cosine
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.world_model.frames import to_model
from fog_pipeline.core.world_model.model import WorldModel


@dataclass
class SurrogateEvaluationConfig:
    __pydantic_config__ = STRICT_KEYS

    windows: Annotated[int, Field(ge=2)] = 64  # held-out windows / states
    horizon: Annotated[int, Field(ge=1)] = 8  # open-loop steps for the multi-step error
    finite_difference_eps: Annotated[float, Field(gt=0)] = 0.05  # in action units


def _summary(values: torch.Tensor) -> dict[str, float]:
    values = values.double().cpu()
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "median": float(values.median()),
        "share_positive": float((values > 0).double().mean()),
    }


def _val_windows(data: TrainingSet, length: int, count: int, seed: int) -> dict[str, np.ndarray]:
    starts = data.window_starts("val", length)
    if len(starts) == 0:
        raise ValueError(f"No validation segment holds {length} steps for the surrogate report.")
    rng = np.random.default_rng(seed)
    return data.windows(np.sort(rng.choice(starts, min(count, len(starts)), replace=False)), length)


@torch.no_grad()
def prediction_errors(
    model: RSSM, data: TrainingSet, config: SurrogateEvaluationConfig, seed: int
) -> dict[str, Any]:
    """Open-loop latent error by step, reward-head MAE, and decoded-frame error."""
    length = 1 + config.horizon
    windows = _val_windows(data, length, config.windows, seed)
    frames = to_model(windows["frames"])
    actions = torch.as_tensor(windows["actions"])
    posteriors, _ = model.observe(frames, actions, sample=False)
    target = posteriors.mean  # (B, T, stoch)
    spread = target.var(dim=(0, 1)).sum().clamp_min(1e-8)
    start = posteriors.at(0)
    imagined = model.imagine(start, actions[:, : config.horizon])
    errors = (imagined.z - target[:, 1:]).square().sum(-1).mean(0) / spread
    reward = model.reward(posteriors.at(0), actions[:, 0])
    reward_label = torch.as_tensor(windows["rewards"][:, 0])
    frame_mse = model.open_loop_mse(frames, actions, context=1)
    return {
        "latent_error_by_step": [float(e) for e in errors],
        "one_step_latent_error": float(errors[0]),
        f"latent_error_k{config.horizon}": float(errors[-1]),
        "reward_mae": float((reward - reward_label).abs().mean()),
        "decoded_frame_mse_k1": float(frame_mse[0]),
        f"decoded_frame_mse_k{config.horizon}": float(frame_mse[-1]),
    }


def gradient_fidelity(
    model: RSSM,
    world_model: WorldModel,
    data: TrainingSet,
    config: SurrogateEvaluationConfig,
    seed: int,
) -> dict[str, Any]:
    """Cosines between surrogate and global-model action derivatives at held-out states."""
    context = world_model.context
    windows = _val_windows(data, context, config.windows, seed)
    frames = to_model(windows["frames"])  # (B, L, 3, H, W)
    actions = torch.as_tensor(windows["actions"])  # a_{t-L+1} .. a_t
    generator = torch.Generator().manual_seed(seed)
    batch = frames.shape[0]
    height, width = frames.shape[-2:]
    noise = torch.randn(batch, 3, height, width, generator=generator)
    direction = torch.randn(batch, actions.shape[-1], generator=generator)
    reward_frames = world_model.reward_model.config.frames
    with torch.no_grad():
        posteriors, _ = model.observe(frames, actions[:, :-1], sample=False)
    state = posteriors.at(context - 1)
    action = actions[:, -1]

    def global_frame(a: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            context_actions = torch.cat([actions[:, :-1], a[:, None]], dim=1)
            return world_model.denoiser.sample(frames, context_actions, noise=noise)

    def global_reward(a: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            history = frames[:, context - reward_frames + 1 :]
            next_frames = torch.cat([history, global_frame(a)[:, None]], dim=1)
            return world_model.reward_model(next_frames, a)[0]

    eps = config.finite_difference_eps
    latent = latent_transition_cosine(model, state, action, global_frame, direction, eps)
    reward = gradient_cosine(lambda a: model.reward(state, a), global_reward, action, eps)
    return {"latent_cosine": _summary(latent), "reward_gradient_cosine": _summary(reward)}
