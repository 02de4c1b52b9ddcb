"""The global world model G as a gymnasium environment, for any RL library.

:func:`make_world_model_vector_env` builds a ``gymnasium.vector.VectorEnv`` of N imagined
robots (:class:`WorldModelVectorEnv`, over :class:`WorldModelEnv`: episodes start from
real context windows of the training set and step G); :func:`make_world_model_gym_env` the
single-environment ``gymnasium.Env`` view (:class:`WorldModelGymEnv`). Both take numpy
actions in the robot's action box (clipped to it, as the robot would; non-finite actions
are refused) and return numpy observations:

- ``observation="frames"``: ``{"pixels": uint8 (H, W, 3), "state": float32 (P,)}``, G's
  newest frame and proprioceptive state (P = 0 for a camera-only robot);
- ``observation="latent"``: the surrogate's latent feature ``[h, z]`` (float32), filtered
  from G's frames by the surrogate's posterior, as the PPO baseline and FoG's actor see it.

Reward: G's predicted task progress; ``terminated``: predicted success (success
probability > 0.5); ``truncated``: ``max_steps`` reached. ``info`` holds G's reward label
``coverage`` and ``success_prob``.

The vector env resets finished environments within the step that finishes them
(gymnasium's ``AutoresetMode.SAME_STEP``, in ``metadata["autoreset_mode"]``): it returns
the first observation of the new episode, with the finished episode's last observation in
``infos["final_obs"]`` and its labels in ``infos["final_info"]`` (masks ``_final_obs``,
``_final_info``); ``coverage``/``success_prob`` at the top level are those of the step just
taken, in every environment. Same-step, because G steps all N environments in one batch
and restarts any subset at once, and so every step is one world-model transition (a
next-step reset would spend a step of each finished environment on no transition).

Randomness (the context windows drawn at reset, G's sampler noise) comes from one torch
generator: ``reset(seed=s)`` reseeds it, so a seeded reset and the same actions repeat
the same rollout.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.surrogate.rssm import RSSM, LatentState
from fog_pipeline.core.world_model.env import WorldModelEnv, WorldModelStep
from fog_pipeline.core.world_model.frames import to_uint8
from fog_pipeline.core.world_model.model import WorldModel

Observation = Literal["frames", "latent"]
_LABELS = ("coverage", "success_prob")


class _Imagination:
    """What both views share: the batched env, the observation encoding and the action
    checks."""

    def __init__(self, env: WorldModelEnv, observation: Observation, surrogate: RSSM | None):
        if observation not in ("frames", "latent"):
            raise ValueError(f"observation must be 'frames' or 'latent', got {observation!r}")
        if observation == "latent" and surrogate is None:
            raise ValueError(
                "observation='latent' is the surrogate's latent feature: pass surrogate= "
                "(the trained RSSM, e.g. RSSM loaded from the surrogate pipeline's output), "
                "or use observation='frames'"
            )
        if observation == "frames" and surrogate is not None:
            raise ValueError(
                "a surrogate is only read with observation='latent'; drop surrogate= or "
                "set observation='latent'"
            )
        self.env, self.surrogate = env, surrogate
        meta = env.data.meta
        height, width, channels = meta["frame_shape"]
        action_dim = len(meta["action_low"])
        self.single_action_space = gym.spaces.Box(
            np.asarray(meta["action_low"], dtype=np.float32),
            np.asarray(meta["action_high"], dtype=np.float32),
            (action_dim,),
            np.float32,
        )
        if surrogate is None:
            self.single_observation_space: gym.Space = gym.spaces.Dict(
                {
                    "pixels": gym.spaces.Box(0, 255, (height, width, channels), np.uint8),
                    "state": gym.spaces.Box(-np.inf, np.inf, (env.model.state_dim,), np.float32),
                }
            )
        else:
            config = surrogate.config
            pairs = {
                "frame size": ((config.frame_height, config.frame_width), (height, width)),
                "action_dim": (config.action_dim, action_dim),
            }
            if config.proprio_dim:
                pairs["proprio_dim"] = (config.proprio_dim, env.model.state_dim)
            for name, (got, expected) in pairs.items():
                if got != expected:
                    raise ValueError(
                        f"the surrogate's {name} is {got}, the world model's data has "
                        f"{expected}: pass the surrogate trained on this training set"
                    )
            features = config.deter + config.stoch
            self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (features,), np.float32)
        self.latent: LatentState | None = None

    @torch.no_grad()
    def _filter(self, index: torch.Tensor | None) -> LatentState:
        """The surrogate's posterior at the newest frame of each context (sample=False:
        posterior means, so the observation is a function of the context)."""
        frames, actions, states = self.env.frames, self.env.past_actions, self.env.states
        if index is not None:
            frames, actions, states = frames[index], actions[index], states[index]
        proprio = states if self.surrogate.config.proprio_dim else None
        posteriors, _ = self.surrogate.observe(frames, actions, sample=False, proprio=proprio)
        return posteriors.at(-1)

    def restart(self, mask: np.ndarray | None = None) -> None:
        """Start all environments (or those where ``mask``) from fresh real contexts."""
        index = None if mask is None else torch.as_tensor(mask, device=self.env.device)
        self.env.reset(index)
        if self.surrogate is None:
            return
        fresh = self._filter(index)
        if index is None:
            self.latent = fresh
        else:
            h, z = self.latent.h.clone(), self.latent.z.clone()
            h[index], z[index] = fresh.h, fresh.z
            self.latent = LatentState(h=h, z=z)

    @torch.no_grad()
    def advance(self, actions: Any) -> WorldModelStep:
        env = self.env
        actions = np.asarray(actions, dtype=np.float32)
        shape = (env.num_envs, *self.single_action_space.shape)
        if actions.shape != shape:
            raise ValueError(f"actions must have shape {shape}, got {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError(f"refusing non-finite actions {actions}")
        space = self.single_action_space
        action = torch.as_tensor(np.clip(actions, space.low, space.high), device=env.device)
        out = env.step(action)
        if self.surrogate is not None:
            proprio = out.state if self.surrogate.config.proprio_dim else None
            self.latent = self.surrogate.encode_next(self.latent, action, out.frame, proprio)
        return out

    def observe(self) -> dict[str, np.ndarray] | np.ndarray:
        """The batch of observations now, in new arrays (the caller may keep or edit them)."""
        if self.surrogate is not None:
            return self.latent.feature().float().cpu().numpy()  # feature() is a new tensor
        return {
            "pixels": to_uint8(self.env.observation),
            # A copy: on CPU, numpy() would share the env's context memory.
            "state": self.env.state.float().cpu().numpy().copy(),
        }


def _at(observations: dict[str, np.ndarray] | np.ndarray, i: int) -> Any:
    """Environment ``i``'s observation out of a batch."""
    if isinstance(observations, dict):
        return {key: value[i] for key, value in observations.items()}
    return observations[i]


