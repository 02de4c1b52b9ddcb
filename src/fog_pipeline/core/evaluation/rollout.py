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
  Ctrl-C), the robot is stopped before the error propagates (every robot, when several
  run), and the error names the policy, the episode and its scene seed.

Several simulated robots at once: given a :class:`~.robots.SimulatorPool` (see
:func:`~.robots.evaluation_robots`), :func:`evaluate_policy` steps its robots in two
groups that take turns, each group in lockstep with one policy call per step for all
its robots (:class:`BatchEvaluationPolicy`), so the policy acts for one group while the
other's simulators run; a robot whose episode ended takes the next scene seed, or idles.
The results equal the serial ones exactly (same seeds, same numbers, same videos, in
seed order): every policy's randomness is drawn per episode (from the run seed and the
episode's index), learned policies act deterministically, and no robot's action depends
on the others'.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import imageio.v3 as iio
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fog_pipeline.core.envs.robot import RobotBackend
from fog_pipeline.core.episodes.recording import Policy as RecordingPolicy
from fog_pipeline.core.evaluation.robots import ResetReply, SerialRobot, SimulatorPool, StepReply

log = logging.getLogger(__name__)

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


class BatchEvaluationPolicy(EvaluationPolicy, Protocol):
    """A policy that acts for several robots in one call (needed to use more than one).

    Robots are numbered from 0; each runs its own episodes, so the policy keeps its
    per-episode state (a filter, a random generator) per robot.
    """

    def reset_robot(self, robot: int, episode: int) -> None:
        """Robot ``robot`` starts evaluation episode ``episode`` (the index of its scene
        seed): the robot's actions from now on may depend on that episode alone."""

    def act_batch(
        self, robots: Sequence[int], frames: np.ndarray, states: np.ndarray
    ) -> np.ndarray:
        """Actions ``(len(robots), action_dim)``: row k for robot ``robots[k]``, whose
        newest frame is ``frames[k]`` (uint8 ``(N, H, W, 3)``) and state ``states[k]``
        (float32 ``(N, P)``). Row k must not depend on the other rows."""


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


def _episode_stream(seed: int, stream: int, episode: int) -> np.random.SeedSequence:
    # Episode k's own sequence, the k-th child of (seed, stream) as SeedSequence.spawn
    # numbers them: it draws the same numbers whatever ran before it or beside it.
    return np.random.SeedSequence([int(seed), stream], spawn_key=(int(episode),))


class RandomPolicy:
    """Actions drawn uniformly and independently in the bounds: the "no skill" floor."""

    name = "random"
    _STREAM = 10  # keeps its draws apart from other consumers of the run seed

    def __init__(self, action_low: np.ndarray, action_high: np.ndarray, seed: int) -> None:
        self._low = np.asarray(action_low, dtype=np.float64)
        self._high = np.asarray(action_high, dtype=np.float64)
        self._seed = int(seed)
        self._episodes = 0  # episodes started by reset(): the next one's index
        self._rngs: dict[int, np.random.Generator] = {}  # per robot, its episode's

    def reset(self) -> None:
        self.reset_robot(0, self._episodes)
        self._episodes += 1

    def reset_robot(self, robot: int, episode: int) -> None:
        self._rngs[robot] = np.random.default_rng(
            _episode_stream(self._seed, self._STREAM, episode)
        )

    def act(self, frame: np.ndarray, state: np.ndarray) -> np.ndarray:
        return self._draw(0)

    def act_batch(
        self, robots: Sequence[int], frames: np.ndarray, states: np.ndarray
    ) -> np.ndarray:
        return np.stack([self._draw(robot) for robot in robots])

    def _draw(self, robot: int) -> np.ndarray:
        if robot not in self._rngs:
            raise RuntimeError("RandomPolicy: call reset() (or reset_robot()) before acting")
        return self._rngs[robot].uniform(self._low, self._high).astype(np.float32)


