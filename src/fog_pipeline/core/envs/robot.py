"""The robot interface: what the pipeline may know about a robot, and nothing more.

A :class:`RobotBackend` is a camera plus an actuator. Only these things ever leave it:

- camera frames (``uint8`` RGB, ``frame_shape``);
- the robot's own proprioception (:meth:`RobotBackend.read_state`, channels named by
  ``state_names``; none for a camera-only robot): what its encoders and controller
  report, never the state of the objects it manipulates;
- the actions that were commanded (after the backend's safety clipping);
- a reward label (for the tabletop task: block coverage from a pose tracker);
- a dense task-progress label (:attr:`StepResult.progress`; for the tabletop task: how
  close the block is to the goal, from the same pose tracker), if the backend has one;
- a success label.

Everything else (poses, contacts, simulator state) stays inside, so that a learned model
trained on simulated logs cannot depend on information a real robot does not log. A real
robot is another subclass with the same contract; Push-T (:mod:`.pusht`) is the default.

The one exception is :meth:`RobotBackend.privileged_state`: a backend may expose its true
state for the *scripted data-collection policy only*, which stands in for a human
teleoperator who can see the scene. Nothing downstream of recording (cleaning, world
models, policies, evaluation metrics) may call it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass
class StepResult:
    """What one control step returns."""

    frame: np.ndarray  # (H, W, 3) uint8, observed after the action was executed
    reward: float  # reward label logged after the action
    success: bool  # task-success label logged with the reward
    terminated: bool  # the task is done (success): evaluation stops here; the robot may
    # keep stepping (the recorder holds still a few steps so the scene after success is seen)
    truncated: bool  # the step limit was reached; call reset() before stepping again
    # Dense task-progress label logged after the action (higher is closer to done), or
    # None when the backend has none.
    progress: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class RobotBackend(abc.ABC):
    """A robot (or a simulator standing in for one) behind a fixed, minimal contract.

    Subclasses set the attributes below in ``__init__`` and implement :meth:`_reset` and
    :meth:`_step` (a robot with proprioception also sets ``state_names`` and overrides
    :meth:`read_state`). The public :meth:`reset` / :meth:`step` live here so that the
    safety rules hold for every backend: non-finite actions are refused, actions are
    clipped to ``[action_low, action_high]`` before they reach the actuator, and an
    episode is truncated after ``max_episode_steps`` steps.
    """

    name: str  # registry name, e.g. "pusht"
    task: str  # what the robot is asked to do, in words
    fps: float  # control rate in Hz: one step() per 1/fps seconds
    action_low: np.ndarray  # float32 (A,)
    action_high: np.ndarray  # float32 (A,)
    action_meaning: str  # what an action commands, in words (stored with every episode)
    frame_shape: tuple[int, int, int]  # (H, W, 3)
    max_episode_steps: int
    # Proprioception channels read_state() returns, in order; empty for a camera-only robot.
    state_names: tuple[str, ...] = ()
    # True only for a simulator, of which evaluation may run several copies side by side
    # (one per process). False, the default, for anything else: one physical robot is one
    # robot, however many copies of its driver could be made.
    is_simulator: bool = False
    # The command that holds the robot still (the recorder sends it once the task is done):
    # "zero" for relative moves, as Push-T's; "last", the last executed action again, for
    # absolute targets, where a zero command would send the robot to the origin.
    hold_command: Literal["zero", "last"] = "zero"

    _steps_taken: int = 0
    _episode_over: bool = True

    @property
    def action_dim(self) -> int:
        return int(self.action_low.shape[0])

    @property
    def steps_taken(self) -> int:
        """Steps executed since the last reset."""
        return self._steps_taken

    def reset(self, seed: int) -> np.ndarray:
        """Start a new episode (the scene drawn from ``seed``); returns the first frame."""
        frame = self._reset(int(seed))
        self._steps_taken, self._episode_over = 0, False
        return frame

    def step(self, action: np.ndarray) -> StepResult:
        """Execute one action for one control period and return what was observed.

        The action is clipped to the bounds (an out-of-range command never reaches the
        actuator); ``info["action"]`` holds the action that was actually executed.
        """
        if self._episode_over:
            raise RuntimeError(f"{self.name}: call reset() before step() (no episode running)")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_low.shape:
            raise ValueError(
                f"{self.name}: action must have shape {self.action_low.shape}, got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.name}: refusing non-finite action {action}")
        action = np.clip(action, self.action_low, self.action_high)
        result = self._step(action)
        self._steps_taken += 1
        result.truncated = result.truncated or self._steps_taken >= self.max_episode_steps
        result.info["action"] = action
        # Success does not end the episode for the robot: the scene is still there, and a
        # recording keeps the frames after it (the only frames that show success).
        self._episode_over = result.truncated
        return result

    @abc.abstractmethod
    def _reset(self, seed: int) -> np.ndarray:
        """Backend-specific reset; returns the first frame."""

    @abc.abstractmethod
    def _step(self, action: np.ndarray) -> StepResult:
        """Backend-specific step with an action already clipped to the bounds."""

    def read_state(self) -> np.ndarray:
        """The robot's own proprioception now (after reset() or the last step()).

        float32 of shape ``(len(state_names),)``. The recorder reads it together with each
        frame, so ``state[t]`` is known when ``actions[t]`` is chosen. A camera-only robot
        keeps this default, which returns an empty array.
        """
        return np.zeros(0, dtype=np.float32)

    def read_reward(self) -> float:
        """The reward label of the scene as it is now, as a pose tracker would read it
        (on the scale of :attr:`StepResult.reward`); evaluation reads it right after a
        reset to know how much of the task the scene already does."""
        raise NotImplementedError(
            f"backend {self.name!r} cannot read its reward label outside a step; the "
            "evaluation needs it for the initial coverage (implement read_reward)"
        )

    def privileged_state(self) -> dict[str, Any]:
        """True scene state, for the scripted data-collection policy only.

        This stands in for the eyes of a human teleoperator while data is collected. It is
        not part of the robot contract: a real robot need not provide it, and no cleaning,
        model, policy or evaluation code may call it.
        """
        raise NotImplementedError(
            f"backend {self.name!r} exposes no privileged state; it is only needed by the "
            "scripted data-collection policy (record with a teleoperated or learned policy)"
        )

    def stop(self) -> None:  # noqa: B027 - optional hook: a backend with nothing to halt keeps it
        """Leave the robot stationary (hold its current pose). Safe to call at any time."""

    def close(self) -> None:
        """Stop the robot and release its resources."""
        self.stop()

    def __enter__(self) -> RobotBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
