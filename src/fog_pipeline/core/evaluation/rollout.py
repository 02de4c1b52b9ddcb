"""Closed-loop evaluation of a policy on a robot backend.

Every policy is evaluated through one interface, :class:`EvaluationPolicy`: ``reset()``
before an episode, ``act(frame, state) -> action`` after each camera frame, ``state``
being the robot's proprioception (:meth:`RobotBackend.read_state`) read right after that
frame. A learned policy (FoG, PPO) implements it directly; :class:`RandomPolicy` and
:class:`BackendPolicyAdapter` (for the data-collection policy, whose interface is
``reset(rng)`` / ``act(frame, backend)``) bring the reference policies to it, so that all
are run by the same loop, :func:`evaluate_policy`, on the same scenes.

Recorded per episode (:data:`EPISODE_COLUMNS`), from the robot's labels only (its reward
label is the task coverage: on Push-T ``clip(coverage / 0.95, 0, 1)``, 1.0 = success):

- ``success``: some step was labelled a success (on Push-T that also ends the episode);
- ``initial_coverage``: the label of the scene as it was reset
  (:meth:`RobotBackend.read_reward`, before any action);
- ``final_coverage``: the label after the last step (where the block ended up);
- ``max_coverage``: the largest label over the steps (where it came closest);
- ``improvement``: ``max_coverage - initial_coverage`` (what the policy added to the
  scene it was given; negative if it only ever pushed the block away);
- ``return`` (sum of the step labels) and ``length`` (steps executed).

Robot safety during evaluation:

- actions are clipped to the backend's bounds by :meth:`RobotBackend.step` (the one
  place that does it); the loop checks the executed action the backend reports and stops
  the robot if a backend ever executed one outside its bounds;
- every episode has a time limit (``max_steps`` control steps);
- whatever happens in an episode (a policy exception, a refused non-finite action,
  Ctrl-C), the robot is stopped before the error propagates, and the error names the
  policy, the episode and its scene seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import imageio.v3 as iio
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fog_pipeline.core.envs.robot import RobotBackend, StepResult
from fog_pipeline.core.episodes.recording import Policy as RecordingPolicy

EPISODE_COLUMNS = (
    "policy",
    "seed",
    "success",
    "initial_coverage",
    "final_coverage",
    "max_coverage",
    "improvement",
    "return",
    "length",
)


class EvaluationPolicy(Protocol):
    """What :func:`evaluate_policy` needs from a policy.

    An optional ``name`` attribute names it in the results (otherwise its class name).
    """

    def reset(self) -> None:
        """Start a new episode."""

    def act(self, frame: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The next action ``(action_dim,)`` after seeing ``frame`` (uint8 ``(H, W, 3)``).

        ``state`` is the robot's proprioception read right after ``frame`` (float32
        ``(len(backend.state_names),)``, empty for a camera-only robot).
        """


class EpisodeError(RuntimeError):
    """A policy or the robot failed during an evaluation episode (the robot was stopped)."""


@dataclass
class EpisodeVideo:
    """The camera frames of one evaluation episode: the first frame, then one per step."""

    policy: str
    seed: int
    frames: np.ndarray  # (steps + 1, H, W, 3) uint8
    fps: float


@dataclass
class PolicyEvaluation:
    """What :func:`evaluate_policy` returns."""

    episodes: pd.DataFrame  # one row per episode, columns EPISODE_COLUMNS
    videos: list[EpisodeVideo]  # the first ``video_episodes`` episodes, in seed order


def _episode_streams(seed: int, stream: int) -> np.random.SeedSequence:
    # One child sequence per episode (spawned in order): episode k draws the same numbers
    # whatever the episodes before it did, e.g. however long they ran.
    return np.random.SeedSequence([int(seed), stream])


class RandomPolicy:
    """Actions drawn uniformly and independently in the bounds: the "no skill" floor."""

    name = "random"
    _STREAM = 10  # keeps its draws apart from other consumers of the run seed

    def __init__(self, action_low: np.ndarray, action_high: np.ndarray, seed: int) -> None:
        self._low = np.asarray(action_low, dtype=np.float64)
        self._high = np.asarray(action_high, dtype=np.float64)
        self._streams = _episode_streams(seed, self._STREAM)
        self._rng: np.random.Generator | None = None

    def reset(self) -> None:
        self._rng = np.random.default_rng(self._streams.spawn(1)[0])

    def act(self, frame: np.ndarray, state: np.ndarray) -> np.ndarray:
        if self._rng is None:
            raise RuntimeError("RandomPolicy: call reset() before act()")
        return self._rng.uniform(self._low, self._high).astype(np.float32)


