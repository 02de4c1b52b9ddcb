"""Push-T (package ``gym-pusht``, pymunk physics) as a robot backend.

A circular pusher moves on a 512 x 512 table and must push a T-shaped block onto the goal
pose (256, 256, pi/4). The backend logs

- RGB frames at ``width`` x ``height``: the 512 x 512 scene drawn by the package and
  area-averaged down (each pixel is the mean colour of the table patch it covers), so a
  sub-pixel move of the pusher still shifts the edge pixels' colours. The package's own
  downsizing samples one table point per pixel at 16:1, and the 30-unit pusher then
  jumps whole pixels and flickers;
- proprioception ``(agent_x, agent_y, target_x, target_y)``: the pusher's position and
  the controller's current target, each ``xy / 256 - 1`` in [-1, 1]. The pusher position
  is what LeRobot's Push-T logs as ``observation.state``; the target completes the PD
  controller's state (where the pusher is being driven to), as an arm's joint encoders
  and commanded joint positions would;
- the commanded actions;
- the package's reward (``clip(coverage / 0.95, 0, 1)``) and its success flag
  (``coverage > 0.95``, which also ends the episode);
- a dense progress label ``exp(-d / 100)``, where ``d`` is the mean distance (table
  units) of the T's eight corners to their goal positions: in (0, 1], 1 at the goal pose.
  Coverage is zero wherever the block does not overlap the goal; this label says how far
  away it is everywhere. A real setup logs it from a pose tracker, as it does coverage.

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

import cv2
import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs.robot import RobotBackend, StepResult

# pygame prints a banner on import; the package imports it at module level.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
from gym_pusht.envs.pusht import PushTEnv, pymunk_to_shapely  # noqa: E402

WORKSPACE_SIZE = 512.0  # the package's table is [0, 512]^2
# Distance scale of the progress label, in table units. Scenes start with the corners
# 70-200 units from the goal (5th-95th percentile of seeds 0-299, median 140), where
# exp(-d / 100) is 0.5-0.14, and at the far side of the table (~400) it is still 0.02:
# the label has a slope everywhere. A scale of a few tens would be flat (~0) over most
# starts; several hundred would be nearly linear and barely change near the goal.
PROGRESS_SCALE = 100.0

# The T's eight corners in its body frame (the package's add_tee with scale 30, length 4;
# bar corners 0-3, stem corners 4-7, in the order PushTEnv.get_keypoints returns them).
_T_CORNERS = np.array(
    [[-60, 0], [60, 0], [60, 30], [-60, 30], [-15, 30], [15, 30], [15, 120], [-15, 120]],
    dtype=np.float64,
)


def block_keypoints(position: Any, angle: float) -> np.ndarray:
    """The T's eight corners (8, 2) in table units for a block pose (x, y, angle)."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return _T_CORNERS @ rotation.T + np.asarray(position, dtype=np.float64)


def task_progress(block_keypoints: np.ndarray, goal_keypoints: np.ndarray) -> float:
    """The dense progress label ``exp(-d / PROGRESS_SCALE)`` for (8, 2) corner arrays,
    ``d`` the mean distance of corresponding corners; 1 at the goal pose."""
    distance = np.linalg.norm(np.asarray(block_keypoints) - np.asarray(goal_keypoints), axis=1)
    return float(np.exp(-distance.mean() / PROGRESS_SCALE))


