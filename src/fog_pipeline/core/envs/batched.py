"""N robot backends stepped in lockstep behind the world-model environment's interface.

:class:`BatchedRobotEnv` has the attributes and methods that FoG's trainer uses on
:class:`~fog_pipeline.core.world_model.env.WorldModelEnv` (``frames``, ``states``,
``past_actions``, ``steps``, ``generator``, ``observation``, ``state``, ``reset(mask)``,
``step(actions)``), so the same FoG loop can roll out in the robot's simulator instead of
the global model. That is the setting of DMO, FoG's predecessor, and here only a
diagnostic (``scripts/fog_on_simulator.py``): it separates what the world model costs from
what the optimiser achieves. No pipeline trains in it.

Differences from G that a reader of the diagnostic should know:

- episodes start from fresh scenes (seeds ``first_seed``, ``first_seed + 1``, ... in
  order of reset), not from recorded contexts; the context before the first step is the
  first frame and state repeated, with zero past actions (a robot standing still);
- the labels are the robot's: ``reward`` is the dense progress label, ``coverage`` the
  reward label, ``success_prob`` is 0 or 1;
- it is not differentiable (``step(differentiable=True)`` is refused).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from fog_pipeline.core.envs.robot import RobotBackend
from fog_pipeline.core.world_model.env import WorldModelStep
from fog_pipeline.core.world_model.frames import to_model


class BatchedRobotEnv:
    def __init__(
        self,
        make_backend: Callable[[], RobotBackend],
        num_envs: int,
        context: int,
        max_steps: int,
        first_seed: int,
        seed: int = 0,
    ) -> None:
        if num_envs < 1 or context < 1 or max_steps < 1:
            raise ValueError(
                f"num_envs, context and max_steps must be >= 1, got {num_envs}, {context}, "
                f"{max_steps}"
            )
        self.backends = [make_backend() for _ in range(num_envs)]
        first = self.backends[0]
        if not first.state_names:
            raise ValueError(f"backend {first.name!r} has no proprioception (state_names)")
        if max_steps > first.max_episode_steps:
            raise ValueError(
                f"max_steps={max_steps} exceeds the backend's max_episode_steps="
                f"{first.max_episode_steps}"
            )
        self.num_envs, self.context, self.max_steps = num_envs, context, max_steps
        self.device = torch.device("cpu")
        self.next_seed = first_seed
        self.scene_seeds = np.full(num_envs, -1, dtype=np.int64)
        # The trainer checkpoints the environment's generator; the robot draws nothing.
        self.generator = torch.Generator().manual_seed(seed)
        self.action_low = torch.as_tensor(first.action_low)
        self.action_high = torch.as_tensor(first.action_high)
        height, width, channels = first.frame_shape
        self.frames = torch.zeros(num_envs, context, channels, height, width)
        self.states = torch.zeros(num_envs, context, len(first.state_names))
        self.past_actions = torch.zeros(num_envs, context - 1, first.action_dim)
        self.steps = torch.zeros(num_envs, dtype=torch.long)

    @property
    def observation(self) -> torch.Tensor:
        return self.frames[:, -1]

    @property
    def state(self) -> torch.Tensor:
        return self.states[:, -1]

    def reset(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Start the environments (all, or where ``mask`` is True) on the next scene seeds."""
        index = range(self.num_envs) if mask is None else torch.nonzero(mask).flatten().tolist()
        self.frames, self.states = self.frames.clone(), self.states.clone()
        self.past_actions = self.past_actions.clone()
        for i in index:
            backend = self.backends[i]
            frame = to_model(backend.reset(self.next_seed))
            state = torch.as_tensor(backend.read_state(), dtype=torch.float32)
            self.scene_seeds[i], self.next_seed = self.next_seed, self.next_seed + 1
            self.frames[i] = frame.expand(self.context, *frame.shape)
            self.states[i] = state.expand(self.context, *state.shape)
            self.past_actions[i] = 0.0
            self.steps[i] = 0
        return self.observation

    def step(self, actions: torch.Tensor, differentiable: bool = False) -> WorldModelStep:
        """One control period on every robot; the labels come from the robot."""
        if differentiable:
            raise ValueError("the robot simulator is not differentiable (gradient_source: global)")
        actions = actions.detach().cpu()
        actions = torch.maximum(torch.minimum(actions, self.action_high), self.action_low)
        frames, states, progress, coverage, success = [], [], [], [], []
        for backend, action in zip(self.backends, actions.numpy(), strict=True):
            result = backend.step(action)
            if result.progress is None:
                raise ValueError(f"backend {backend.name!r} logs no progress label to optimise")
            frames.append(to_model(result.frame))
            states.append(torch.as_tensor(backend.read_state(), dtype=torch.float32))
            progress.append(result.progress)
            coverage.append(result.reward)
            success.append(result.success)
        frame, state = torch.stack(frames), torch.stack(states)
        self.frames = torch.cat([self.frames[:, 1:], frame[:, None]], dim=1)
        self.states = torch.cat([self.states[:, 1:], state[:, None]], dim=1)
        self.past_actions = torch.cat([self.past_actions, actions[:, None]], dim=1)[:, 1:]
        self.steps = self.steps + 1
        succeeded = torch.tensor(success)
        return WorldModelStep(
            frame=frame,
            state=state,
            reward=torch.tensor(progress, dtype=torch.float32),
            coverage=torch.tensor(coverage, dtype=torch.float32),
            success_prob=succeeded.float(),
            terminated=succeeded,
            truncated=self.steps >= self.max_steps,
        )

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