class BackendPolicyAdapter:
    """A recording policy (``reset(rng)``, ``act(frame, backend)``) as an evaluation policy.

    Used for the scripted data-collection policy
    (:class:`~fog_pipeline.core.episodes.recording.ExplorationPolicy`), which reads the
    backend's privileged scene state: it is the scripted collector standing in for a
    teleoperator, a reference point for "the behaviour in the data", not a policy that a
    camera-only robot could run. Each episode gets a fresh generator from ``seed`` and
    its index. The proprioception ``state`` is ignored (the collector reads the backend
    itself). With several robots it runs beside each one, in the robot's process
    (:meth:`robot_side`): the privileged state never leaves it.
    """

    _STREAM = 11

    def __init__(
        self, policy: RecordingPolicy, backend: RobotBackend, seed: int, name: str
    ) -> None:
        self.name = name
        self._policy = policy
        self._backend = backend
        self._seed = int(seed)
        self._episodes = 0  # episodes started by reset(): the next one's index

    def reset(self) -> None:
        self.reset_episode(self._episodes)
        self._episodes += 1

    def reset_episode(self, episode: int) -> None:
        rng = np.random.default_rng(_episode_stream(self._seed, self._STREAM, episode))
        self._policy.reset(rng)

    def act(self, frame: np.ndarray, state: np.ndarray) -> np.ndarray:
        return self._policy.act(frame, self._backend)

    def robot_side(self) -> Callable[[RobotBackend], BackendPolicyAdapter]:
        """This policy built around another robot's backend (picklable, for a robot's
        process): what :func:`evaluate_policy` runs beside every robot."""
        return functools.partial(
            BackendPolicyAdapter, self._policy, seed=self._seed, name=self.name
        )


@dataclass
class _Episode:
    index: int  # in the seed list
    seed: int
    keep_frames: bool
    initial_coverage: float = math.nan
    rewards: list[float] = field(default_factory=list)  # the reward label after each step
    success: bool = False
    frames: list[np.ndarray] = field(default_factory=list)  # kept only if asked for
    frame: np.ndarray | None = None  # the newest frame and state: the next action's input
    state: np.ndarray | None = None

    def started(self, reply: ResetReply) -> None:
        self.initial_coverage = reply.initial_coverage
        self._observed(reply.frame, reply.state)

    def stepped(self, reply: StepReply) -> None:
        self.rewards.append(reply.reward)
        self.success = self.success or reply.success
        self._observed(reply.frame, reply.state)

    def _observed(self, frame: np.ndarray, state: np.ndarray) -> None:
        self.frame, self.state = frame, state
        if self.keep_frames:
            self.frames.append(frame)

    def row(self, name: str) -> dict[str, object]:
        rewards = self.rewards  # max_steps >= 1: at least one step ran
        return {
            "policy": name,
            "seed": self.seed,
            "success": self.success,
            "initial_coverage": self.initial_coverage,
            "final_coverage": rewards[-1],
            "max_coverage": max(rewards),
            "improvement": max(rewards) - self.initial_coverage,
            "return": float(np.sum(rewards)),
            "length": len(rewards),
        }


def _failure(name: str, episodes: list[_Episode], robots: int, exc: Exception) -> str:
    where = ", ".join(
        f"{episode.index} (scene seed {episode.seed}) at step {len(episode.rewards)}"
        for episode in episodes
    )
    which = "episode" if len(episodes) == 1 else "episodes (acting for all at once)"
    stopped = "The robot was stopped." if robots == 1 else f"All {robots} robots were stopped."
    return (
        f"policy {name!r} failed in evaluation {which} {where}: {type(exc).__name__}: "
        f"{exc}. {stopped}"
    )


