"""Recording episodes from a backend, the exploration policy, and fault injection."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytest

from fog_pipeline.core.envs import RobotBackend, StepResult, make_backend
from fog_pipeline.core.episodes.recording import (
    FAULT_KINDS,
    ExplorationConfig,
    ExplorationPolicy,
    FaultConfig,
    inject_fault,
    record_episode,
)
from fog_pipeline.core.episodes.schema import (
    ARRAY_DTYPES,
    SCHEMA_VERSION,
    Episode,
    EpisodeReadError,
    episode_to_bytes,
    read_raw,
    write_episode,
)
from fog_pipeline.pipelines.collect.nodes import record_episodes

STEPS = 60


@pytest.fixture(scope="module")
def backend():
    with make_backend("pusht", width=32, height=32) as backend:
        yield backend


@pytest.fixture(scope="module")
def episode(backend):
    return record_episode(backend, ExplorationPolicy(), seed=0, max_steps=STEPS)


def _snapshot(episode):
    return {name: array.copy() for name, array in episode.arrays().items()}


def _assert_same_arrays(a, b):
    for name in ARRAY_DTYPES:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


# --- record_episode ------------------------------------------------------------------


def test_recorded_episode_follows_the_schema(episode, backend):
    assert len(episode) == STEPS
    for name, dtype in ARRAY_DTYPES.items():
        array = getattr(episode, name)
        assert array.dtype == dtype, name
        assert array.shape[0] == STEPS, name
    assert episode.frames.shape == (STEPS, 32, 32, 3)
    assert episode.actions.shape == (STEPS, 2)
    assert np.all(np.abs(episode.actions) <= 1.0)
    np.testing.assert_array_equal(episode.timestamps, np.arange(STEPS) / 10.0)
    assert np.all((episode.rewards >= 0) & (episode.rewards <= 1))
    attrs = episode.attrs
    assert attrs["schema_version"] == SCHEMA_VERSION
    assert attrs["fps"] == 10.0 and attrs["seed"] == 0
    assert attrs["backend"] == "pusht" and attrs["task"] == backend.task
    np.testing.assert_array_equal(attrs["action_low"], [-1, -1])
    np.testing.assert_array_equal(attrs["action_high"], [1, 1])
    assert "relative" in attrs["action_space"]
    assert attrs["policy"].startswith("ExplorationPolicy")
    assert attrs["num_steps"] == STEPS and attrs["ended_by"] == "max_steps"
    assert episode.state.shape == (STEPS, 4)
    assert attrs["state_names"] == list(backend.state_names)
    assert np.all((episode.progress > 0) & (episode.progress <= 1))


class StateWatcher:
    """Wraps a policy and notes what the backend's proprioception says when it acts."""

    def __init__(self, policy):
        self.policy, self.description = policy, policy.description
        self.seen = []

    def reset(self, rng):
        self.policy.reset(rng)

    def act(self, frame, backend):
        self.seen.append(backend.read_state().copy())
        return self.policy.act(frame, backend)


def test_state_is_read_with_each_frame(backend):
    watcher = StateWatcher(ExplorationPolicy())
    episode = record_episode(backend, watcher, seed=3, max_steps=20)
    np.testing.assert_array_equal(episode.state, np.stack(watcher.seen))
    assert episode.state.dtype == np.float32
    # state[t] comes before actions[t]: the first is the reset pose (pusher on its target).
    np.testing.assert_array_equal(episode.state[0, :2], episode.state[0, 2:])


def test_frames_come_before_their_actions(episode, backend):
    """Replaying the actions reproduces frames[t+1] and rewards[t] from step t."""
    assert backend.reset(0).tobytes() == episode.frames[0].tobytes()
    for t in range(10):
        result = backend.step(episode.actions[t])
        assert result.frame.tobytes() == episode.frames[t + 1].tobytes()
        assert np.float32(result.reward) == episode.rewards[t]


def test_recording_is_deterministic_per_seed(episode, backend):
    again = record_episode(backend, ExplorationPolicy(), seed=0, max_steps=STEPS)
    _assert_same_arrays(episode.arrays(), again.arrays())
    other = record_episode(backend, ExplorationPolicy(), seed=1, max_steps=STEPS)
    assert other.frames.tobytes() != episode.frames.tobytes()