class BackendPolicyAdapter:
    """A recording policy (``reset(rng)``, ``act(frame, backend)``) as an evaluation policy.

    Used for the scripted data-collection policy
    (:class:`~fog_pipeline.core.episodes.recording.ExplorationPolicy`), which reads the
    backend's privileged scene state: it is the scripted collector standing in for a
    teleoperator, a reference point for "the behaviour in the data", not a policy that a
    camera-only robot could run. Each episode gets a fresh generator from ``seed``. The
    proprioception ``state`` is ignored (the collector reads the backend itself).
    """

    _STREAM = 11

    def __init__(
        self, policy: RecordingPolicy, backend: RobotBackend, seed: int, name: str
    ) -> None:
        self.name = name
        self._policy = policy
        self._backend = backend
        self._streams = _episode_streams(seed, self._STREAM)

    def reset(self) -> None:
        self._policy.reset(np.random.default_rng(self._streams.spawn(1)[0]))

    def act(self, frame: np.ndarray, state: np.ndarray) -> np.ndarray:
        return self._policy.act(frame, self._backend)


def _check_executed(backend: RobotBackend, result: StepResult) -> None:
    """Fail if the backend reports an executed action outside its bounds (or none).

    ``RobotBackend.step`` clips before the actuator and reports the executed action; a
    subclass that overrode ``step`` could skip that, and on a robot that must not pass.
    """
    executed = result.info.get("action")
    if executed is None:
        raise RuntimeError(
            f"backend {backend.name!r} did not report the executed action "
            "(StepResult.info['action']); RobotBackend.step() does: do not override it"
        )
    executed = np.asarray(executed)
    if np.any(executed < backend.action_low) or np.any(executed > backend.action_high):
        raise RuntimeError(
            f"backend {backend.name!r} executed action {executed}, outside its bounds "
            f"[{backend.action_low}, {backend.action_high}]; its step() must clip like "
            "RobotBackend.step() does"
        )


def _read_state(backend: RobotBackend) -> np.ndarray:
    """The robot's proprioception, checked against its declared ``state_names``."""
    state = backend.read_state()
    expected = (len(backend.state_names),)
    if np.shape(state) != expected:
        raise RuntimeError(
            f"backend {backend.name!r}: read_state() returned shape {np.shape(state)}, "
            f"expected {expected} (one value per state_names entry)"
        )
    return state


def _read_initial_coverage(backend: RobotBackend) -> float:
    coverage = float(backend.read_reward())
    if not math.isfinite(coverage):
        raise RuntimeError(f"backend {backend.name!r}: read_reward() returned {coverage}")
    return coverage


@dataclass
class _Episode:
    initial_coverage: float
    rewards: list[float]  # the reward label after each step
    success: bool
    frames: list[np.ndarray]  # kept only if asked for


def _run_episode(
    policy: EvaluationPolicy,
    name: str,
    index: int,
    backend: RobotBackend,
    seed: int,
    max_steps: int,
    keep_frames: bool,
) -> _Episode:
    """Episode ``index`` on scene ``seed``; stops the robot whatever happens."""
    episode = _Episode(math.nan, [], False, [])
    try:
        policy.reset()
        frame = backend.reset(seed)
        # The scene's label before any action: how much of the goal the block covers
        # already (a policy is credited with what it adds, see `improvement`).
        episode.initial_coverage = _read_initial_coverage(backend)
        state = _read_state(backend)
        if keep_frames:
            episode.frames.append(frame)
        for _ in range(max_steps):
            result = backend.step(policy.act(frame, state))
            _check_executed(backend, result)
            episode.rewards.append(float(result.reward))
            episode.success = episode.success or bool(result.success)
            frame, state = result.frame, _read_state(backend)
            if keep_frames:
                episode.frames.append(frame)
            if result.terminated or result.truncated:
                break
    except Exception as exc:
        raise EpisodeError(
            f"policy {name!r} failed in evaluation episode {index} (scene seed {seed}) at "
            f"step {len(episode.rewards)}: {type(exc).__name__}: {exc}. The robot was stopped."
        ) from exc
    finally:
        backend.stop()  # also on Ctrl-C: never leave the robot moving
    return episode