def evaluate_policy(
    policy: EvaluationPolicy,
    robots: RobotBackend | SimulatorPool,
    seeds: Iterable[int],
    max_steps: int,
    *,
    name: str | None = None,
    video_episodes: int = 0,
    progress: bool = True,
) -> PolicyEvaluation:
    """Run ``policy`` closed-loop on ``robots``, one episode per scene seed.

    ``robots`` is a backend (one robot, stepped in this process) or a
    :class:`~.robots.SimulatorPool` (several simulated ones, stepped side by side; a
    policy without :class:`BatchEvaluationPolicy`'s ``act_batch`` then runs on one of
    them at a time). Either way the results are the same.

    An episode ends on success (the backend terminates it), at the backend's own step
    limit, or after ``max_steps`` steps. The policy sees each frame with the
    proprioception read right after it (``policy.act(frame, backend.read_state())``).
    Per episode it records (columns :data:`EPISODE_COLUMNS`, described in the module
    docstring) the policy ``name`` (default: ``policy.name``, else its class name), the
    scene ``seed``, ``success``, the ``initial_coverage`` (``backend.read_reward()``
    right after the reset), ``final_coverage``, ``max_coverage``, ``improvement``
    (``max_coverage - initial_coverage``), ``return`` and ``length``; rows in seed order.

    The frames of the first ``video_episodes`` episodes are kept (see
    :func:`write_gif`). A progress bar shows the successes so far unless ``progress`` is
    false. Raises :class:`EpisodeError` (the cause chained) naming the policy, episode
    and seed if the policy or a robot fails; every robot is stopped first.
    """
    name = name or getattr(policy, "name", None) or type(policy).__name__
    seeds = [int(seed) for seed in seeds]
    pool = SerialRobot(robots) if isinstance(robots, RobotBackend) else robots
    if not seeds:
        raise ValueError(f"no scene seed to evaluate policy {name!r} on")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"scene seeds must be distinct, got {seeds}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if max_steps > pool.max_episode_steps:
        raise ValueError(
            f"backend {pool.name!r}: max_steps={max_steps} exceeds its episode limit "
            f"max_episode_steps={pool.max_episode_steps}, so episodes would silently end "
            "early; lower max_steps or raise the backend's max_episode_steps"
        )
    if video_episodes < 0:
        raise ValueError(f"video_episodes must be >= 0, got {video_episodes}")

    robot_side = getattr(policy, "robot_side", None)
    batched = all(callable(getattr(policy, m, None)) for m in ("reset_robot", "act_batch"))
    slots = pool.size if robot_side is not None or batched else 1
    if slots < pool.size:
        log.info("policy %r has no act_batch(): evaluating it on one robot at a time", name)
    pool.use_policy(None if robot_side is None else robot_side())

    queue = deque(enumerate(seeds))
    running: dict[int, _Episode] = {}  # robot -> its episode
    finished: dict[int, _Episode] = {}  # episode index -> episode
    culprits: list[_Episode] = []  # the episodes the next failure belongs to

    # Two groups of robots: the policy acts for one while the other's simulators run (a
    # learned policy on a CPU costs about as much as a simulator step).
    half = (slots + 1) // 2
    groups = [group for group in (range(half), range(half, slots)) if group]
    group_of = {robot: group for group in groups for robot in group}
    waiting: set[int] = set()  # robots with a request out
    ready: dict[range, list[int]] = {group: [] for group in groups}  # awaiting an action

    def start(robot: int) -> None:
        index, seed = queue.popleft()
        episode = running[robot] = _Episode(index, seed, index < video_episodes)
        culprits[:] = [episode]
        if batched:
            policy.reset_robot(robot, index)
        elif robot_side is None:
            policy.reset()
        pool.send_reset(robot, seed, index, max_steps)
        waiting.add(robot)

    def act(robots: list[int]) -> None:
        episodes = [running[robot] for robot in robots]
        culprits[:] = episodes
        if robot_side is not None:
            actions = [None] * len(robots)  # each robot acts itself
        elif not batched:
            actions = [policy.act(episodes[0].frame, episodes[0].state)]
        else:
            frames = np.stack([episode.frame for episode in episodes])
            states = np.stack([episode.state for episode in episodes])
            actions = np.asarray(policy.act_batch(robots, frames, states))
            if len(actions) != len(robots):
                raise ValueError(
                    f"act_batch() returned {len(actions)} actions for {len(robots)} robots"
                )
        for robot, action in zip(robots, actions, strict=True):
            pool.send_step(robot, action)
        waiting.update(robots)

    try:
        with tqdm(
            total=len(seeds), desc=f"evaluating {name}", unit="ep", disable=not progress
        ) as bar:
            for robot in range(min(slots, len(seeds))):
                start(robot)
            while running:  # every running robot is waiting, or in a group that waits
                for robot in pool.wait(sorted(waiting)):
                    waiting.remove(robot)
                    episode = running[robot]
                    culprits[:] = [episode]
                    reply = pool.receive(robot)
                    group = group_of[robot]
                    if isinstance(reply, ResetReply):
                        episode.started(reply)
                    else:
                        episode.stepped(reply)
                    if isinstance(reply, ResetReply) or not reply.done:
                        ready[group].append(robot)
                    else:
                        finished[episode.index] = running.pop(robot)
                        bar.update()
                        successes = sum(e.success for e in finished.values())
                        bar.set_postfix(success=f"{successes}/{len(finished)}")
                        if queue:
                            start(robot)
                    # A group acts in lockstep: once all its robots have replied.
                    if ready[group] and waiting.isdisjoint(group):
                        act(sorted(ready[group]))
                        ready[group] = []
    except Exception as exc:
        raise EpisodeError(_failure(name, culprits, pool.size, exc)) from exc
    finally:
        pool.stop(list(running))  # also on Ctrl-C: never leave a robot moving

    episodes = [finished[index] for index in range(len(seeds))]
    videos = [
        EpisodeVideo(name, episode.seed, np.stack(episode.frames), pool.fps)
        for episode in episodes
        if episode.keep_frames
    ]
    rows = [episode.row(name) for episode in episodes]
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
