"""PPO training inside the global world model, with FoG's budget and snapshot points.

:class:`PPOTrainer` follows the other trainers' protocol (construct, ``try_resume``,
``fit(checkpoint_dir, on_metrics)``, ``save_checkpoint``): its step counts world-model
transitions, and it checkpoints at every snapshot point. A resumed run continues from the
last snapshot's weights and optimiser state, but not exactly as an uninterrupted run:
the imagined environments restart from fresh contexts, the rollout collected just before
the checkpoint is not replayed, and sb3's own random draws are not part of the state.

:class:`PPORun` sets one up from the baselines and policy parameters, as the baselines
pipeline runs it, and returns the bundles and summary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from tqdm.auto import tqdm

from fog_pipeline.core.baselines.ppo import (
    BudgetCallback,
    LatentWorldModelVecEnv,
    PPOConfig,
    behaviour_clone_ppo,
    make_ppo,
    ppo_actor,
)
from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.device import select_device
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.actor import Actor
from fog_pipeline.core.policy.bundle import DeployedPolicy, PolicyInfo
from fog_pipeline.core.policy.prior import BehaviourPriorConfig, Demonstrations, demonstrations
from fog_pipeline.core.policy.training import PolicyParams, window_mean
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.training_state import (
    ResumableTrainer,
    StateLoader,
    fingerprint,
    tensor_digest,
)
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel

log = logging.getLogger(__name__)

MetricsCallback = Callable[[int, dict[str, float]], None]


@dataclass
class BaselinesParams:
    __pydantic_config__ = STRICT_KEYS

    device: str = "cpu"
    ppo: PPOConfig = field(default_factory=PPOConfig)
    checkpoint_dir: str = "data/06_models/ppo_checkpoint"
    live_dir: str = "data/08_reporting/ppo_training"


def parse_baselines_params(params: dict) -> BaselinesParams:
    return parse_config(BaselinesParams, params, "baselines")


class PPOTrainer(ResumableTrainer):
    """sb3 PPO on the latent features of ``env``, for ``budget`` world-model transitions,
    keeping actor snapshots at the ``snapshot_at`` transition counts."""

    label = "PPO"

    def __init__(
        self,
        env: WorldModelEnv,
        surrogate: RSSM,
        config: PPOConfig,
        seed: int,
        device: torch.device | str = "cpu",
        *,
        budget: int,
        snapshot_at: Sequence[int],
        fingerprint_extra: dict[str, Any] | None = None,
    ) -> None:
        self.env, self.config, self.device = env, config, torch.device(device)
        self.budget, self.snapshot_at = budget, list(snapshot_at)
        # A predicted success is absorbing, as in FoG: the return of staying at the top.
        success_value = config.gamma / (1.0 - config.gamma) if config.gamma < 1 else 0.0
        self.vec_env = LatentWorldModelVecEnv(env, surrogate, success_value)
        self.model = make_ppo(self.vec_env, config, seed, str(self.device))
        self.generator = env.generator
        self.rng = np.random.default_rng(seed)  # stored for the checkpoint format; PPO seeds itself
        self.step = 0
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.fingerprint = fingerprint(
            {
                "ppo": config,
                "budget": budget,
                "snapshots": self.snapshot_at,
                "num_envs": env.num_envs,
                "surrogate": tensor_digest(surrogate.state_dict().values()),
                "seed": seed,
                **(fingerprint_extra or {}),
            }
        )

    @property
    def transitions(self) -> int:
        """World-model transitions consumed so far."""
        return self.vec_env.transitions

    def actor(self) -> Actor:
        """The current policy as a deployable actor."""
        return ppo_actor(self.model, self.env.action_low, self.env.action_high)

    def behaviour_clone(
        self, demos: Demonstrations, config: BehaviourPriorConfig, seed: int
    ) -> list[float]:
        """Fit the policy to recorded actions first, as FoG's actor is (see
        :func:`behaviour_clone_ppo`); returns the NLL per step."""
        return behaviour_clone_ppo(
            self.model, demos, self.env.action_low, self.env.action_high, config, seed
        )

    def keep_snapshot(self, transitions: int) -> None:
        self.snapshots[transitions] = {
            k: v.detach().clone() for k, v in self.actor().state_dict().items()
        }

    # -- checkpointing -----------------------------------------------------------------
    def _total_steps(self) -> int:
        return self.budget

    def _checkpoint_modules(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "policy": self.model.policy.state_dict(),
            **{f"snapshot_{t}": state for t, state in self.snapshots.items()},
        }

    def _checkpoint_loaders(self) -> dict[str, StateLoader]:
        def keep(transitions: int) -> StateLoader:
            def load(state: dict[str, torch.Tensor]) -> None:
                if state:
                    self.snapshots[transitions] = state

            return load

        return {"policy": self.model.policy.load_state_dict} | {
            f"snapshot_{t}": keep(t) for t in self.snapshot_at
        }

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim": self.model.policy.optimizer}

    # -- training ----------------------------------------------------------------------
    def fit(
        self, checkpoint_dir: str | Path | None = None, on_metrics: MetricsCallback | None = None
    ) -> PPO:
        """Train to the budget, resuming from and checkpointing (at every snapshot point)
        to ``checkpoint_dir``; returns the sb3 model."""
        self._resume_for_fit(checkpoint_dir)
        self.model.num_timesteps = self.vec_env.transitions = self.step
        log.info(
            "PPO: %d world-model transitions (FoG's budget), %d environments, rollouts of "
            "%d steps.",
            self.budget,
            self.env.num_envs,
            self.config.n_steps,
        )

        def on_snapshot(transitions: int, _: PPO) -> None:
            self.keep_snapshot(transitions)
            self.step = transitions
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir)

        with tqdm(
            total=self.budget, initial=self.step, desc="policy (PPO)", unit="transition"
        ) as bar:

            def progress(transitions: int, reward: float) -> None:
                bar.update(transitions - bar.n)
                bar.set_postfix(reward=f"{reward:.3f}")

            pending = [t for t in self.snapshot_at if t > self.step]
            callback = BudgetCallback(self.vec_env, pending, on_snapshot, on_metrics, progress)
            remaining = self.budget - self.step
            self.model.learn(remaining, callback=callback, reset_num_timesteps=False)
        self.step = self.vec_env.transitions
        return self.model


class PPORun:
    """PPO with FoG's world-model transition budget, environments and snapshot points.

    The environment count and imagined episode length are FoG's (``policy.fog.num_envs``,
    ``policy.env``), and G samples with its one setting, so both see the same imagined
    world. PPO's policy starts from behaviour cloning with FoG's settings
    (``policy.prior``), as FoG's actor does; FoG's anchor term has no place in sb3's loss,
    so PPO trains without it. The snapshot at 0 transitions is that starting policy.
    Constructing the run resumes an unfinished checkpoint of the same setup.
    """

    def __init__(
        self,
        world_model: WorldModel,
        surrogate: RSSM,
        training_set: TrainingSet,
        params: BaselinesParams,
        policy: PolicyParams,
        seed: int,
    ) -> None:
        fog = policy.fog
        device = select_device(params.device)
        world_model.requires_grad_(False)
        env = WorldModelEnv(
            world_model.to(device),
            training_set,
            fog.num_envs,
            max_steps=policy.env.max_steps,
            seed=seed,
            device=device,
            precision=policy.env.precision,
        )
        self.trainer = PPOTrainer(
            env,
            surrogate.to(device),
            params.ppo,
            seed,
            device,
            budget=fog.total_transitions,
            snapshot_at=[i * fog.transitions_per_iteration for i in fog.snapshot_iterations()],
            fingerprint_extra={
                "env": policy.env,
                "prior": policy.prior,
                "world_model": tensor_digest(world_model.denoiser.state_dict().values()),
            },
        )
        if policy.prior.pretrain_steps > 0:
            demos = demonstrations(surrogate, training_set)
            self.trainer.behaviour_clone(demos, policy.prior, seed)
        self.trainer.keep_snapshot(0)
        self.params, self.world_model, self.surrogate = params, world_model, surrogate
        self.shape = tuple(training_set.meta["frame_shape"])
        self.names = tuple(training_set.meta["state_names"])
        self._started = time.perf_counter()
        self.resumed = self.trainer.try_resume(params.checkpoint_dir)
        self.wall_time = 0.0

    def fit(self, on_metrics: MetricsCallback | None = None) -> None:
        """Train to the budget; the models come back on the CPU."""
        self.trainer.fit(self.params.checkpoint_dir, on_metrics)
        self.wall_time = time.perf_counter() - self._started
        self.world_model.to(torch.device("cpu"))
        self.surrogate = self.surrogate.cpu()

    def bundles(self) -> tuple[DeployedPolicy, dict[int, DeployedPolicy]]:
        """The trained bundle and the snapshots by transitions."""
        final = self.trainer.actor()
        snapshots = {}
        for transitions, state in sorted(self.trainer.snapshots.items()):
            actor = self.trainer.actor()
            actor.load_state_dict(state)
            snapshots[transitions] = DeployedPolicy(
                self.surrogate, actor, PolicyInfo("ppo", transitions, self.shape, self.names)
            )
        info = PolicyInfo("ppo", self.trainer.transitions, self.shape, self.names)
        return DeployedPolicy(self.surrogate, final, info), snapshots

    def summary(self, rewards: list[tuple[int, float]]) -> dict[str, Any]:
        """The training summary from the whole run's imagined reward curve."""
        return {
            "transitions": self.trainer.transitions,
            "budget_from": "policy.fog (iterations x num_envs x horizon)",
            "wall_time_s": round(self.wall_time, 1),
            "resumed": self.resumed,
            "imagined_reward_first_10pct": window_mean(rewards, 0.1, last=False),
            "imagined_reward_last_10pct": window_mean(rewards, 0.1, last=True),
            "snapshots": sorted(self.trainer.snapshots),
        }
