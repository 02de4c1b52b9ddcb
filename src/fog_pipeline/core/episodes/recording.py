"""Record episodes from a robot backend, and corrupt some of them like real logs.

- :class:`ExplorationPolicy` is the exploration data-collection policy
  (``collect.policy: exploration``): a noisy scripted pusher mixed with smooth random
  motion, rich in block contacts but never aiming for success. The default collector is
  the teleoperator stand-in of :mod:`fog_pipeline.core.episodes.teleop`, which solves
  the task.
- :class:`RandomMotionPolicy` (``collect.policy: random_motion``) reads nothing but the
  action bounds, so it drives any robot (a gymnasium environment, a remote robot) where
  the Push-T collectors, which read the simulator's scene, cannot.
- :func:`record_episode` runs one policy on one backend and returns an :class:`Episode`
  in the schema of :mod:`fog_pipeline.core.episodes.schema` (with ``state`` and
  ``progress`` when the backend logs them).
- :func:`inject_fault` gives an episode one of the defects real robot logs have (dropped
  or repeated frames, clock jumps, a frozen camera, corrupt actions, a cut-off file), so
  that the cleaning stage is exercised on known ground truth. Faults that remove or
  repeat records do so in every array (state and progress included), as a logger that
  writes one record per step would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs.robot import RobotBackend
from fog_pipeline.core.episodes.schema import SCHEMA_VERSION, Episode, episode_to_bytes

# Entropy added to an episode's seed for the policy's random stream, so that the policy's
# noise is not the same stream the backend draws its initial scene from.
_POLICY_STREAM = 1


class Policy(Protocol):
    """What :func:`record_episode` needs from a policy."""

    description: str  # stored in the episode's ``policy`` attribute

    def reset(self, rng: np.random.Generator) -> None:
        """Start a new episode, drawing all randomness from ``rng``."""

    def act(self, frame: np.ndarray, backend: RobotBackend) -> np.ndarray:
        """The next action, in the backend's action bounds, after observing ``frame``."""


# --------------------------------------------------------------------------------------
# Exploration policy


@dataclass
class ExplorationConfig:
    """The data-collection policy (``ExplorationPolicy``). Distances in table units."""

    __pydantic_config__ = STRICT_KEYS

    # Each episode is a sequence of segments; a segment is a scripted push with this
    # probability, smooth random motion otherwise (random motion rarely meets the block,
    # but covers pusher motions the scripted pusher never makes).
    scripted_probability: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8
    min_segment_steps: Annotated[int, Field(ge=1)] = 15
    max_segment_steps: Annotated[int, Field(ge=1)] = 60
    # Gaussian noise added to every scripted action (action units, range [-1, 1]).
    action_noise: Annotated[float, Field(ge=0.0)] = 0.2
    # Scripted pushes aim the block's centre at the goal's with this probability, at a
    # random point of the table otherwise (so that the block visits the whole table and
    # the pusher does not idle once the block sits on the goal); a reached aim is
    # replaced by a random one.
    goal_probability: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    aim_reached_distance: Annotated[float, Field(gt=0.0)] = 20.0
    # Scripted pusher: where it waits behind the block's centre (close enough that an
    # occasional brush during the approach is fine: it is contact data too), the radius it
    # keeps while walking around the block, and the largest sideways offset of its push
    # line (off-centre pushes turn the block, so the data also shows rotations).
    approach_distance: Annotated[float, Field(gt=0.0)] = 80.0
    clearance: Annotated[float, Field(gt=0.0)] = 100.0
    max_push_offset: Annotated[float, Field(ge=0.0)] = 35.0
    push_speed: Annotated[float, Field(gt=0.0, le=1.0)] = 0.6
    # Distance to its waypoint at which the scripted pusher moves at full speed; closer it
    # slows down proportionally. Keep it several times the backend's largest step: the
    # pusher lags its target by a step or two and a higher gain overshoots.
    full_speed_distance: Annotated[float, Field(gt=0.0)] = 80.0
    # Random motion: an Ornstein-Uhlenbeck process on the action (smooth, mean zero).
    random_reversion: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    random_sigma: Annotated[float, Field(ge=0.0)] = 0.3
    # Near the table edge random motion is steered back inwards, or it would sit pressed
    # against the edge (the camera then sees identical frames, which look frozen).
    edge_margin: Annotated[float, Field(ge=0.0)] = 60.0

    def __post_init__(self) -> None:
        if self.min_segment_steps > self.max_segment_steps:
            raise ValueError(
                f"min_segment_steps ({self.min_segment_steps}) must not exceed "
                f"max_segment_steps ({self.max_segment_steps})"
            )


