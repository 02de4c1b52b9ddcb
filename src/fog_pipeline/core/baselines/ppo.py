"""The PPO baseline: stable-baselines3 PPO inside the same global world model as FoG.

Same environment (:class:`WorldModelEnv`: G's frames, G's reward model, the same restarts
from real contexts), same observation as FoG's actor (the surrogate's latent feature,
filtered from G's frames by the surrogate's posterior; the surrogate is frozen here), and
a budget counted in the same world-model transitions. Only the optimiser differs:
zeroth-order policy gradients (PPO) instead of FoG's first-order ones.

stable-baselines3 is the reference PPO implementation the field compares against; it
steps a ``VecEnv``, so :class:`LatentWorldModelVecEnv` adapts the batched torch env.
The trained policy is converted to the project's :class:`Actor` (``squash="clip"``,
tanh hidden layers, state-independent std) and deployed in the same bundle as FoG's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.policy.prior import (
    BehaviourPriorConfig,
    Demonstrations,
    fit_likelihood,
    to_unit_box,
)
from fog_pipeline.core.surrogate.rssm import RSSM, LatentState
from fog_pipeline.core.world_model.env import WorldModelEnv


@dataclass
class PPOConfig:
    """stable-baselines3 PPO settings (``baselines.ppo``); the budget comes from FoG's."""

    __pydantic_config__ = STRICT_KEYS

    n_steps: Annotated[int, Field(ge=1)] = 50  # per environment and rollout
    batch_size: Annotated[int, Field(ge=2)] = 200
    n_epochs: Annotated[int, Field(ge=1)] = 10
    learning_rate: Annotated[float, Field(gt=0)] = 3e-4
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    gae_lambda: Annotated[float, Field(ge=0, le=1)] = 0.95
    clip_range: Annotated[float, Field(gt=0)] = 0.2
    ent_coef: Annotated[float, Field(ge=0)] = 0.0
    vf_coef: Annotated[float, Field(ge=0)] = 0.5
    max_grad_norm: Annotated[float, Field(gt=0)] = 0.5
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = (256, 256)
    log_std_init: float = -0.5

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)


class LatentWorldModelVecEnv(VecEnv):
    """G as an sb3 ``VecEnv``: observations are surrogate latent features, actions live in
    [-1, 1]^A and are mapped to the robot's box; finished environments restart at once
    (sb3's auto-reset contract, with ``terminal_observation`` in the info).

    The reward is G's task progress; a predicted success is absorbing, as in FoG: its
    step's reward adds ``success_value``, the return of staying at the top reward
    (γ/(1-γ) for PPO's discount γ)."""

    def __init__(self, env: WorldModelEnv, surrogate: RSSM, success_value: float = 0.0) -> None:
        self.env, self.surrogate = env, surrogate.eval().requires_grad_(False)
        self.success_value = success_value
        self.render_mode = None  # nothing to render: sb3 asks
        features = surrogate.config.deter + surrogate.config.stoch
        action_dim = len(env.action_low)
        super().__init__(
            env.num_envs,
            gym.spaces.Box(-np.inf, np.inf, (features,), np.float32),
            gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32),
        )
        self.state: LatentState | None = None
        self.transitions = 0
        self._actions: np.ndarray | None = None

    @torch.no_grad()
    def _filter(self, mask: torch.Tensor | None = None) -> LatentState:
        frames, actions, states = self.env.frames, self.env.past_actions, self.env.states
        if mask is not None:
            frames, actions, states = frames[mask], actions[mask], states[mask]
        proprio = states if self.surrogate.config.proprio_dim else None
        posteriors, _ = self.surrogate.observe(frames, actions, sample=False, proprio=proprio)
        return posteriors.at(-1)

    def _observation(self) -> np.ndarray:
        return self.state.feature().cpu().numpy().astype(np.float32)

    def reset(self) -> np.ndarray:
        self.env.reset()
        self.state = self._filter()
        return self._observation()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    @torch.no_grad()
    def step_wait(self):
        env = self.env
        unit = torch.as_tensor(np.clip(self._actions, -1.0, 1.0), device=env.device)
        action = env.action_low + (unit.float() + 1.0) * 0.5 * (env.action_high - env.action_low)
        out = env.step(action)
        proprio = out.state if self.surrogate.config.proprio_dim else None
        self.state = self.surrogate.encode_next(self.state, action, out.frame, proprio)
        self.transitions += self.num_envs
        done = out.terminated | out.truncated
        reward = out.reward + torch.where(out.terminated, self.success_value, 0.0)
        observation = self._observation()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            for index in torch.nonzero(done).flatten().tolist():
                infos[index]["terminal_observation"] = observation[index].copy()
                infos[index]["TimeLimit.truncated"] = bool(
                    out.truncated[index] and not out.terminated[index]
                )
            env.reset(done)
            fresh = self._filter(done)
            h, z = self.state.h.clone(), self.state.z.clone()
            h[done], z[done] = fresh.h, fresh.z
            self.state = LatentState(h=h, z=z)
            observation = self._observation()
        return observation, reward.cpu().numpy(), done.cpu().numpy(), infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        raise NotImplementedError("the imagined environments have no per-environment methods")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


