"""The global world model as a batched environment: N imagined robots at once.

``reset`` starts environments from real context windows of the cleaned data (the last L
frames and states and L-1 actions); ``step(actions)`` steps G (:meth:`WorldModel.step`:
the next frame, the next proprioceptive state and the labels) and slides the context.
FoG, the PPO baseline and the visualisations all roll out through this class, with G's
own sampler setting. Actions are clipped to the robot's bounds, as the robot would.

The reward a policy optimises is G's dense task-progress label; the robot's reward label
(coverage on Push-T) is reported beside it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from fog_pipeline.core.device import autocast
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.world_model.frames import to_model
from fog_pipeline.core.world_model.model import WorldModel


@dataclass
class WorldModelStep:
    frame: torch.Tensor  # (N, 3, H, W) in [-1, 1]: the new observation
    state: torch.Tensor  # (N, P): the new proprioceptive state
    reward: torch.Tensor  # (N,) the reward optimised: predicted task progress
    coverage: torch.Tensor  # (N,) predicted robot reward label
    success_prob: torch.Tensor  # (N,)
    terminated: torch.Tensor  # (N,) bool: predicted success
    truncated: torch.Tensor  # (N,) bool: reached max_steps


class WorldModelEnv:
    def __init__(
        self,
        model: WorldModel,
        training_set: TrainingSet,
        num_envs: int,
        split: str = "train",
        max_steps: int = 300,
        seed: int = 0,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ):
        self.model = model.eval()
        self.data = training_set
        self.num_envs = num_envs
        self.max_steps = max_steps
        self.device = torch.device(device)
        self.precision = precision
        self.context = model.context
        self.starts = training_set.window_starts(split, self.context)
        if len(self.starts) == 0:
            raise ValueError(f"No {split!r} segment holds {self.context} frames to start from.")
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.action_low = torch.tensor(training_set.meta["action_low"], device=self.device)
        self.action_high = torch.tensor(training_set.meta["action_high"], device=self.device)
        height, width, channels = training_set.meta["frame_shape"]
        self.frames = torch.zeros(num_envs, self.context, channels, height, width, device=device)
        self.states = torch.zeros(num_envs, self.context, model.state_dim, device=self.device)
        self.past_actions = torch.zeros(num_envs, self.context - 1, len(self.action_low))
        self.past_actions = self.past_actions.to(self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    @property
    def observation(self) -> torch.Tensor:
        """The newest frame of every environment, (N, 3, H, W)."""
        return self.frames[:, -1]

    @property
    def state(self) -> torch.Tensor:
        """The newest proprioceptive state of every environment, (N, P)."""
        return self.states[:, -1]

    def reset(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Restart all environments (or those where ``mask`` is True) from real contexts.

        Restarted environments get fresh tensors with no autograd history.
        """
        index = (
            torch.arange(self.num_envs, device=self.device)
            if mask is None
            else torch.nonzero(mask.to(self.device), as_tuple=False).flatten()
        )
        if len(index):
            draws = torch.randint(
                len(self.starts), (len(index),), generator=self.generator, device=self.device
            )
            windows = self.data.windows(self.starts[draws.cpu().numpy()], self.context)
            frames = to_model(windows["frames"]).to(self.device)
            actions = torch.as_tensor(windows["actions"][:, :-1], device=self.device)
            states = torch.as_tensor(windows["state"], device=self.device)
            self.frames = self.frames.detach().clone()
            self.states = self.states.detach().clone()
            self.past_actions = self.past_actions.detach().clone()
            self.frames[index] = frames
            self.states[index] = states
            self.past_actions[index] = actions
            self.steps[index] = 0
        return self.observation

    def step(self, actions: torch.Tensor, differentiable: bool = False) -> WorldModelStep:
        """Advance every environment by one step of the global model.

        ``differentiable=True`` keeps the autograd graph through the sampler (the
        expensive full-BPTT reference); otherwise everything runs under ``no_grad``.
        """
        actions = torch.maximum(torch.minimum(actions, self.action_high), self.action_low)
        grad = contextlib.nullcontext() if differentiable else torch.no_grad()
        with grad, autocast(self.device, self.precision):
            context_actions = torch.cat([self.past_actions, actions[:, None]], dim=1)
            out = self.model.step(
                self.frames, context_actions, self.states, generator=self.generator
            )
        frame, state = out.frame.float(), out.state.float()
        self.frames = torch.cat([self.frames[:, 1:], frame[:, None]], dim=1)
        self.states = torch.cat([self.states[:, 1:], state[:, None]], dim=1)
        self.past_actions = context_actions[:, 1:]
        self.steps = self.steps + 1
        success_prob = torch.sigmoid(out.success_logit.float())
        return WorldModelStep(
            frame=frame,
            state=state,
            reward=out.progress.float(),
            coverage=out.reward.float(),
            success_prob=success_prob,
            terminated=success_prob > 0.5,
            truncated=self.steps >= self.max_steps,
        )