def test_round_trip_through_hdf5(episode, tmp_path):
    path = tmp_path / "episode_000.h5"
    write_episode(path, episode)
    arrays, attrs = read_raw(path)
    assert {"state", "progress"} <= set(arrays)
    _assert_same_arrays(episode.arrays(), arrays)
    for key, value in episode.attrs.items():
        np.testing.assert_array_equal(attrs[key], value, err_msg=key)
    assert attrs["state_names"] == ["agent_x", "agent_y", "target_x", "target_y"]


class SucceedsAt(RobotBackend):
    """A fake robot that succeeds on its ``k``-th step and stays done after it."""

    name, task, fps = "fake", "succeed", 4.0
    action_low = np.array([-1.0], dtype=np.float32)
    action_high = np.array([1.0], dtype=np.float32)
    action_meaning = "nothing"
    frame_shape = (1, 1, 3)

    def __init__(self, k, max_episode_steps=100):
        self.k, self.max_episode_steps = k, max_episode_steps

    def _reset(self, seed):
        self.t = 0
        return np.zeros(self.frame_shape, np.uint8)

    def _step(self, action):
        self.t += 1
        done = self.t >= self.k
        frame = np.full(self.frame_shape, self.t, np.uint8)
        return StepResult(frame, float(done), done, done, False)


class ConstantPolicy:
    description = "constant"

    def reset(self, rng):
        pass

    def act(self, frame, backend):
        return np.array([3.0])  # out of bounds: the recording holds the executed action