class _PushTEnv(PushTEnv):
    """The package's env with a reproducible coverage (its reward and success label)."""

    def _get_coverage(self) -> float:
        # As the package computes it, with the T's two boxes in a fixed order: it takes
        # them from pymunk's Body.shapes, a set ordered by memory address, and the area of
        # the intersection then changes in its last bit from run to run (and from one
        # process to another, which parallel evaluation must not see).
        shapes = sorted(self.block.shapes, key=lambda shape: tuple(shape.get_vertices()))
        goal = pymunk_to_shapely(self.get_goal_pose_body(self.goal_pose), shapes)
        block = pymunk_to_shapely(self.block, shapes)
        return goal.intersection(block).area / goal.area


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
    state_names = ("agent_x", "agent_y", "target_x", "target_y")
    is_simulator = True

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
        # "state" observations: the package then renders nothing in step(); _render() draws
        # the frame once, with area averaging.
        self._env = _PushTEnv(obs_type="state", render_mode="rgb_array")
        self._target: np.ndarray | None = None

    def _render(self) -> np.ndarray:
        screen = self._env._draw()  # the 512 x 512 scene as a pygame surface
        # Averaged straight from the surface's 32-bit pixels (rows of `pitch` bytes), then
        # the colour bytes picked out (little-endian: byte shift // 8 holds a channel):
        # the frame surfarray.pixels3d gives, without its strided copy (a third of a step).
        width, height = screen.get_size()
        pixels = np.frombuffer(screen.get_buffer(), np.uint8)
        pixels = pixels.reshape(height, screen.get_pitch() // 4, 4)[:, :width]
        size = (self.config.width, self.config.height)
        small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small[:, :, [shift // 8 for shift in screen.get_shifts()[:3]]])

    def _reset(self, seed: int) -> np.ndarray:
        self._env.reset(seed=seed)
        self._target = np.array(self._env.agent.position, dtype=np.float64)
        return self._render()

    def _step(self, action: np.ndarray) -> StepResult:
        move = action.astype(np.float64) * self.config.max_step
        self._target = np.clip(self._target + move, 0.0, WORKSPACE_SIZE)
        _, reward, terminated, _, info = self._env.step(self._target.copy())
        env = self._env
        progress = task_progress(
            block_keypoints(env.block.position, env.block.angle),
            block_keypoints(env.goal_pose[:2], env.goal_pose[2]),
        )
        # The package never truncates by itself (its TimeLimit lives in gymnasium.make);
        # the base class applies max_episode_steps.
        return StepResult(
            frame=self._render(),
            reward=float(reward),
            success=bool(info["is_success"]),
            terminated=bool(terminated),
            truncated=False,
            progress=progress,
        )

    def read_reward(self) -> float:
        """The package's reward label for the scene now: ``clip(coverage / 0.95, 0, 1)``."""
        if self._target is None:
            raise RuntimeError("pusht: call reset() first")
        coverage = self._env._get_coverage()
        return float(np.clip(coverage / self._env.success_threshold, 0.0, 1.0))

    def read_state(self) -> np.ndarray:
        """``(agent_x, agent_y, target_x, target_y)``, each ``xy / 256 - 1`` in [-1, 1]."""
        if self._target is None:
            raise RuntimeError("pusht: call reset() first")
        xy = np.concatenate([np.asarray(self._env.agent.position), self._target])
        return (xy / (WORKSPACE_SIZE / 2) - 1.0).astype(np.float32)

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
            "agent_velocity": np.array(env.agent.velocity, dtype=np.float64),
            "target_xy": self._target.copy(),
            "block_xy": np.array(env.block.position, dtype=np.float64),
            "block_angle": float(env.block.angle),
            "block_velocity": np.array(env.block.velocity, dtype=np.float64),
            "block_angular_velocity": float(env.block.angular_velocity),
            "block_centroid_xy": np.array(env.block.local_to_world(centre_local)),
            "block_keypoints": block_keypoints(env.block.position, env.block.angle),
            "goal_pose": np.array(env.goal_pose, dtype=np.float64),
            "goal_centroid_xy": np.array(goal.local_to_world(centre_local)),
            "goal_keypoints": block_keypoints(env.goal_pose[:2], env.goal_pose[2]),
            "coverage": float(env._get_coverage()),
        }

    def stop(self) -> None:
        """Hold the pusher where it is: target onto the pusher, velocity to zero."""
        if self._target is not None:
            self._target = np.array(self._env.agent.position, dtype=np.float64)
            self._env.agent.velocity = (0.0, 0.0)

    def close(self) -> None:
        super().close()
        self._env.close()
