"""The world model as gymnasium environments: the single view passes gymnasium's checker,
the vector env's spaces, seeding, same-step autoreset and action handling. Tiny models
(8x8 frames), a few steps each."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from tiny_world import SIZE, STATE_DIM, random_training_set, tiny_world_model

from fog_pipeline.core.surrogate import RSSM, RSSMConfig
from fog_pipeline.core.world_model.gym_env import (
    WorldModelGymEnv,
    WorldModelVectorEnv,
    make_world_model_gym_env,
    make_world_model_vector_env,
)
from fog_pipeline.core.world_model.model import WorldModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N = 3


@pytest.fixture(scope="module")
def data():
    return random_training_set(episodes=4, length=12, val_fraction=0.25)


def world_model(success_logit: float = -20.0) -> WorldModel:
    """A tiny untrained G whose success head always says ``success_logit`` (-20: never
    succeeds, so only the step limit ends episodes; +20: every step succeeds)."""
    model = tiny_world_model(sampling_steps=1)
    with torch.no_grad():
        last = model.reward_model.head[-1]
        last.weight[2].zero_()
        last.bias[2] = success_logit
    return model


def surrogate(**overrides) -> RSSM:
    torch.manual_seed(1)
    config = {
        "frame_height": SIZE,
        "frame_width": SIZE,
        "action_dim": 2,
        "proprio_dim": STATE_DIM,
        "deter": 16,
        "stoch": 4,
        "hidden": 16,
        "cnn_depth": 4,
        "cnn_layers": 2,
        **overrides,
    }
    return RSSM(RSSMConfig(**config)).eval()


def vector(data, observation="frames", num_envs=N, **kwargs) -> WorldModelVectorEnv:
    kwargs.setdefault("model", world_model())
    model = kwargs.pop("model")
    if observation == "latent":
        kwargs.setdefault("surrogate", surrogate())
    return make_world_model_vector_env(model, data, num_envs, observation, **kwargs)


@pytest.mark.parametrize("observation", ["frames", "latent"])
def test_single_view_passes_gymnasiums_env_checker(data, observation):
    env = make_world_model_gym_env(
        world_model(),
        data,
        observation,
        surrogate() if observation == "latent" else None,
        max_steps=5,
        render_mode="rgb_array",
    )
    check_env(env)
    observation_0, _ = env.reset(seed=3)
    assert observation_0 in env.observation_space
    frame = env.render()
    assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8
    _, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and set(info) == {"coverage", "success_prob"}
    assert (terminated, truncated) == (False, False)


def test_vector_env_spaces_shapes_and_dtypes(data):
    env = vector(data)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.single_observation_space["pixels"] == gym.spaces.Box(
        0, 255, (SIZE, SIZE, 3), np.uint8
    )
    assert env.single_observation_space["state"].shape == (STATE_DIM,)
    assert env.observation_space["pixels"].shape == (N, SIZE, SIZE, 3)
    assert env.single_action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert env.action_space.shape == (N, 2)
    observations, infos = env.reset(seed=0)
    assert observations in env.observation_space and infos == {}
    assert observations["pixels"].dtype == np.uint8 and observations["state"].dtype == np.float32
    observations, reward, terminated, truncated, infos = env.step(env.action_space.sample())
    assert observations in env.observation_space
    assert reward.shape == (N,) and reward.dtype == np.float64
    assert np.all((reward >= 0) & (reward <= 1))
    assert terminated.dtype == truncated.dtype == np.bool_ and terminated.shape == (N,)
    assert set(infos) == {"coverage", "_coverage", "success_prob", "_success_prob"}
    assert infos["coverage"].shape == (N,) and infos["_coverage"].all()

    latent = vector(data, "latent")
    assert latent.single_observation_space == gym.spaces.Box(-np.inf, np.inf, (20,), np.float32)
    observations, _ = latent.reset(seed=0)
    assert observations.shape == (N, 20) and observations.dtype == np.float32
    assert latent.step(latent.action_space.sample())[0] in latent.observation_space


@pytest.mark.parametrize("observation", ["frames", "latent"])
def test_seeded_reset_repeats_the_rollout(data, observation):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(3, N, 2)).astype(np.float32)

    def rollout(env, seed):
        observations = [env.reset(seed=seed)[0]]
        rewards = []
        for action in actions:
            observation, reward, *_ = env.step(action)
            observations.append(observation)
            rewards.append(reward)
        return observations, np.stack(rewards)

    env, other = vector(data, observation, seed=0), vector(data, observation, seed=99)
    first, rewards = rollout(env, 5)
    for again, again_rewards in (rollout(env, 5), rollout(other, 5)):
        for got, want in zip(again, first, strict=True):
            assert gym.utils.env_checker.data_equivalence(got, want, exact=True)
        np.testing.assert_array_equal(again_rewards, rewards)
    different, _ = rollout(env, 6)
    assert not gym.utils.env_checker.data_equivalence(different[-1], first[-1])


def test_truncated_environments_restart_in_the_same_step(data):
    env = gym.wrappers.vector.RecordEpisodeStatistics(vector(data, max_steps=2))
    twin = vector(data, max_steps=10)  # the same rollout without the step limit
    hold = np.zeros((N, 2), np.float32)
    env.reset(seed=0)
    twin.reset(seed=0)
    _, _, terminated, truncated, infos = env.step(hold)
    twin.step(hold)
    assert not truncated.any() and not terminated.any() and "final_obs" not in infos
    observations, _, terminated, truncated, infos = env.step(hold)
    twin_observations, *_ = twin.step(hold)
    assert truncated.all() and not terminated.any()
    assert infos["_final_obs"].all() and infos["_final_info"].all()
    assert infos["episode"]["l"].tolist() == [2] * N  # gymnasium's wrapper reads the mode
    inner = env.unwrapped.world_model_env
    assert inner.steps.tolist() == [0] * N
    for i in range(N):
        # The finished episode's last observation is in final_obs ...
        for key in ("pixels", "state"):
            np.testing.assert_array_equal(infos["final_obs"][i][key], twin_observations[key][i])
        # ... and the returned one starts the next episode: a recorded frame and state.
        pixels, state = observations["pixels"][i], observations["state"][i]
        recorded = np.flatnonzero((data.frames == pixels).all(axis=(1, 2, 3)))
        assert len(recorded) and np.array_equal(data.state[recorded[0]], state)
    # The next step is a transition of every environment (no step is spent on the reset).
    env.step(hold)
    assert inner.steps.tolist() == [1] * N


def test_terminated_environments_restart_and_keep_their_last_observation(data, monkeypatch):
    """Env 0 succeeds at the first step; envs 1 and 2 run on. Against a twin without the
    success: env 0's final observation is the twin's, envs 1 and 2 see the twin's."""
    env, twin = vector(data, "latent"), vector(data, "latent")
    inner = env.world_model_env
    step = inner.step

    def succeed_in_env_0(actions):
        out = step(actions)
        out.terminated = torch.tensor([True, False, False])
        return out

    monkeypatch.setattr(inner, "step", succeed_in_env_0)
    env.reset(seed=1)
    twin.reset(seed=1)
    action = np.full((N, 2), 0.3, np.float32)
    observations, _, terminated, truncated, infos = env.step(action)
    twin_observations, *_ = twin.step(action)
    assert terminated.tolist() == [True, False, False] and not truncated.any()
    assert infos["_final_obs"].tolist() == [True, False, False]
    assert infos["final_obs"][1] is None
    np.testing.assert_array_equal(infos["final_obs"][0], twin_observations[0])
    np.testing.assert_array_equal(observations[1:], twin_observations[1:])
    assert infos["final_info"]["_success_prob"].tolist() == [True, False, False]
    assert inner.steps.tolist() == [0, 1, 1]
    # Env 0's new latent is the surrogate's filter of its new context.
    with torch.no_grad():
        posteriors, _ = env._imagination.surrogate.observe(
            inner.frames[:1], inner.past_actions[:1], sample=False, proprio=inner.states[:1]
        )
    np.testing.assert_allclose(observations[0], posteriors.at(-1).feature()[0].numpy())


