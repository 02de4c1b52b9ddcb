"""The robot simulator behind the world-model environment's interface (a diagnostic's env)."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytest
import torch

from fog_pipeline.core.envs import RobotBackend, StepResult, make_backend
from fog_pipeline.core.envs.batched import BatchedRobotEnv
from fog_pipeline.core.world_model.frames import to_model


def _pusht():
    return make_backend("pusht", width=16, height=16, max_episode_steps=50)


def test_contexts_start_still_and_steps_match_the_robot():
    env = BatchedRobotEnv(_pusht, num_envs=2, context=3, max_steps=4, first_seed=7)
    env.reset()
    assert env.scene_seeds.tolist() == [7, 8]
    with _pusht() as alone:
        first = to_model(alone.reset(8))
        assert torch.equal(env.frames[1], first.expand(3, *first.shape))
        assert torch.equal(env.states[1, 0], env.states[1, -1])
        assert torch.count_nonzero(env.past_actions) == 0
        actions = torch.tensor([[0.5, -0.2], [-1.0, 0.3]])
        out = env.step(actions)
        expected = alone.step(actions[1].numpy())
        assert torch.equal(out.frame[1], to_model(expected.frame))
        assert out.reward[1].item() == pytest.approx(expected.progress)
        assert out.coverage[1].item() == pytest.approx(expected.reward)
        np.testing.assert_allclose(out.state[1].numpy(), alone.read_state())
    assert torch.equal(env.past_actions[:, -1], actions)
    assert torch.equal(env.observation, out.frame)
    assert [env.step(torch.zeros(2, 2)).truncated.tolist() for _ in range(3)][-1] == [True, True]
    # Restart only the second: it gets the next seed; the first keeps its step count.
    env.reset(torch.tensor([False, True]))
    assert env.scene_seeds.tolist() == [7, 9] and env.steps.tolist() == [4, 0]
    with pytest.raises(ValueError, match="not differentiable"):
        env.step(torch.zeros(2, 2), differentiable=True)
    env.close()


class DoneAfterTwo(RobotBackend):
    name, task, fps = "fake", "succeed", 10.0
    action_low, action_high = np.full(1, -1.0, np.float32), np.full(1, 1.0, np.float32)
    action_meaning, frame_shape, max_episode_steps = "nothing", (2, 2, 3), 10
    state_names = ("t",)

    def _reset(self, seed):
        self.t = 0
        return np.zeros(self.frame_shape, np.uint8)

    def _step(self, action):
        self.t += 1
        done = self.t >= 2
        return StepResult(np.zeros(self.frame_shape, np.uint8), float(done), done, done, False, 0.5)

    def read_state(self):
        return np.array([self.t], np.float32)


def test_success_terminates_and_the_robot_checks_are_named():
    env = BatchedRobotEnv(DoneAfterTwo, num_envs=1, context=2, max_steps=10, first_seed=0)
    env.reset()
    assert env.step(torch.zeros(1, 1)).terminated.tolist() == [False]
    out = env.step(torch.zeros(1, 1))
    assert out.terminated.tolist() == [True] and out.success_prob.tolist() == [1.0]
    with pytest.raises(ValueError, match="max_episode_steps"):
        BatchedRobotEnv(DoneAfterTwo, num_envs=1, context=2, max_steps=11, first_seed=0)