def _check_seed(seed: Any) -> None:
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"reset(seed=...) takes one int (one torch generator drives every imagined "
            f"environment), got {seed!r}"
        )


def _check_options(options: dict[str, Any] | None) -> None:
    if options:
        raise ValueError(f"the world-model env takes no reset options, got {sorted(options)}")


class WorldModelVectorEnv(VectorEnv):
    """N imagined robots as a gymnasium vector env (same-step autoreset; module docstring)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self, env: WorldModelEnv, observation: Observation = "frames", surrogate: RSSM | None = None
    ) -> None:
        self._imagination = _Imagination(env, observation, surrogate)
        self.num_envs = env.num_envs
        self.single_observation_space = self._imagination.single_observation_space
        self.single_action_space = self._imagination.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._started = False

    @property
    def world_model_env(self) -> WorldModelEnv:
        return self._imagination.env

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        _check_seed(seed)
        _check_options(options)
        super().reset(seed=seed)
        if seed is not None:
            self._imagination.env.generator.manual_seed(int(seed))
        self._imagination.restart()
        self._started = True
        return self._imagination.observe(), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        out = self._imagination.advance(actions)
        observations = self._imagination.observe()
        terminated = out.terminated.cpu().numpy()
        truncated = out.truncated.cpu().numpy()
        labels = {name: getattr(out, name).float().cpu().numpy() for name in _LABELS}
        everywhere = np.ones(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        for name, value in labels.items():
            infos[name], infos[f"_{name}"] = value, everywhere.copy()
        done = terminated | truncated
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = _at(observations, i)
            final_info: dict[str, Any] = {}
            for name, value in labels.items():
                final_info[name], final_info[f"_{name}"] = np.where(done, value, 0.0), done
            infos.update(
                final_obs=final_obs, _final_obs=done, final_info=final_info, _final_info=done
            )
            self._imagination.restart(done)
            observations = self._imagination.observe()
        reward = out.reward.double().cpu().numpy()
        return observations, reward, terminated, truncated, infos


class WorldModelGymEnv(gym.Env):
    """One imagined robot as a ``gymnasium.Env``. It does not reset itself: after
    ``terminated`` or ``truncated``, call ``reset()`` (stepping on is refused)."""

    def __init__(
        self,
        env: WorldModelEnv,
        observation: Observation = "frames",
        surrogate: RSSM | None = None,
        render_mode: str | None = None,
    ) -> None:
        if env.num_envs != 1:
            raise ValueError(
                f"WorldModelGymEnv is one environment; got a WorldModelEnv of {env.num_envs} "
                "(use WorldModelVectorEnv for several)"
            )
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": env.data.meta["fps"]}
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self._imagination = _Imagination(env, observation, surrogate)
        self.observation_space = self._imagination.single_observation_space
        self.action_space = self._imagination.single_action_space
        self._episode_over = True

    @property
    def world_model_env(self) -> WorldModelEnv:
        return self._imagination.env

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        _check_seed(seed)
        _check_options(options)
        super().reset(seed=seed)
        if seed is not None:
            self._imagination.env.generator.manual_seed(int(seed))
        self._imagination.restart()
        self._episode_over = False
        return _at(self._imagination.observe(), 0), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._episode_over:
            raise RuntimeError("call reset() before step() (no episode running)")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            shape = self.action_space.shape
            raise ValueError(f"action must have shape {shape}, got {action.shape}")
        out = self._imagination.advance(action[None])
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._episode_over = terminated or truncated
        info = {name: float(getattr(out, name)[0]) for name in _LABELS}
        observation = _at(self._imagination.observe(), 0)
        return observation, float(out.reward[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """G's newest frame, uint8 (H, W, 3), with ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            return None
        return to_uint8(self._imagination.env.observation[0])