def test_recording_stops_on_success_and_at_the_step_limit():
    episode = record_episode(SucceedsAt(k=3), ConstantPolicy(), seed=0, max_steps=10)
    assert len(episode) == 3 and episode.attrs["ended_by"] == "success"
    np.testing.assert_array_equal(episode.success, [False, False, True])
    np.testing.assert_array_equal(episode.frames[:, 0, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(episode.actions, [[1.0]] * 3)
    np.testing.assert_array_equal(episode.timestamps, [0.0, 0.25, 0.5])

    # Settling: the operator lets go (zero action) and the frames after success are kept.
    settled = record_episode(SucceedsAt(k=3), ConstantPolicy(), 0, max_steps=10, settle_steps=2)
    assert len(settled) == 5 and settled.attrs["ended_by"] == "success"
    np.testing.assert_array_equal(settled.success, [False, False, True, True, True])
    np.testing.assert_array_equal(settled.frames[:, 0, 0, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(settled.actions, [[1.0]] * 3 + [[0.0]] * 2)
    # A robot commanded by absolute targets holds still on its last action, not on zero.
    absolute = SucceedsAt(k=3)
    absolute.hold_command = "last"
    held = record_episode(absolute, ConstantPolicy(), 0, max_steps=10, settle_steps=2)
    np.testing.assert_array_equal(held.actions, [[1.0]] * 5)
    # max_steps counts the settling steps.
    cut = record_episode(SucceedsAt(k=3), ConstantPolicy(), seed=0, max_steps=4, settle_steps=2)
    assert len(cut) == 4 and cut.attrs["ended_by"] == "success"
    with pytest.raises(ValueError, match="settle_steps"):
        record_episode(SucceedsAt(k=3), ConstantPolicy(), seed=0, max_steps=4, settle_steps=-1)

    limited = record_episode(SucceedsAt(k=50, max_episode_steps=5), ConstantPolicy(), 0, 10)
    assert len(limited) == 5 and limited.attrs["ended_by"] == "step_limit"
    # A camera-only robot without a progress label: neither is logged.
    assert episode.state is episode.progress is None
    assert "state_names" not in episode.attrs
    assert set(episode.arrays()) == set(ARRAY_DTYPES) - {"state", "progress"}


class SometimesProgress(SucceedsAt):
    """Logs a progress label except on its second step, and a 2-channel state."""

    state_names = ("t", "t_squared")

    def read_state(self):
        return np.array([self.t, self.t**2], dtype=np.float32)

    def _step(self, action):
        result = super()._step(action)
        result.progress = None if self.t == 2 else self.t / 10
        return result


def test_missing_progress_is_logged_as_nan_and_state_follows_the_frames():
    episode = record_episode(SometimesProgress(k=50), ConstantPolicy(), seed=0, max_steps=4)
    np.testing.assert_array_equal(episode.progress, np.array([0.1, np.nan, 0.3, 0.4], np.float32))
    np.testing.assert_array_equal(episode.state, [[0, 0], [1, 1], [2, 4], [3, 9]])
    assert episode.attrs["state_names"] == ["t", "t_squared"]


class WrongStateWidth(SometimesProgress):
    def read_state(self):
        return np.zeros(3, np.float32)


def test_state_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="state_names"):
        record_episode(WrongStateWidth(k=50), ConstantPolicy(), seed=0, max_steps=4)


# --- exploration policy ----------------------------------------------------------------


class BlockWatcher:
    """Wraps a policy and counts steps after which the block had moved (privileged view)."""

    def __init__(self, policy):
        self.policy, self.description = policy, policy.description
        self.moved = self.steps = 0

    def reset(self, rng):
        self.previous = None
        self.policy.reset(rng)

    def act(self, frame, backend):
        state = backend.privileged_state()
        if self.previous is not None:
            shift = np.hypot(*(state["block_xy"] - self.previous["block_xy"]))
            turn = abs(state["block_angle"] - self.previous["block_angle"])
            self.moved += bool(shift > 0.5 or turn > 0.005)
            self.steps += 1
        self.previous = state
        return self.policy.act(frame, backend)


def test_exploration_moves_the_block_often(backend):
    watcher = BlockWatcher(ExplorationPolicy())
    for seed in range(4):
        record_episode(backend, watcher, seed=seed, max_steps=80)
    assert watcher.moved / watcher.steps > 0.15


def test_exploration_config_is_validated():
    with pytest.raises(ValueError, match="min_segment_steps"):
        ExplorationConfig(min_segment_steps=50, max_segment_steps=10)


# --- fault injection -------------------------------------------------------------------


def _inject(episode, kind, seed=0):
    before = _snapshot(episode)
    result, name = inject_fault(episode, np.random.default_rng(seed), FaultConfig(1.0, (kind,)))
    _assert_same_arrays(before, episode.arrays())  # the input is never modified
    assert name == kind
    return result


def _period(episode):
    return 1.0 / episode.attrs["fps"]


def test_drop_frames_leaves_a_gap(episode):
    faulty = _inject(episode, "drop_frames")
    assert 2 <= len(episode) - len(faulty) <= 5
    assert len({len(a) for a in faulty.arrays().values()}) == 1
    assert np.diff(faulty.timestamps).max() > 1.5 * _period(episode)
    # The same steps are gone from every array: the rest still line up.
    kept = np.round(faulty.timestamps / _period(episode)).astype(int)
    for name, array in faulty.arrays().items():
        np.testing.assert_array_equal(array, getattr(episode, name)[kept], err_msg=name)


def test_duplicate_frames_repeats_a_record(episode):
    faulty = _inject(episode, "duplicate_frames")
    assert len(faulty) == len(episode) + 1
    t = int(np.flatnonzero(np.diff(faulty.timestamps) <= 0)[0])
    assert {"state", "progress"} <= set(faulty.arrays())
    for array in faulty.arrays().values():
        assert array[t].tobytes() == array[t + 1].tobytes()


def test_timestamp_jitter_is_small_and_keeps_order(episode):
    faulty = _inject(episode, "timestamp_jitter")
    change = np.abs(faulty.timestamps - episode.timestamps)
    assert change.max() > 0 and change.max() <= 0.1 * _period(episode)
    assert np.all(np.diff(faulty.timestamps) > 0)


def test_timestamp_gap_jumps_the_clock(episode):
    faulty = _inject(episode, "timestamp_gap")
    assert 1.0 <= np.diff(faulty.timestamps).max() - _period(episode) <= 3.0


def test_frozen_camera_repeats_one_frame(episode):
    def identical_pairs(frames):
        flat = frames.reshape(len(frames), -1)
        return int(np.all(flat[1:] == flat[:-1], axis=1).sum())

    faulty = _inject(episode, "frozen_camera")
    assert identical_pairs(faulty.frames) >= identical_pairs(episode.frames) + 4
    for name in ("actions", "rewards", "success", "timestamps", "state", "progress"):
        np.testing.assert_array_equal(getattr(faulty, name), getattr(episode, name))


def test_nan_action(episode):
    assert not np.all(np.isfinite(_inject(episode, "nan_action").actions))


def test_out_of_range_action(episode):
    assert np.abs(_inject(episode, "out_of_range_action").actions).max() >= 5.0


def test_truncated_file_cannot_be_read(episode, tmp_path):
    data = _inject(episode, "truncated_file")
    assert isinstance(data, bytes)
    assert 0.4 <= len(data) / len(episode_to_bytes(episode)) <= 0.8
    write_episode(tmp_path / "cut.h5", data)
    with pytest.raises(EpisodeReadError):
        read_raw(tmp_path / "cut.h5")


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "truncated_file"])
def test_faults_are_deterministic_given_the_rng(episode, kind):
    first, second = _inject(episode, kind, seed=5), _inject(episode, kind, seed=5)
    _assert_same_arrays(first.arrays(), second.arrays())


def test_fault_rate_controls_how_often(episode):
    rng = np.random.default_rng(0)
    never = FaultConfig(rate=0.0)
    for _ in range(200):
        result, name = inject_fault(episode, rng, never)
        assert result is episode and name is None
    always = FaultConfig(rate=1.0)
    names = {inject_fault(episode, rng, always)[1] for _ in range(200)}
    assert names == set(FAULT_KINDS)


def test_too_short_episode_gets_no_fault_that_needs_length():
    short = Episode(
        frames=np.zeros((3, 2, 2, 3), np.uint8),
        actions=np.zeros((3, 2), np.float32),
        rewards=np.zeros(3, np.float32),
        success=np.zeros(3, bool),
        timestamps=np.arange(3) / 10.0,
        attrs={"fps": 10.0},
    )
    rng = np.random.default_rng(0)
    result, name = inject_fault(short, rng, FaultConfig(1.0, ("frozen_camera",)))
    assert result is short and name is None


def test_fault_config_is_validated():
    with pytest.raises(ValueError, match="rate"):
        FaultConfig(rate=1.5)
    with pytest.raises(ValueError, match="bogus"):
        FaultConfig(rate=0.5, kinds=("nan_action", "bogus"))
    assert FaultConfig(rate=0.1, kinds=["nan_action"]).kinds == ("nan_action",)


def test_random_motion_drives_any_robot_within_its_bounds():
    """The generic collector on a gymnasium robot (Pendulum: torque in [-2, 2], camera from
    render), through the collect node: it reads nothing but the action bounds."""
    params = {
        "n_episodes": 2,
        "max_steps": 30,
        "backend": "gymnasium",
        "backend_options": {
            "env_id": "Pendulum-v1",
            "observation_key": "render",
            "state_key": "observation",
            "width": 16,
            "height": 16,
            "success_key": None,
        },
        "policy": "random_motion",
        "faults": {"rate": 0.0},
    }
    episodes, manifest = record_episodes(params, seed=0)
    again, _ = record_episodes(params, seed=0)
    assert manifest["steps"].tolist() == [30, 30]
    for episode_id, episode in episodes.items():
        actions = episode.actions[:, 0]
        assert episode.attrs["policy"].startswith("RandomMotionPolicy")
        assert episode.state.shape == (30, 3) and episode.frames.shape == (30, 16, 16, 3)
        assert np.all(np.abs(actions) <= 2.0) and actions.std() > 0.2  # it moves
        # smooth: independent uniform draws in [-2, 2] differ by 4/3 on average
        assert np.abs(np.diff(actions)).mean() < 0.6 * 4 / 3
        np.testing.assert_array_equal(actions, again[episode_id].actions[:, 0])
