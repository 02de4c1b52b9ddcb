"""How well the surrogate imitates the global world model, on held-out (validation) data.

- latent prediction: the prior's z after k open-loop steps against the posterior's z
  filtered from the real frames (k = 1 is the one-step error), relative to the spread of
  the posterior z (1.0 = no better than predicting the mean);
- reward head MAE against the logged progress label (the reward the policy optimises),
  and the decoded proprioception's error where the robot logs it;
- gradient fidelity: per held-out state, the cosine between the surrogate's directional
  derivative of the next latent with respect to the action and the global model's (finite
  differences of the posterior z of G's next observation, with G's sampler noise held
  fixed, stepped with G's one sampler setting), and the same for the reward: FoG's
  gradient (the reward head at the swapped next state) against G's progress label (full
  action gradients). This is what says whether FoG's gradients point the right way.
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
    proprio = torch.as_tensor(windows["state"]) if model.config.proprio_dim else None
    posteriors, _ = model.observe(frames, actions, sample=False, proprio=proprio)
    target = posteriors.mean  # (B, T, stoch)
    spread = target.var(dim=(0, 1)).sum().clamp_min(1e-8)
    start = posteriors.at(0)
    imagined = model.imagine(start, actions[:, : config.horizon])
    errors = (imagined.z - target[:, 1:]).square().sum(-1).mean(0) / spread
    reward = model.reward(posteriors.at(0), actions[:, 0])
    reward_label = torch.as_tensor(windows["progress"][:, 0])
    frame_mse = model.open_loop_mse(frames, actions, context=1, proprio=proprio)
    proprio_entry = {}
    if proprio is not None:
        decoded = model.decode_proprio(posteriors)
        proprio_entry["proprio_mse"] = float((decoded - proprio).square().sum(-1).mean())
    return {
        **proprio_entry,
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
    states = torch.as_tensor(windows["state"])  # (B, L, P)
    proprio = states if model.config.proprio_dim else None
    generator = torch.Generator().manual_seed(seed)
    batch = frames.shape[0]
    height, width = frames.shape[-2:]
    noise = torch.randn(batch, 3, height, width, generator=generator)
    direction = torch.randn(batch, actions.shape[-1], generator=generator)
    with torch.no_grad():
        posteriors, _ = model.observe(frames, actions[:, :-1], sample=False, proprio=proprio)
    state = posteriors.at(context - 1)
    action = actions[:, -1]

    @torch.no_grad()
    def global_step(a: torch.Tensor):
        context_actions = torch.cat([actions[:, :-1], a[:, None]], dim=1)
        return world_model.step(frames, context_actions, states, noise=noise)

    def global_observation(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = global_step(a)
        return out.frame, out.state if proprio is not None else None

    # FoG's reward gradient: the surrogate's reward head at the swapped next state (G's
    # observation at the evaluated action, the surrogate's Jacobian), against G's
    # progress label by finite differences.
    observed = global_observation(action)

    def surrogate_reward(a: torch.Tensor) -> torch.Tensor:
        return model.swapped_step(state, a, *observed)[1]

    eps = config.finite_difference_eps
    latent = latent_transition_cosine(model, state, action, global_observation, direction, eps)
    reward = gradient_cosine(surrogate_reward, lambda a: global_step(a).progress, action, eps)
    return {"latent_cosine": _summary(latent), "reward_gradient_cosine": _summary(reward)}