def _world_model_env(
    world_model: WorldModel,
    training_set: TrainingSet,
    num_envs: int,
    max_steps: int,
    seed: int,
    device: torch.device | str,
    split: str,
    precision: str,
) -> WorldModelEnv:
    if num_envs < 1 or max_steps < 1:
        raise ValueError(f"num_envs and max_steps must be >= 1, got {num_envs}, {max_steps}")
    return WorldModelEnv(
        world_model,
        training_set,
        num_envs,
        split=split,
        max_steps=max_steps,
        seed=seed,
        device=device,
        precision=precision,
    )


def make_world_model_vector_env(
    world_model: WorldModel,
    training_set: TrainingSet,
    num_envs: int,
    observation: Observation = "frames",
    surrogate: RSSM | None = None,
    max_steps: int = 300,
    seed: int = 0,
    device: torch.device | str = "cpu",
    split: str = "train",
    precision: str = "fp32",
) -> WorldModelVectorEnv:
    """N imagined robots in ``world_model`` as a gymnasium vector env (module docstring).

    Episodes start from real context windows of ``training_set``'s ``split``; ``seed``
    seeds the generator until a seeded ``reset``. ``world_model`` and ``surrogate`` (an
    :class:`RSSM` trained on the same data, required for ``observation="latent"``) must
    already be on ``device``.
    """
    env = _world_model_env(
        world_model, training_set, num_envs, max_steps, seed, device, split, precision
    )
    return WorldModelVectorEnv(env, observation, surrogate)


def make_world_model_gym_env(
    world_model: WorldModel,
    training_set: TrainingSet,
    observation: Observation = "frames",
    surrogate: RSSM | None = None,
    max_steps: int = 300,
    seed: int = 0,
    device: torch.device | str = "cpu",
    split: str = "train",
    precision: str = "fp32",
    render_mode: str | None = None,
) -> WorldModelGymEnv:
    """One imagined robot as a ``gymnasium.Env``; the arguments as for
    :func:`make_world_model_vector_env`."""
    env = _world_model_env(world_model, training_set, 1, max_steps, seed, device, split, precision)
    return WorldModelGymEnv(env, observation, surrogate, render_mode)