def test_success_terminates_and_is_reported(data):
    env = vector(data, model=world_model(success_logit=20.0))
    env.reset(seed=0)
    _, _, terminated, truncated, infos = env.step(np.zeros((N, 2), np.float32))
    assert terminated.all() and not truncated.any()
    assert np.all(infos["final_info"]["success_prob"] > 0.5)

    single = make_world_model_gym_env(world_model(success_logit=20.0), data)
    single.reset(seed=0)
    assert single.step(np.zeros(2, np.float32))[2] is True
    with pytest.raises(RuntimeError, match="call reset"):
        single.step(np.zeros(2, np.float32))


def test_actions_are_clipped_to_the_robots_bounds(data):
    outcomes = []
    for scale in (1.0, 5.0):
        env = vector(data, "latent")
        env.reset(seed=2)
        action = np.array([[1.0, -1.0]] * N, np.float32) * scale
        outcomes.append(env.step(action))
        torch.testing.assert_close(
            env.world_model_env.past_actions[:, -1], torch.tensor([[1.0, -1.0]] * N)
        )
    for got, want in zip(outcomes[1][:4], outcomes[0][:4], strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.full((N, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        env.step(np.zeros(2, np.float32))


def test_clear_errors(data):
    with pytest.raises(ValueError, match="pass surrogate="):
        make_world_model_vector_env(world_model(), data, 2, "latent")
    with pytest.raises(ValueError, match="only read with observation='latent'"):
        make_world_model_vector_env(world_model(), data, 2, "frames", surrogate())
    with pytest.raises(ValueError, match="'frames' or 'latent'"):
        make_world_model_vector_env(world_model(), data, 2, "pixels")
    with pytest.raises(ValueError, match="surrogate's action_dim is 3"):
        vector(data, "latent", surrogate=surrogate(action_dim=3))
    with pytest.raises(ValueError, match="one environment"):
        WorldModelGymEnv(vector(data).world_model_env)
    env = vector(data)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros((N, 2), np.float32))
    with pytest.raises(TypeError, match="one int"):
        env.reset(seed=[1, 2, 3])
    single = make_world_model_gym_env(world_model(), data)
    single.reset()
    with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
        single.step(np.zeros(3, np.float32))
