"""Transitions of the global world model, for distilling the surrogate onto *its* dynamics.

Rollouts start from real contexts and follow smooth random actions (an Ornstein-Uhlenbeck
process, the same kind of motion as the data-collection policy's random segments), so the
surrogate sees the global model both where the data was and where it drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from tqdm.auto import tqdm

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.frames import to_uint8


@dataclass
class RolloutConfig:
    """World-model rollouts for distillation (``surrogate.distillation.rollouts``)."""

    __pydantic_config__ = STRICT_KEYS

    sequences: Annotated[int, Field(ge=1)] = 256
    length: Annotated[int, Field(ge=2)] = 12
    batch_size: Annotated[int, Field(ge=1)] = 32
    action_reversion: Annotated[float, Field(gt=0, le=1)] = 0.15
    action_sigma: Annotated[float, Field(ge=0)] = 0.4
    # G's sampler precision: the one FoG and PPO imagine with (globals.yml).
    precision: Literal["auto", "fp32", "bf16"] = "fp32"


def ou_actions(
    rng: np.random.Generator,
    batch: int,
    length: int,
    action_dim: int,
    reversion: float,
    sigma: float,
) -> np.ndarray:
    """Smooth random actions in [-1, 1]: an Ornstein-Uhlenbeck process from a random start."""
    actions = np.empty((batch, length, action_dim), dtype=np.float32)
    current = rng.uniform(-1, 1, size=(batch, action_dim))
    for t in range(length):
        current = current - reversion * current + sigma * rng.normal(size=current.shape)
        current = np.clip(current, -1.0, 1.0)
        actions[:, t] = current
    return actions


def world_model_rollouts(
    env: WorldModelEnv, config: RolloutConfig, seed: int, progress: bool = True
) -> dict[str, np.ndarray]:
    """Sequences (frames uint8 (N, T, H, W, 3), proprio (N, T, P), actions (N, T, A),
    rewards (N, T): G's progress labels, continues (N, T)) in the layout of the recorded
    data: frames[t] and proprio[t] are seen before actions[t], rewards[t] follows it."""
    rng = np.random.default_rng(seed)
    keys = ("frames", "proprio", "actions", "rewards", "continues")
    out: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    batches = -(-config.sequences // config.batch_size)
    action_dim = len(env.action_low)
    for _ in tqdm(range(batches), desc="world-model rollouts", unit="batch", disable=not progress):
        env.reset()
        actions = ou_actions(
            rng,
            env.num_envs,
            config.length,
            action_dim,
            config.action_reversion,
            config.action_sigma,
        )
        frames, states, rewards, continues = [env.observation], [env.state], [], []
        for t in range(config.length):
            step = env.step(torch.as_tensor(actions[:, t], device=env.device))
            rewards.append(step.reward)
            continues.append(1.0 - step.terminated.float())
            frames.append(step.frame)
            states.append(step.state)
        out["frames"].append(to_uint8(torch.stack(frames[:-1], dim=1).cpu()))
        out["proprio"].append(torch.stack(states[:-1], dim=1).cpu().numpy())
        out["actions"].append(actions)
        out["rewards"].append(torch.stack(rewards, dim=1).cpu().numpy())
        out["continues"].append(torch.stack(continues, dim=1).cpu().numpy())
    return {key: np.concatenate(value)[: config.sequences] for key, value in out.items()}