def make_ppo(vec_env: LatentWorldModelVecEnv, config: PPOConfig, seed: int, device: str) -> PPO:
    return PPO(
        "MlpPolicy",
        vec_env,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        policy_kwargs={
            "net_arch": {"pi": list(config.hidden), "vf": list(config.hidden)},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": config.log_std_init,
        },
        seed=seed,
        device=device,
        verbose=0,
    )


def ppo_actor(model: PPO, action_low: torch.Tensor, action_high: torch.Tensor) -> Actor:
    """The PPO policy's mean network as a deployable :class:`Actor` (deterministic action:
    the clipped mean, as sb3's ``predict(deterministic=True)`` gives)."""
    policy = model.policy
    hidden = tuple(
        layer.out_features
        for layer in policy.mlp_extractor.policy_net
        if isinstance(layer, torch.nn.Linear)
    )
    actor = Actor(
        ActorConfig(
            feature_dim=policy.observation_space.shape[0],
            action_dim=policy.action_space.shape[0],
            hidden=hidden,
            activation="tanh",
            layer_norm=False,
            squash="clip",
            state_dependent_std=False,
        )
    )
    linears = [m for m in policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    targets = [m for m in actor.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for source, target in zip([*linears, policy.action_net], targets, strict=True):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
        actor.log_std.copy_(policy.log_std)
    actor.set_action_bounds(action_low.cpu(), action_high.cpu())
    return actor.eval()


def behaviour_clone_ppo(
    model: PPO,
    demos: Demonstrations,
    action_low: torch.Tensor,
    action_high: torch.Tensor,
    config: BehaviourPriorConfig,
    seed: int,
) -> list[float]:
    """Fit PPO's policy (mean network and log-std) to the recorded actions by maximum
    likelihood, as FoG's actor is before FoG: both start from behaviour cloning. The
    value network is left alone; PPO's optimiser state is not touched."""
    policy = model.policy
    device = policy.device
    low, high = action_low.to(device), action_high.to(device)

    def nll(batch: Demonstrations) -> torch.Tensor:
        unit = to_unit_box(batch.actions, low, high).clamp(-1.0, 1.0)
        return -policy.get_distribution(batch.features).log_prob(unit).mean()

    parameters = [
        *policy.mlp_extractor.policy_net.parameters(),
        *policy.action_net.parameters(),
        policy.log_std,
    ]
    return fit_likelihood(
        parameters, nll, demos.to(device), config, seed, "behaviour cloning (PPO)"
    )


class BudgetCallback(BaseCallback):
    """Per rollout: report metrics, keep actor snapshots at the given transition counts."""

    def __init__(
        self,
        vec_env: LatentWorldModelVecEnv,
        snapshot_at: list[int],
        on_snapshot: Callable[[int, PPO], None],
        on_metrics: Callable[[int, dict[str, float]], None] | None,
        progress: Callable[[int, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.vec_env, self.pending = vec_env, sorted(snapshot_at)
        self.on_snapshot, self.on_metrics, self.progress = on_snapshot, on_metrics, progress
        self.rollouts = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        reward = float(self.model.rollout_buffer.rewards.mean())
        transitions = self.vec_env.transitions
        if self.progress is not None:
            self.progress(transitions, reward)
        if self.on_metrics is not None:
            logged = {
                key.split("/")[-1]: float(value)
                for key, value in self.model.logger.name_to_value.items()
                if key.startswith("train/")
            }
            self.on_metrics(
                self.rollouts, {"imagined_reward": reward, "transitions": transitions, **logged}
            )
        while self.pending and transitions >= self.pending[0]:
            self.pending.pop(0)
            self.on_snapshot(transitions, self.model)
