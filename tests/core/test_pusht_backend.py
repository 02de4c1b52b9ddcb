"""The robot interface and the Push-T backend behind it."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytest

from fog_pipeline.core.envs import RobotBackend, StepResult, known_backends, make_backend
from fog_pipeline.core.envs.pusht import PushTBackend, PushTConfig


class CountingBackend(RobotBackend):
    """A fake robot: the frame shows how many steps were taken; it records what it got."""

    name = "counting"
    task = "count"
    fps = 5.0
    action_low = np.array([-1.0, -2.0], dtype=np.float32)
    action_high = np.array([1.0, 2.0], dtype=np.float32)
    action_meaning = "anything"
    frame_shape = (2, 2, 3)
    max_episode_steps = 4

    def __init__(self):
        self.executed = []
        self.stopped = 0

    def _reset(self, seed):
        return np.zeros(self.frame_shape, np.uint8)

    def _step(self, action):
        self.executed.append(action)
        frame = np.full(self.frame_shape, len(self.executed), np.uint8)
        return StepResult(frame, 0.0, False, False, False)

    def stop(self):
        self.stopped += 1


@pytest.fixture(scope="module")
def backend():
    with PushTBackend(PushTConfig(width=24, height=16, max_step=20.0)) as backend:
        yield backend


def test_base_class_clips_refuses_and_truncates():
    robot = CountingBackend()
    with pytest.raises(RuntimeError, match="reset"):
        robot.step(np.zeros(2))
    robot.reset(0)
    result = robot.step(np.array([5.0, -5.0]))
    np.testing.assert_array_equal(robot.executed[-1], [1.0, -2.0])
    np.testing.assert_array_equal(result.info["action"], [1.0, -2.0])
    with pytest.raises(ValueError, match="non-finite"):
        robot.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        robot.step(np.zeros(3))
    assert [robot.step(np.zeros(2)).truncated for _ in range(3)] == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        robot.step(np.zeros(2))
    with pytest.raises(NotImplementedError, match="privileged"):
        robot.privileged_state()
    with robot:
        pass
    assert robot.stopped == 1  # leaving the context stops the robot


def test_reset_and_step_shapes(backend):
    assert backend.frame_shape == (16, 24, 3)
    frame = backend.reset(0)
    assert frame.shape == (16, 24, 3) and frame.dtype == np.uint8
    result = backend.step(np.array([0.5, -0.5], dtype=np.float32))
    assert result.frame.shape == (16, 24, 3) and result.frame.dtype == np.uint8
    assert 0.0 <= result.reward <= 1.0
    assert isinstance(result.success, bool) and not result.truncated
    assert backend.action_low.dtype == backend.action_high.dtype == np.float32
    assert backend.fps == 10.0


def test_huge_action_is_clipped_to_one_bounded_move(backend):
    start = backend.reset(3)
    agent_start = backend.privileged_state()["agent_xy"]
    huge = [backend.step(np.array([1e6, -1e6])) for _ in range(5)]
    agent_huge = backend.privileged_state()["agent_xy"]
    assert backend.reset(3).tobytes() == start.tobytes()
    unit = [backend.step(np.array([1.0, -1.0])) for _ in range(5)]
    # A huge command executes exactly as the largest allowed move.
    np.testing.assert_array_equal(agent_huge, backend.privileged_state()["agent_xy"])
    for a, b in zip(huge, unit, strict=False):
        assert a.frame.tobytes() == b.frame.tobytes()
        np.testing.assert_array_equal(a.info["action"], [1.0, -1.0])
    # The critically damped controller never overtakes its target: 5 moves of max_step.
    assert np.all(np.abs(agent_huge - agent_start) <= 5 * 20.0 + 1e-6)
    assert np.all(np.abs(agent_huge - agent_start) > 20.0)  # and it did move


def test_truncation_at_max_episode_steps():
    with make_backend("pusht", max_episode_steps=3) as short:
        short.reset(1)
        assert [short.step(np.zeros(2)).truncated for _ in range(3)] == [False, False, True]
        with pytest.raises(RuntimeError, match="reset"):
            short.step(np.zeros(2))


def test_reset_frames_are_deterministic(backend):
    first = backend.reset(11)
    backend.step(np.array([1.0, 1.0]))
    assert backend.reset(11).tobytes() == first.tobytes()
    assert backend.reset(12).tobytes() != first.tobytes()


def test_stop_holds_the_pusher(backend):
    backend.reset(5)
    for _ in range(3):
        backend.step(np.array([1.0, 0.0]))
    backend.stop()
    held = backend.privileged_state()["agent_xy"]
    backend.step(np.zeros(2))
    assert np.hypot(*(backend.privileged_state()["agent_xy"] - held)) < 1e-6


def test_rewards_stay_in_unit_interval(backend):
    backend.reset(2)
    rng = np.random.default_rng(0)
    rewards = [backend.step(rng.uniform(-1, 1, 2)).reward for _ in range(30)]
    assert all(0.0 <= r <= 1.0 for r in rewards)


def test_make_backend_errors_name_the_problem():
    assert known_backends() == ["pusht"]
    with pytest.raises(ValueError, match="pusht"):
        make_backend("ur5")
    with pytest.raises(ValueError, match="widht"):
        make_backend("pusht", widht=32)
    with pytest.raises(ValueError, match="max_step"):
        make_backend("pusht", max_step=-1.0)