_TABLE_SIZE = 512.0  # Push-T's table is [0, 512]^2 (not imported: that would load pygame)
_AIM_MARGIN = 100.0  # random aims stay about a block's length from the walls
_EDGE_PUSHBACK = 0.3  # action units per step, enough to turn the OU motion within a few steps


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.hypot(*vector))
    return vector / norm if norm > 1e-9 else np.zeros_like(vector)


def _rotate(vector: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


class ExplorationPolicy:
    """Contact-rich data collection for Push-T-like tasks (relative 2-D pusher moves).

    It reads ``backend.privileged_state()``: it stands in for a human teleoperator who
    sees the scene. Evaluation treats it as "the data-collection policy" (a baseline), and
    nothing trained from the data ever sees that state.

    Scripted segments walk around the block to a point behind it (on the side opposite
    the aim: the goal, or a random point), then push its centre of mass towards the aim,
    along a line offset sideways by a per-segment amount. Random segments follow an
    Ornstein-Uhlenbeck process started from the last action, so switching segments
    causes no jerk.
    """

    def __init__(self, config: ExplorationConfig | None = None) -> None:
        self.config = config or ExplorationConfig()
        settings = ", ".join(
            f"{f.name}={getattr(self.config, f.name)}" for f in dataclasses.fields(self.config)
        )
        self.description = f"ExplorationPolicy(scripted pusher + OU random motion; {settings})"
        self._rng: np.random.Generator | None = None

    def reset(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._steps_left = 0
        self._scripted = False
        self._pushing = False
        self._push_offset = 0.0
        self._aim: np.ndarray | None = None  # None: the goal
        self._action = np.zeros(2)

    def act(self, frame: np.ndarray, backend: RobotBackend) -> np.ndarray:
        if self._rng is None:
            raise RuntimeError("ExplorationPolicy: call reset(rng) before act()")
        if self._steps_left == 0:
            self._start_segment()
        self._steps_left -= 1
        state = backend.privileged_state()
        if self._scripted:
            action = self._scripted_action(state)
            action = action + self._rng.normal(0.0, self.config.action_noise, size=2)
        else:
            action = self._random_action(state["agent_xy"])
        self._action = np.clip(action, -1.0, 1.0)
        return self._action.astype(np.float32)

    def _start_segment(self) -> None:
        cfg, rng = self.config, self._rng
        self._steps_left = int(rng.integers(cfg.min_segment_steps, cfg.max_segment_steps + 1))
        self._scripted = bool(rng.random() < cfg.scripted_probability)
        self._pushing = False
        self._push_offset = float(rng.uniform(-cfg.max_push_offset, cfg.max_push_offset))
        self._aim = None if rng.random() < cfg.goal_probability else self._random_aim()

    def _random_aim(self) -> np.ndarray:
        return self._rng.uniform(_AIM_MARGIN, _TABLE_SIZE - _AIM_MARGIN, size=2)

    def _scripted_action(self, state: dict[str, Any]) -> np.ndarray:
        cfg = self.config
        agent, centre = state["agent_xy"], state["block_centroid_xy"]
        aim = state["goal_centroid_xy"] if self._aim is None else self._aim
        if np.hypot(*(aim - centre)) < cfg.aim_reached_distance:
            self._aim = aim = self._random_aim()
            self._pushing = False
        push_dir = _unit(aim - centre)
        side = _rotate(push_dir, np.pi / 2)
        contact = centre + side * self._push_offset  # the push line goes through it
        behind = contact - push_dir * cfg.approach_distance
        from_block = agent - centre

        # Push while the pusher stays behind the block; otherwise walk back around it.
        lined_up = np.dot(_unit(contact - agent), push_dir) > np.cos(np.radians(35))
        near = float(np.hypot(*from_block)) < cfg.approach_distance * 1.4
        if self._pushing and not (lined_up and near):
            self._pushing = False
        if not self._pushing and float(np.hypot(*(behind - agent))) < 0.25 * cfg.approach_distance:
            self._pushing = True
        if self._pushing:
            return cfg.push_speed * _unit(contact - agent)

        # Walking to the point behind: if the block is in the way (the pusher is more than
        # 60 degrees around from that point), orbit the block at the clearance radius.
        to_behind = behind - centre
        if np.dot(_unit(from_block), _unit(to_behind)) < 0.5:
            cross = from_block[0] * to_behind[1] - from_block[1] * to_behind[0]
            turn = 1.0 if cross >= 0 else -1.0
            waypoint = centre + cfg.clearance * _rotate(_unit(from_block), turn * np.pi / 4)
        else:
            waypoint = behind
        return (waypoint - agent) / cfg.full_speed_distance

    def _random_action(self, agent_xy: np.ndarray) -> np.ndarray:
        cfg = self.config
        inwards = (agent_xy < cfg.edge_margin).astype(float) - (
            agent_xy > _TABLE_SIZE - cfg.edge_margin
        ).astype(float)
        drift = -cfg.random_reversion * self._action + _EDGE_PUSHBACK * inwards
        return self._action + drift + self._rng.normal(0.0, cfg.random_sigma, size=2)


@dataclass
class RandomMotionConfig:
    """``RandomMotionPolicy``: an Ornstein-Uhlenbeck process in normalised action units."""

    __pydantic_config__ = STRICT_KEYS

    reversion: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15  # pull towards the centre
    sigma: Annotated[float, Field(ge=0.0)] = 0.3  # per-step noise, in half action ranges


class RandomMotionPolicy:
    """Smooth random actions for any robot: it reads only ``action_low``/``action_high``.

    The process runs in [-1, 1] per dimension (the bounds' centre is 0) and is mapped onto
    the bounds, so it suits relative moves (0: hold still) and absolute targets (0: the
    middle of the workspace) alike. Smooth motion, unlike independent uniform draws, moves
    the robot far enough to show the world model what actions do.
    """

    def __init__(self, config: RandomMotionConfig | None = None) -> None:
        self.config = config or RandomMotionConfig()
        self.description = (
            f"RandomMotionPolicy(OU motion; reversion={self.config.reversion}, "
            f"sigma={self.config.sigma})"
        )
        self._rng: np.random.Generator | None = None

    def reset(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._unit: np.ndarray | None = None

    def act(self, frame: np.ndarray, backend: RobotBackend) -> np.ndarray:
        if self._rng is None:
            raise RuntimeError("RandomMotionPolicy: call reset(rng) before act()")
        if self._unit is None:
            self._unit = np.zeros(backend.action_dim)
        noise = self._rng.normal(0.0, self.config.sigma, size=backend.action_dim)
        self._unit = np.clip((1.0 - self.config.reversion) * self._unit + noise, -1.0, 1.0)
        low, high = backend.action_low, backend.action_high
        return (low + (self._unit + 1.0) / 2.0 * (high - low)).astype(np.float32)


# --------------------------------------------------------------------------------------
# Recording


def record_episode(
    backend: RobotBackend, policy: Policy, seed: int, max_steps: int, settle_steps: int = 0
) -> Episode:
    """Run ``policy`` on ``backend`` for at most ``max_steps`` steps from scene ``seed``.

    Step ``t`` holds the frame seen before ``actions[t]`` and the proprioception read with
    it (when the backend has ``state_names``), the action actually executed (clipped to
    the bounds) and the reward/success/progress labels logged after it. ``progress`` is
    recorded when the backend gives one; a step where it gives none is logged as NaN (a
    missing label, which cleaning drops). The episode stops at the backend's step limit,
    or ``settle_steps`` steps after the first success, during which the operator lets go
    (the backend's ``hold_command``: zero moves, or its last action again). Those steps
    hold the only frames that show the task done: frames[t] precedes the action that
    succeeds, so without them no model ever sees a success frame. ``max_steps`` counts
    them. The same seed gives bitwise-identical arrays.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if settle_steps < 0:
        raise ValueError(f"settle_steps must be >= 0, got {settle_steps}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    state_dim = len(backend.state_names)

    def read_state() -> np.ndarray:
        state = np.asarray(backend.read_state(), dtype=np.float32)
        if state.shape != (state_dim,):
            raise ValueError(
                f"{backend.name}: read_state() must return shape ({state_dim},) to match "
                f"state_names, got {state.shape}"
            )
        return state

    policy.reset(np.random.default_rng([seed, _POLICY_STREAM]))
    frame = backend.reset(seed)
    state = read_state()
    frames, states, actions, rewards, success, progress = [], [], [], [], [], []
    has_progress = False
    ended_by = "max_steps"
    settle_left: int | None = None  # steps still to record once the task is done
    hold = np.zeros(backend.action_dim, dtype=np.float32)
    try:
        for _ in range(max_steps):
            action = policy.act(frame, backend) if settle_left is None else hold
            result = backend.step(action)
            if backend.hold_command == "last":
                hold = result.info["action"]
            frames.append(frame)
            states.append(state)
            actions.append(result.info["action"])
            rewards.append(result.reward)
            success.append(result.success)
            has_progress |= result.progress is not None
            progress.append(np.nan if result.progress is None else result.progress)
            frame, state = result.frame, read_state()
            if settle_left is None and result.terminated:
                ended_by, settle_left = "success", settle_steps
            elif settle_left is not None:
                settle_left -= 1
            if settle_left == 0 or result.truncated:
                ended_by = "success" if settle_left is not None else "step_limit"
                break
    finally:
        backend.stop()

    steps = len(frames)
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "fps": float(backend.fps),
        "backend": backend.name,
        "task": backend.task,
        "seed": int(seed),
        "action_low": np.asarray(backend.action_low, dtype=np.float32),
        "action_high": np.asarray(backend.action_high, dtype=np.float32),
        "action_space": backend.action_meaning,
        "policy": policy.description,
        "num_steps": steps,
        "ended_by": ended_by,
    }
    if state_dim:
        attrs["state_names"] = list(backend.state_names)
    return Episode(
        frames=np.stack(frames).astype(np.uint8, copy=False),
        actions=np.stack(actions).astype(np.float32, copy=False),
        rewards=np.asarray(rewards, dtype=np.float32),
        success=np.asarray(success, dtype=np.bool_),
        timestamps=np.arange(steps, dtype=np.float64) / float(backend.fps),
        state=np.stack(states) if state_dim else None,
        progress=np.asarray(progress, dtype=np.float32) if has_progress else None,
        attrs=attrs,
    )


# --------------------------------------------------------------------------------------
# Fault injection

FAULT_KINDS = (
    "drop_frames",
    "duplicate_frames",
    "timestamp_jitter",
    "timestamp_gap",
    "frozen_camera",
    "nan_action",
    "out_of_range_action",
    "truncated_file",
)


@dataclass
class FaultConfig:
    """How often recorded episodes are corrupted, and with which defects."""

    __pydantic_config__ = STRICT_KEYS

    rate: float = 0.0  # probability that an episode gets (exactly one) fault
    kinds: tuple[str, ...] = FAULT_KINDS  # drawn uniformly among these

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {self.rate}")
        self.kinds = tuple(self.kinds)
        unknown = [kind for kind in self.kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("fault rate > 0 needs at least one fault kind")


def _copy(episode: Episode) -> Episode:
    return Episode(
        **{name: array.copy() for name, array in episode.arrays().items()},
        attrs=dict(episode.attrs),
    )


def _map_arrays(episode: Episode, change: Callable[[np.ndarray], np.ndarray]) -> Episode:
    return Episode(
        **{name: change(array) for name, array in episode.arrays().items()},
        attrs=dict(episode.attrs),
    )


def _drop_frames(episode: Episode, rng: np.random.Generator) -> Episode:
    # Interior run only, so that steps remain on both sides and the loss shows as a gap.
    count = int(rng.integers(2, 6))
    start = int(rng.integers(1, len(episode) - count))
    lost = np.arange(start, start + count)
    return _map_arrays(episode, lambda array: np.delete(array, lost, axis=0))


def _duplicate_frames(episode: Episode, rng: np.random.Generator) -> Episode:
    step = int(rng.integers(len(episode)))
    return _map_arrays(episode, lambda array: np.insert(array, step + 1, array[step], axis=0))


def _timestamp_jitter(episode: Episode, rng: np.random.Generator) -> Episode:
    # Bounded by 10 % of a period, so consecutive timestamps never swap. The first stays
    # at 0: timestamps count from the first frame.
    period = 1.0 / float(episode.attrs["fps"])
    noise = np.clip(rng.normal(0.0, 0.03 * period, len(episode) - 1), -0.1 * period, 0.1 * period)
    corrupted = _copy(episode)
    corrupted.timestamps[1:] += noise
    return corrupted


def _timestamp_gap(episode: Episode, rng: np.random.Generator) -> Episode:
    step = int(rng.integers(1, len(episode)))
    corrupted = _copy(episode)
    corrupted.timestamps[step:] += rng.uniform(1.0, 3.0)
    return corrupted


def _frozen_camera(episode: Episode, rng: np.random.Generator) -> Episode:
    length = int(rng.integers(5, 11))  # frames t0 .. t0+length-1 all show frames[t0]
    start = int(rng.integers(0, len(episode) - length + 1))
    corrupted = _copy(episode)
    corrupted.frames[start + 1 : start + length] = corrupted.frames[start]
    return corrupted


def _nan_action(episode: Episode, rng: np.random.Generator) -> Episode:
    count = min(int(rng.integers(1, 4)), len(episode))
    steps = rng.choice(len(episode), size=count, replace=False)
    dims = rng.integers(episode.actions.shape[1], size=count)
    corrupted = _copy(episode)
    corrupted.actions[steps, dims] = np.nan
    return corrupted


def _out_of_range_action(episode: Episode, rng: np.random.Generator) -> Episode:
    low = np.asarray(episode.attrs["action_low"], dtype=np.float64)
    high = np.asarray(episode.attrs["action_high"], dtype=np.float64)
    step = int(rng.integers(len(episode)))
    dim = int(rng.integers(episode.actions.shape[1]))
    sign = rng.choice([-1.0, 1.0])
    # 5 to 50 half-ranges away from the centre: far outside, like a unit or scaling bug.
    value = (low[dim] + high[dim]) / 2 + sign * (high[dim] - low[dim]) / 2 * rng.uniform(5, 50)
    corrupted = _copy(episode)
    corrupted.actions[step, dim] = value
    return corrupted


def _truncated_file(episode: Episode, rng: np.random.Generator) -> bytes:
    data = episode_to_bytes(episode)
    return data[: int(len(data) * rng.uniform(0.4, 0.8))]


_FAULTS: dict[str, Callable[[Episode, np.random.Generator], Episode | bytes]] = {
    "drop_frames": _drop_frames,
    "duplicate_frames": _duplicate_frames,
    "timestamp_jitter": _timestamp_jitter,
    "timestamp_gap": _timestamp_gap,
    "frozen_camera": _frozen_camera,
    "nan_action": _nan_action,
    "out_of_range_action": _out_of_range_action,
    "truncated_file": _truncated_file,
}
# Shortest episode each fault can be applied to (drop_frames keeps a step on each side of
# the largest run; frozen_camera needs room for its longest run).
_MIN_LENGTH = {kind: 1 for kind in FAULT_KINDS} | {
    "drop_frames": 7,
    "timestamp_jitter": 2,
    "timestamp_gap": 2,
    "frozen_camera": 10,
}


def inject_fault(
    episode: Episode, rng: np.random.Generator, config: FaultConfig
) -> tuple[Episode | bytes, str | None]:
    """With probability ``config.rate``, give ``episode`` one fault from ``config.kinds``.

    Returns ``(result, kind)``: the corrupted copy (the bytes of a cut-off HDF5 file for
    ``truncated_file``) and the fault's name, or ``(episode, None)`` when no fault was
    drawn or none of the kinds fits an episode this short. The input is never modified;
    the outcome depends only on the episode and the state of ``rng``.
    """
    if rng.random() >= config.rate:
        return episode, None
    kinds = [kind for kind in config.kinds if len(episode) >= _MIN_LENGTH[kind]]
    if not kinds:
        return episode, None
    kind = kinds[int(rng.integers(len(kinds)))]
    return _FAULTS[kind](episode, rng), kind
