"""Data collection as the collect pipeline runs it: its typed parameters, the
data-collection policy they name, and the recording of a whole data set.

The evaluation reads the same parameters: it scores policies on the robot the data was
recorded on, on scene seeds outside the recorded ones, against the collection policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from tqdm.auto import tqdm

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.episodes.recording import (
    ExplorationConfig,
    ExplorationPolicy,
    FaultConfig,
    Policy,
    RandomMotionConfig,
    RandomMotionPolicy,
    inject_fault,
    record_episode,
)
from fog_pipeline.core.episodes.schema import Episode
from fog_pipeline.core.episodes.teleop import PushTTeleoperator, TeleoperatorConfig

_FAULT_STREAM = 2  # keeps the fault draws independent of the scene and policy streams


@dataclass
class CollectParams:
    __pydantic_config__ = STRICT_KEYS

    n_episodes: Annotated[int, Field(ge=1)] = 200
    max_steps: Annotated[int, Field(ge=1)] = 100
    # Steps recorded after the first success with the operator's hands off (zero action):
    # the frames that show the task done, which the success head learns from. Below
    # episodes.cleaning.frozen_min_run: a still scene must not look like a frozen camera.
    settle_steps: Annotated[int, Field(ge=0)] = 3
    # Scene seeds are first_env_seed .. first_env_seed + n_episodes - 1; the evaluation
    # pipeline uses seeds outside this range.
    first_env_seed: Annotated[int, Field(ge=0)] = 0
    backend: str = "pusht"
    backend_options: dict[str, Any] = field(default_factory=dict)
    # Who drives the robot while recording: the teleoperator stand-in that solves the
    # task (with noise and lapses, so the logs hold failures and recoveries too), the
    # exploration policy (contact-rich pushing that never aims for success); both read
    # Push-T's scene; or random_motion (smooth random actions: any robot).
    policy: Literal["teleoperator", "exploration", "random_motion"] = "teleoperator"
    teleoperator: TeleoperatorConfig = field(default_factory=TeleoperatorConfig)
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    random_motion: RandomMotionConfig = field(default_factory=RandomMotionConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)

    @property
    def env_seeds(self) -> range:
        return range(self.first_env_seed, self.first_env_seed + self.n_episodes)


def collection_policy(config: CollectParams) -> Policy:
    """The data-collection policy ``collect.policy`` with its settings."""
    if config.policy == "teleoperator":
        return PushTTeleoperator(config.teleoperator)
    if config.policy == "random_motion":
        return RandomMotionPolicy(config.random_motion)
    return ExplorationPolicy(config.exploration)


def record_dataset(
    config: CollectParams, seed: int
) -> tuple[dict[str, Episode | bytes], pd.DataFrame]:
    """Record ``n_episodes`` with the data-collection policy and corrupt some like real
    logs. Returns the episodes keyed by id (a corrupted file comes as its bytes) and a
    manifest with one row per episode, including the injected fault."""
    episodes: dict[str, Episode | bytes] = {}
    rows = []
    with make_backend(config.backend, **config.backend_options) as backend:
        policy = collection_policy(config)
        for env_seed in tqdm(config.env_seeds, desc="recording", unit="ep"):
            episode = record_episode(
                backend, policy, env_seed, config.max_steps, config.settle_steps
            )
            fault_rng = np.random.default_rng([seed, env_seed, _FAULT_STREAM])
            logged, fault = inject_fault(episode, fault_rng, config.faults)
            episode_id = f"episode_{env_seed:06d}"
            episodes[episode_id] = logged
            rows.append(
                {
                    "episode_id": episode_id,
                    "env_seed": env_seed,
                    "steps": len(episode),
                    "max_reward": float(episode.rewards.max()),
                    "final_reward": float(episode.rewards[-1]),
                    "success": bool(episode.success.any()),
                    "final_progress": (
                        float(episode.progress[-1]) if episode.progress is not None else np.nan
                    ),
                    "injected_fault": fault or "",
                }
            )
    return episodes, pd.DataFrame(rows)