def evaluate_policy(
    policy: EvaluationPolicy,
    backend: RobotBackend,
    seeds: Iterable[int],
    max_steps: int,
    *,
    name: str | None = None,
    video_episodes: int = 0,
    progress: bool = True,
) -> PolicyEvaluation:
    """Run ``policy`` closed-loop on ``backend``, one episode per scene seed.

    An episode ends on success (the backend terminates it), at the backend's own step
    limit, or after ``max_steps`` steps. The policy sees each frame with the
    proprioception read right after it (``policy.act(frame, backend.read_state())``).
    Per episode it records (columns :data:`EPISODE_COLUMNS`, described in the module
    docstring) the policy ``name`` (default: ``policy.name``, else its class name), the
    scene ``seed``, ``success``, the ``initial_coverage`` (``backend.read_reward()``
    right after the reset), ``final_coverage``, ``max_coverage``, ``improvement``
    (``max_coverage - initial_coverage``), ``return`` and ``length``.

    The frames of the first ``video_episodes`` episodes are kept (see
    :func:`write_gif`). A progress bar shows the successes so far unless ``progress`` is
    false. Raises :class:`EpisodeError` (the cause chained) naming the policy, episode
    and seed if the policy or the robot fails; the robot is stopped first.
    """
    name = name or getattr(policy, "name", None) or type(policy).__name__
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError(f"no scene seed to evaluate policy {name!r} on")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"scene seeds must be distinct, got {seeds}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if max_steps > backend.max_episode_steps:
        raise ValueError(
            f"backend {backend.name!r}: max_steps={max_steps} exceeds its episode limit "
            f"max_episode_steps={backend.max_episode_steps}, so episodes would silently end "
            "early; lower max_steps or raise the backend's max_episode_steps"
        )
    if video_episodes < 0:
        raise ValueError(f"video_episodes must be >= 0, got {video_episodes}")

    rows, videos, successes = [], [], 0
    with tqdm(total=len(seeds), desc=f"evaluating {name}", unit="ep", disable=not progress) as bar:
        for index, seed in enumerate(seeds):
            keep_frames = index < video_episodes
            episode = _run_episode(policy, name, index, backend, seed, max_steps, keep_frames)
            rewards = episode.rewards  # max_steps >= 1: at least one step ran
            rows.append(
                {
                    "policy": name,
                    "seed": seed,
                    "success": episode.success,
                    "initial_coverage": episode.initial_coverage,
                    "final_coverage": rewards[-1],
                    "max_coverage": max(rewards),
                    "improvement": max(rewards) - episode.initial_coverage,
                    "return": float(np.sum(rewards)),
                    "length": len(rewards),
                }
            )
            if keep_frames:
                frames = np.stack(episode.frames)
                videos.append(EpisodeVideo(name, seed, frames, float(backend.fps)))
            successes += episode.success
            bar.set_postfix(success=f"{successes}/{index + 1}")
            bar.update()
    return PolicyEvaluation(pd.DataFrame(rows, columns=list(EPISODE_COLUMNS)), videos)


def write_gif(path: str | Path, video: EpisodeVideo, display_size: int = 256) -> Path:
    """Write ``video`` as a looping GIF at its real frame rate; returns the path.

    Frames are upscaled by an integer factor with nearest-neighbour (blocky pixels, no
    invented detail) so that the longer side is at least ``display_size`` pixels: a
    32 x 32 camera becomes 256 x 256. The GIF writer merges identical consecutive frames
    into one longer frame: a GIF may hold fewer frames than the episode, yet a pause
    still plays for its real duration.
    """
    frames = np.asarray(video.frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    scale = max(1, math.ceil(display_size / max(frames.shape[1:3])))
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path = Path(path)
    iio.imwrite(path, frames, extension=".gif", duration=1000.0 / video.fps, loop=0)
    return path
