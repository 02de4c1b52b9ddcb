"""Any gymnasium environment with a continuous (``Box``) action space as a robot backend.

``make_backend("gymnasium", env_id=..., ...)`` wraps ``gymnasium.make(env_id, **env_kwargs)``
behind the :class:`~fog_pipeline.core.envs.robot.RobotBackend` contract. The camera is an
image in the observation (``observation_key``: the whole observation, one entry of a
``Dict`` observation) or the env's ``render()`` (``observation_key: render``, which sets
``render_mode="rgb_array"``). Proprioception is an optional observation entry
(``state_key``). An env registered by a package that must be imported first takes
gymnasium's ``module:id`` form, e.g. ``gym_pusht:gym_pusht/PushT-v0``.

What leaves the backend, per the robot contract:

- frames: the image, area-averaged to ``width`` x ``height`` if set;
- the state entry, flattened to float32 (none without ``state_key``);
- the env's reward as the reward label; no dense progress label (``progress`` is None:
  the pipeline then uses the reward);
- the success label: ``info[success_key]``, or the env's ``terminated`` flag with
  ``success_key: null`` (for envs that end only on success, like MountainCarContinuous).

The env's ``info`` stays inside: it often holds the simulator state (Push-T's block pose),
which a real robot does not log. A termination that is not a success (a pole that fell)
ends the episode like the step limit does (``truncated``): the contract keeps stepping only
after a success, and stepping a gymnasium env after it terminated is undefined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import cv2
import gymnasium as gym
import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs.robot import RobotBackend, StepResult

# observation_key that takes the frame from env.render() instead of the observation.
RENDER = "render"


@dataclass
class GymnasiumConfig:
    """Settings of the gymnasium backend (``make_backend("gymnasium", **kwargs)``)."""

    __pydantic_config__ = STRICT_KEYS

    env_id: str  # a registered id; `module:id` imports `module` first (it registers the id)
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make
    # Where the camera image is: None: the observation is the image; "render": env.render()
    # (render_mode rgb_array); else the key of a Dict observation.
    observation_key: str | None = None
    # The Dict observation entry holding the robot's proprioception (None: camera only).
    # With a plain array observation (the image then comes from render), "observation"
    # takes the whole observation, e.g. Pendulum's (cos, sin, angular velocity).
    state_key: str | None = None
    state_names: tuple[str, ...] | None = None  # default: <state_key>_0, <state_key>_1, ...
    # Frame size after area averaging; both or neither (None: the env's own size).
    width: Annotated[int, Field(gt=0)] | None = None
    height: Annotated[int, Field(gt=0)] | None = None
    # info key of the success flag; None: the env's `terminated` flag is the success label.
    success_key: str | None = "is_success"
    # None: the limit the env is registered with (gymnasium's TimeLimit).
    max_episode_steps: Annotated[int, Field(gt=0)] | None = None
    # Control rate when the env's metadata has no render_fps.
    fps: Annotated[float, Field(gt=0)] | None = None
    # How to hold the robot still (RobotBackend.hold_command): zero (relative actions) or
    # last (absolute targets, as gym-pusht's pusher position).
    hold_command: Literal["zero", "last"] = "zero"

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError("set both width and height (the frame size), or neither")
        if self.state_names is not None:
            if self.state_key is None:
                raise ValueError("state_names needs state_key (the entry they name)")
            self.state_names = tuple(self.state_names)


class GymnasiumBackend(RobotBackend):
    """A gymnasium env behind the robot contract (see module docstring)."""

    name = "gymnasium"
    is_simulator = True

    def __init__(self, config: GymnasiumConfig) -> None:
        self.config = config
        self.hold_command = config.hold_command
        self._env = _make_env(config)
        try:
            self._configure()
        except Exception:
            self._env.close()
            raise
        self._obs: Any = None  # the newest observation, for read_state()

    def _configure(self) -> None:
        config, env = self.config, self._env
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(
                f"gymnasium env {config.env_id!r} has action space {space}; the gymnasium "
                "backend needs a one-dimensional Box (continuous actions, clipped to its "
                "bounds): pick a continuous variant of the env (e.g. MountainCarContinuous "
                "instead of MountainCar) or wrap it in an env with a Box action space"
            )
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(
                f"gymnasium env {config.env_id!r} has unbounded actions {space}; the robot "
                "contract clips every action to finite bounds: register a variant of the "
                "env whose action Box has finite low and high"
            )
        self.action_low = space.low.astype(np.float32)
        self.action_high = space.high.astype(np.float32)
        self.task = f"the task of gymnasium env {config.env_id}"
        self.action_meaning = (
            f"the action of gymnasium env {config.env_id}: a {space.shape[0]}-vector in "
            f"[{_fmt(self.action_low)}, {_fmt(self.action_high)}], passed to env.step"
        )
        fps = env.metadata.get("render_fps") or config.fps
        if fps is None:
            raise ValueError(
                f"gymnasium env {config.env_id!r} declares no render_fps in its metadata: "
                "set backend_options.fps (its control rate in Hz)"
            )
        self.fps = float(fps)
        limit = config.max_episode_steps or (env.spec.max_episode_steps if env.spec else None)
        if limit is None:
            raise ValueError(
                f"gymnasium env {config.env_id!r} is registered without a step limit: set "
                "backend_options.max_episode_steps"
            )
        self.max_episode_steps = int(limit)
        # One reset finds the frame and state sizes (the render size is only known by
        # rendering) and checks the keys now rather than at the first recorded episode.
        obs, _ = env.reset(seed=0)
        self.frame_shape = self._frame(obs).shape
        state = self._state(obs)
        if config.state_names is None:
            self.state_names = tuple(f"{config.state_key}_{i}" for i in range(state.size))
        elif len(config.state_names) != state.size:
            raise ValueError(
                f"state_names has {len(config.state_names)} names; observation entry "
                f"{config.state_key!r} of {config.env_id!r} has {state.size} channels"
            )
        else:
            self.state_names = config.state_names

    def _frame(self, obs: Any) -> np.ndarray:
        key = self.config.observation_key
        if key == RENDER:
            image = self._env.render()
        elif key is None:
            image = obs
        else:
            image = _entry(obs, key, "observation_key", self.config.env_id)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            where = {None: "the observation", RENDER: "env.render()"}.get(key, repr(key))
            raise ValueError(
                f"{where} of gymnasium env {self.config.env_id!r} is not an RGB image "
                f"(uint8, H x W x 3): got {image.dtype} of shape {image.shape}; set "
                "backend_options.observation_key to the image entry, or to 'render'"
            )
        if self.config.width is not None:
            size = (self.config.width, self.config.height)
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image)

    def _state(self, obs: Any) -> np.ndarray:
        key = self.config.state_key
        if key is None:
            return np.zeros(0, dtype=np.float32)
        if key == "observation" and not isinstance(obs, dict):
            value = obs
        else:
            value = _entry(obs, key, "state_key", self.config.env_id)
        return np.asarray(value, dtype=np.float32).reshape(-1)

    def _success(self, terminated: bool, info: dict[str, Any]) -> bool:
        key = self.config.success_key
        if key is None:
            return terminated
        if key not in info:
            raise ValueError(
                f"gymnasium env {self.config.env_id!r} reports no {key!r} in its step info "
                f"(it has {sorted(info)}): set backend_options.success_key to its success "
                "flag, or to null if the env terminates exactly on success"
            )
        return bool(info[key])

    def _reset(self, seed: int) -> np.ndarray:
        self._obs, _ = self._env.reset(seed=seed)
        return self._frame(self._obs)

    def _step(self, action: np.ndarray) -> StepResult:
        env_action = action.astype(self._env.action_space.dtype)
        self._obs, reward, terminated, truncated, info = self._env.step(env_action)
        success = self._success(bool(terminated), info)
        return StepResult(
            frame=self._frame(self._obs),
            reward=float(reward),
            success=success,
            terminated=success,
            # A failure termination is over for good (see module docstring).
            truncated=bool(truncated) or (bool(terminated) and not success),
        )

    def read_state(self) -> np.ndarray:
        """The ``state_key`` entry of the newest observation, flattened, float32."""
        if self._obs is None:
            raise RuntimeError("gymnasium: call reset() first")
        return self._state(self._obs)

    def read_reward(self) -> float:
        raise NotImplementedError(
            f"gymnasium env {self.config.env_id!r}: gymnasium has no call that reads the "
            "reward of the scene outside step(), and evaluation needs it right after reset "
            "(the initial coverage); subclass GymnasiumBackend and compute it from the "
            "env's state in read_reward"
        )

    def close(self) -> None:
        super().close()
        self._env.close()


def _make_env(config: GymnasiumConfig) -> gym.Env:
    kwargs = dict(config.env_kwargs)
    if config.observation_key == RENDER:
        mode = kwargs.setdefault("render_mode", "rgb_array")
        if mode != "rgb_array":
            raise ValueError(
                f"observation_key 'render' reads frames from env.render(), which needs "
                f"render_mode 'rgb_array'; env_kwargs sets render_mode {mode!r}"
            )
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    try:
        return gym.make(config.env_id, **kwargs)
    except gym.error.UnregisteredEnv as exc:
        raise ValueError(
            f"unknown gymnasium env id {config.env_id!r} ({exc}). An env registered by a "
            "package needs that package imported first: write the id as 'module:id' "
            "(e.g. 'gym_pusht:gym_pusht/PushT-v0') and install the package"
        ) from None


def _entry(obs: Any, key: str, option: str, env_id: str) -> Any:
    if not isinstance(obs, dict):
        fix = {
            "observation_key": "unset it (the observation is the image) or use 'render'",
            "state_key": "use 'observation' (the whole observation) or unset it",
        }[option]
        raise ValueError(
            f"backend_options.{option}={key!r}, but gymnasium env {env_id!r} returns a "
            f"plain {type(obs).__name__} observation, not a dict: {fix}"
        )
    if key not in obs:
        raise ValueError(
            f"backend_options.{option}={key!r} is not in the observation of gymnasium env "
            f"{env_id!r}, which has keys {sorted(obs)}"
        )
    return obs[key]


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
