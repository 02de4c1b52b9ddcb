"""The gymnasium backend on real environments: gym-pusht's PushT (image and agent position
in a Dict observation) and gymnasium's Pendulum (image from render(), state = the
observation vector)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from fog_pipeline.core.config import ConfigError
from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.envs.gymnasium_backend import GymnasiumBackend

PUSHT_ID = "gym_pusht:gym_pusht/PushT-v0"  # the module prefix imports gym_pusht (registers it)
PUSHT_KWARGS = {"obs_type": "pixels_agent_pos", "observation_width": 64, "observation_height": 64}


def pusht(**overrides) -> GymnasiumBackend:
    options = {
        "env_id": PUSHT_ID,
        "env_kwargs": PUSHT_KWARGS,
        "observation_key": "pixels",
        "state_key": "agent_pos",
        "width": 32,
        "height": 32,
        **overrides,
    }
    return make_backend("gymnasium", **options)


def pendulum(**overrides) -> GymnasiumBackend:
    options = {
        "env_id": "Pendulum-v1",
        "observation_key": "render",
        "state_key": "observation",
        "width": 24,
        "height": 16,
        "success_key": None,  # Pendulum reports no success flag and never terminates
        **overrides,
    }
    return make_backend("gymnasium", **options)


def rollout(backend: GymnasiumBackend, seed: int, actions: np.ndarray):
    frames, states = [backend.reset(seed)], [backend.read_state()]
    for action in actions:
        frames.append(backend.step(action).frame)
        states.append(backend.read_state())
    return np.stack(frames), np.stack(states)


def test_pusht_frames_state_and_bounds():
    with pusht() as backend:
        assert isinstance(backend, GymnasiumBackend)
        assert backend.frame_shape == (32, 32, 3)
        assert backend.state_names == ("agent_pos_0", "agent_pos_1")
        assert backend.fps == 10.0 and backend.max_episode_steps == 300
        np.testing.assert_array_equal(backend.action_low, [0, 0])
        np.testing.assert_array_equal(backend.action_high, [512, 512])
        assert backend.action_low.dtype == np.float32
        frame = backend.reset(0)
        assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
        state = backend.read_state()
        assert state.shape == (2,) and state.dtype == np.float32
        result = backend.step(np.array([256.0, 256.0]))
        assert result.frame.shape == (32, 32, 3) and result.frame.dtype == np.uint8
        assert isinstance(result.reward, float) and result.progress is None
        assert not result.success and not result.terminated and not result.truncated
        assert set(result.info) == {"action"}, "the env's info (block pose) must stay inside"


def test_pusht_is_deterministic_per_seed_and_clips_actions():
    actions = np.array([[1000.0, -5.0], [100.0, 400.0], [300.0, 300.0]])
    with pusht() as backend:
        frames, states = rollout(backend, 3, actions)
        again_frames, again_states = rollout(backend, 3, actions)
        other_frames, _ = rollout(backend, 4, actions)
        backend.reset(3)
        np.testing.assert_array_equal(backend.step(actions[0]).info["action"], [512.0, 0.0])
    np.testing.assert_array_equal(frames, again_frames)
    np.testing.assert_array_equal(states, again_states)
    assert not np.array_equal(frames[0], other_frames[0])

    # The state is the env's agent_pos after the same, clipped, actions.
    env = gym.make(PUSHT_ID, **PUSHT_KWARGS)
    obs, _ = env.reset(seed=3)
    expected = [obs["agent_pos"]]
    for action in np.clip(actions, 0.0, 512.0):
        expected.append(env.step(action.astype(np.float32))[0]["agent_pos"])
    env.close()
    np.testing.assert_allclose(states, np.stack(expected).astype(np.float32))


def test_truncation_at_max_episode_steps():
    with pusht(max_episode_steps=3) as backend:
        assert backend.max_episode_steps == 3
        backend.reset(0)
        hold = np.array([256.0, 256.0])
        assert [backend.step(hold).truncated for _ in range(3)] == [False, False, True]
        with pytest.raises(RuntimeError, match="call reset"):
            backend.step(hold)
        backend.reset(1)
        assert not backend.step(hold).truncated


def test_pendulum_from_render_with_the_observation_as_state():
    with pendulum() as backend:
        assert backend.frame_shape == (16, 24, 3)
        assert backend.fps == 30.0 and backend.max_episode_steps == 200
        assert backend.state_names == ("observation_0", "observation_1", "observation_2")
        frames, states = rollout(backend, 5, np.array([[5.0], [-1.0]]))
        again_frames, again_states = rollout(backend, 5, np.array([[5.0], [-1.0]]))
        assert frames.shape == (3, 16, 24, 3) and frames.dtype == np.uint8
        assert frames.std() > 0, "the render shows the pendulum"
        np.testing.assert_array_equal(frames, again_frames)
        backend.reset(5)
        assert backend.step(np.array([5.0])).info["action"].tolist() == [2.0]

    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=5)
    expected = [obs, env.step(np.array([2.0], np.float32))[0]]
    expected.append(env.step(np.array([-1.0], np.float32))[0])
    env.close()
    np.testing.assert_allclose(states, np.stack(expected).astype(np.float32))
    np.testing.assert_array_equal(states, again_states)


def test_clear_errors():
    with pytest.raises(ValueError, match="needs a one-dimensional Box"):
        make_backend("gymnasium", env_id="CartPole-v1", observation_key="render")
    with pytest.raises(ValueError, match=r"'camera' is not in the observation.*'pixels'"):
        pusht(observation_key="camera")
    with pytest.raises(ValueError, match="'agent_xy' is not in the observation"):
        pusht(state_key="agent_xy")
    with pytest.raises(ValueError, match="not an RGB image"):
        pusht(observation_key="agent_pos", state_key=None)
    with pytest.raises(ValueError, match="unknown gymnasium env id 'NoSuchEnv-v0'"):
        make_backend("gymnasium", env_id="NoSuchEnv-v0")
    with pytest.raises(ValueError, match="plain ndarray observation"):
        pendulum(state_key="theta")
    with pytest.raises(ValueError, match="state_names has 3 names"):
        pusht(state_names=["x", "y", "z"])
    with pytest.raises(ConfigError, match="both width and height"):
        pusht(height=None)
    with pytest.raises(ConfigError, match="unknown key"):
        pusht(observation="pixels")
    with pendulum(success_key="is_success") as backend:
        backend.reset(0)
        with pytest.raises(ValueError, match="no 'is_success'.*success_key"):
            backend.step(np.zeros(1))
    with pendulum() as backend, pytest.raises(NotImplementedError, match="read_reward"):
        backend.read_reward()
