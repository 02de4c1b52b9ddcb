"""Push-T (package ``gym-pusht``, pymunk physics) as a camera-only robot backend.

A circular pusher moves on a 512 x 512 table and must push a T-shaped block onto the goal
pose (256, 256, pi/4). The backend logs RGB frames rendered at ``width`` x ``height``, the
commanded actions, the package's reward (``clip(coverage / 0.95, 0, 1)``) and its success
flag (``coverage > 0.95``, which also ends the episode).

Actions are **bounded relative moves** of the pusher's target, a joystick in [-1, 1]^2::

    target <- clip(target + action * max_step, 0, 512)

and the package's PD controller drives the pusher towards the target. The target starts
at the pusher's position on reset. Relative rather than the package's absolute targets,
because a relative command

- is bounded: the largest move per step is ``max_step`` whatever the policy outputs, which
  is the safety property a real arm needs (an absolute target can ask for a jump across
  the table);
- is robot-agnostic: an end-effector velocity/delta command exists on every arm, while
  absolute table coordinates depend on this simulator's frame;
- is already normalised to [-1, 1], the range a tanh policy and the world model's action
  embedding expect, with no dataset statistics needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs.robot import RobotBackend, StepResult

# pygame prints a banner on import; the package imports it at module level.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
from gym_pusht.envs.pusht import PushTEnv  # noqa: E402

WORKSPACE_SIZE = 512.0  # the package's table is [0, 512]^2


@dataclass
class PushTConfig:
    """Settings of the Push-T backend (``make_backend("pusht", **kwargs)``)."""

    __pydantic_config__ = STRICT_KEYS

    width: Annotated[int, Field(gt=0)] = 32
    height: Annotated[int, Field(gt=0)] = 32
    # Largest target move per 0.1 s step, in table units (512 = table width). 25 units is
    # 250 units/s, crossing the table in about 2 s: quick enough to push the block around
    # within a 300-step episode, slow enough that the critically damped PD controller
    # (time constant ~0.1 s) follows the target closely, and about 1.5 pixels per step at
    # 32 x 32 (16 units per pixel), a motion the world model can resolve frame to frame.
    max_step: Annotated[float, Field(gt=0)] = 25.0
    max_episode_steps: Annotated[int, Field(gt=0)] = 300


class PushTBackend(RobotBackend):
    """Push-T rendered to pixels, driven by relative pusher moves (see module docstring)."""

    name = "pusht"
    task = "push the T-shaped block onto the goal pose (256, 256, pi/4)"

    def __init__(self, config: PushTConfig | None = None) -> None:
        self.config = config or PushTConfig()
        self.fps = float(PushTEnv.metadata["render_fps"])
        self.action_low = np.full(2, -1.0, dtype=np.float32)
        self.action_high = np.full(2, 1.0, dtype=np.float32)
        self.action_meaning = (
            f"relative pusher move (dx, dy) in [-1, 1]^2: the pusher target moves by "
            f"action * {self.config.max_step:g} table units per step, clipped to the "
            f"[0, {WORKSPACE_SIZE:g}]^2 table; a PD controller tracks the target"
        )
        self.frame_shape = (self.config.height, self.config.width, 3)
        self.max_episode_steps = self.config.max_episode_steps
        self._env = PushTEnv(
            obs_type="pixels",
            render_mode="rgb_array",
            observation_width=self.config.width,
            observation_height=self.config.height,
        )
        self._target: np.ndarray | None = None

    def _reset(self, seed: int) -> np.ndarray:
        frame, _ = self._env.reset(seed=seed)
        self._target = np.array(self._env.agent.position, dtype=np.float64)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def _step(self, action: np.ndarray) -> StepResult:
        move = action.astype(np.float64) * self.config.max_step
        self._target = np.clip(self._target + move, 0.0, WORKSPACE_SIZE)
        frame, reward, terminated, _, info = self._env.step(self._target.copy())
        # The package never truncates by itself (its TimeLimit lives in gymnasium.make);
        # the base class applies max_episode_steps.
        return StepResult(
            frame=np.ascontiguousarray(frame, dtype=np.uint8),
            reward=float(reward),
            success=bool(info["is_success"]),
            terminated=bool(terminated),
            truncated=False,
        )

    def privileged_state(self) -> dict[str, Any]:
        """True poses, for the scripted data-collection policy only (see RobotBackend).

        ``block_xy``/``block_angle`` are the T's pose as the package defines it (origin at
        the middle of the bar's outer edge, the side away from the stem; the goal pose uses
        the same origin);
        ``*_centroid_xy`` are the T's centre of mass, in the scene and at the goal.
        """
        if self._target is None:
            raise RuntimeError("pusht: call reset() first")
        env = self._env
        goal = env.get_goal_pose_body(env.goal_pose)
        centre_local = env.block.center_of_gravity
        return {
            "agent_xy": np.array(env.agent.position, dtype=np.float64),
            "block_xy": np.array(env.block.position, dtype=np.float64),
            "block_angle": float(env.block.angle),
            "block_centroid_xy": np.array(env.block.local_to_world(centre_local)),
            "goal_pose": np.array(env.goal_pose, dtype=np.float64),
            "goal_centroid_xy": np.array(goal.local_to_world(centre_local)),
        }

    def stop(self) -> None:
        """Hold the pusher where it is: target onto the pusher, velocity to zero."""
        if self._target is not None:
            self._target = np.array(self._env.agent.position, dtype=np.float64)
            self._env.agent.velocity = (0.0, 0.0)

    def close(self) -> None:
        super().close()
        self._env.close()
