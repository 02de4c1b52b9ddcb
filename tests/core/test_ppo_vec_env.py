"""LatentWorldModelVecEnv keeps stable-baselines3's VecEnv contract: a finished environment
restarts inside the step that ends it; the step returns the restarted observation, with
the last one in ``infos[i]["terminal_observation"]``, and the other environments go on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tiny_world import random_training_set, tiny_rssm, tiny_world_model

from fog_pipeline.core.baselines.ppo import LatentWorldModelVecEnv
from fog_pipeline.core.world_model.env import WorldModelEnv

N = 3
SUCCESS_VALUE = 5.0


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    surrogate = tiny_rssm()
    return tiny_world_model(), random_training_set(4, 12, 0.25), surrogate


def make(parts, max_steps=10, successes=None):
    """A vec env whose G predicts success exactly at ``successes`` ({step: [bool] * N},
    steps from 1): an untrained G's own predictions would be arbitrary. The same
    arguments give the same environment, step for step (seeded sampler and restarts)."""
    model, data, surrogate = parts
    env = WorldModelEnv(model, data, num_envs=N, max_steps=max_steps, seed=0)
    step, seen = env.step, []

    def scripted(actions, differentiable=False):
        seen.append(actions.clone())
        out = step(actions, differentiable)
        flags = (successes or {}).get(len(seen), [False] * N)
        return dataclasses.replace(out, terminated=torch.tensor(flags))

    env.step = scripted
    vec = LatentWorldModelVecEnv(env, surrogate, success_value=SUCCESS_VALUE)
    return vec, seen


def filtered(vec) -> np.ndarray:
    """The surrogate's feature filtered from each environment's current context."""
    env = vec.env
    posteriors, _ = vec.surrogate.observe(
        env.frames, env.past_actions, sample=False, proprio=env.states
    )
    return posteriors.at(-1).feature().detach().numpy()


def test_reset_and_step_shapes(parts):
    vec, _ = make(parts)
    features = 16 + 4
    assert vec.observation_space.shape == (features,) and vec.action_space.shape == (2,)
    observation = vec.reset()
    assert observation.shape == (N, features) and observation.dtype == np.float32
    np.testing.assert_allclose(observation, filtered(vec), rtol=1e-6)
    observation, reward, done, infos = vec.step(np.zeros((N, 2), np.float32))
    assert observation.shape == (N, features) and reward.shape == (N,) and done.shape == (N,)
    assert done.dtype == bool and not done.any() and infos == [{}] * N
    assert vec.transitions == N


def test_a_success_restarts_that_environment_within_the_step(parts):
    successes = {2: [False, True, False]}
    vec, _ = make(parts, successes=successes)
    twin, _ = make(parts)  # the same run where nothing ends
    actions = np.full((N, 2), 0.3, np.float32)
    for env in (vec, twin):
        env.reset()
        env.step(actions)
    observation, reward, done, infos = vec.step(actions)
    going_on, twin_reward, _, _ = twin.step(actions)

    assert done.tolist() == [False, True, False]
    # The last observation of the finished environment is in its info ...
    np.testing.assert_allclose(infos[1]["terminal_observation"], going_on[1], rtol=1e-5)
    assert infos[1]["TimeLimit.truncated"] is False  # a success is a real end
    assert infos[0] == infos[2] == {}
    # ... and the observation returned is the restarted one, filtered from a new context.
    assert vec.env.steps.tolist() == [2, 0, 2]
    np.testing.assert_allclose(observation[1], filtered(vec)[1], rtol=1e-5)
    assert not np.allclose(observation[1], going_on[1])
    # The others go on as if nothing had happened.
    np.testing.assert_allclose(observation[[0, 2]], going_on[[0, 2]], rtol=1e-5)
    # The success's step earns the value of staying at the top, the others G's progress.
    np.testing.assert_allclose(reward, twin_reward + np.array([0, SUCCESS_VALUE, 0]), rtol=1e-6)


def test_the_time_limit_truncates_and_restarts_every_environment(parts):
    vec, _ = make(parts, max_steps=2)
    vec.reset()
    _, _, done, _ = vec.step(np.zeros((N, 2), np.float32))
    assert not done.any()
    observation, _, done, infos = vec.step(np.zeros((N, 2), np.float32))
    assert done.all()
    assert [info["TimeLimit.truncated"] for info in infos] == [True] * N
    assert all(info["terminal_observation"].shape == observation[0].shape for info in infos)
    assert vec.env.steps.tolist() == [0] * N
    np.testing.assert_allclose(observation, filtered(vec), rtol=1e-5)
    # A success on the last step is a termination, not a truncation.
    vec, _ = make(parts, max_steps=2, successes={2: [True, False, False]})
    vec.reset()
    vec.step(np.zeros((N, 2), np.float32))
    _, _, done, infos = vec.step(np.zeros((N, 2), np.float32))
    assert done.all()
    assert [info["TimeLimit.truncated"] for info in infos] == [False, True, True]
    assert vec.transitions == 2 * N


def test_actions_are_clipped_to_the_unit_box_and_mapped_to_the_robots(parts):
    vec, seen = make(parts)
    vec.env.action_low = torch.tensor([0.0, -2.0])
    vec.env.action_high = torch.tensor([4.0, 2.0])
    vec.reset()
    vec.step(np.array([[1.0, -1.0], [0.0, 0.0], [5.0, -5.0]], np.float32))
    np.testing.assert_allclose(seen[0].numpy(), [[4.0, -2.0], [2.0, 0.0], [4.0, -2.0]])
