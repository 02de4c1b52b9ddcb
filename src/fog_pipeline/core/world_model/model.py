"""The global world model G: next-frame denoiser, next-state model and reward model.

On disk: ``<dir>/denoiser/``, ``<dir>/reward_model/`` and, when the robot logs
proprioception, ``<dir>/state_model/``, each ``config.json`` + ``model.safetensors``;
the denoiser holds the EMA weights (the ones rollouts use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.io import atomic_dir, recover
from fog_pipeline.core.world_model.denoiser import Denoiser, DenoiserConfig
from fog_pipeline.core.world_model.reward import RewardModel, RewardModelConfig
from fog_pipeline.core.world_model.state import StateModel, StateModelConfig


@dataclass
class ImaginedStep:
    """One step of G for a batch."""

    frame: torch.Tensor  # (B, C, H, W) in [-1, 1]
    state: torch.Tensor  # (B, P) proprioception (P = 0 for a camera-only robot)
    reward: torch.Tensor  # (B,) robot reward label
    progress: torch.Tensor  # (B,) dense task progress: the reward a policy optimises
    success_logit: torch.Tensor  # (B,)


@dataclass
class WorldModel:
    denoiser: Denoiser
    reward_model: RewardModel
    state_model: StateModel | None = None  # None: a camera-only robot (state_dim 0)

    @classmethod
    def create(
        cls,
        denoiser: DenoiserConfig,
        reward_model: RewardModelConfig,
        action_mean: list[float],
        action_std: list[float],
        state_model: StateModelConfig | None = None,
    ) -> WorldModel:
        if denoiser.state_dim != reward_model.state_dim or denoiser.state_dim != (
            0 if state_model is None else state_model.state_dim
        ):
            raise ValueError(
                "the denoiser, the reward model and the state model must agree on state_dim "
                f"({denoiser.state_dim}, {reward_model.state_dim}, "
                f"{None if state_model is None else state_model.state_dim})"
            )
        model = cls(
            Denoiser(denoiser),
            RewardModel(reward_model),
            None if state_model is None else StateModel(state_model),
        )
        for module in (model.denoiser, model.state_model):
            if module is not None:
                module.set_action_stats(torch.tensor(action_mean), torch.tensor(action_std))
        return model

    @property
    def context(self) -> int:
        return self.denoiser.config.context

    @property
    def state_dim(self) -> int:
        return self.denoiser.config.state_dim

    def step(
        self,
        context_frames: torch.Tensor,
        context_actions: torch.Tensor,
        context_states: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ImaginedStep:
        """x_{t+1}, s_{t+1} and the labels of the transition from the last L frames
        (B, L, C, H, W), actions (B, L, A) (the last is a_t) and states (B, L, P).

        Every consumer (the policy's environments, distillation, the fidelity reports)
        steps G through here, so all of them use the one sampler setting
        (``denoiser.sampling_steps``) that the fidelity report measures.
        """
        with_state = self.state_dim > 0
        frame = self.denoiser.sample(
            context_frames,
            context_actions,
            context_states if with_state else None,
            noise=noise,
            generator=generator,
        ).to(context_frames.dtype)
        state = (
            self.state_model(context_states, context_actions).to(context_states.dtype)
            if self.state_model is not None
            else context_states[:, -1]
        )
        recent = self.reward_model.config.frames - 1
        frames = torch.cat(
            [context_frames[:, context_frames.shape[1] - recent :], frame[:, None]], 1
        )
        labels = self.reward_model(frames, state if with_state else None)
        return ImaginedStep(
            frame=frame,
            state=state,
            reward=labels.reward,
            progress=labels.progress,
            success_logit=labels.success_logit,
        )

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.denoiser, self.reward_model, self.state_model) if m is not None]

    def to(self, device: torch.device) -> WorldModel:
        for module in self.modules():
            module.to(device)
        return self

    def eval(self) -> WorldModel:
        for module in self.modules():
            module.eval()
        return self

    def requires_grad_(self, flag: bool) -> WorldModel:
        for module in self.modules():
            module.requires_grad_(flag)
        return self

    def save(self, path: str | os.PathLike) -> None:
        with atomic_dir(path) as tmp:
            save_model(tmp / "denoiser", self.denoiser, self.denoiser.config)
            save_model(tmp / "reward_model", self.reward_model, self.reward_model.config)
            if self.state_model is not None:
                save_model(tmp / "state_model", self.state_model, self.state_model.config)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WorldModel:
        path = recover(path)
        if not (path / "denoiser").is_dir():
            raise FileNotFoundError(
                f"No world model at {path}. Train it with `kedro run --pipeline=world_model` "
                "(or `dvc repro world_model`)."
            )
        state_model = (
            load_model(path / "state_model", StateModel, StateModelConfig)
            if (path / "state_model").is_dir()
            else None
        )
        return cls(
            load_model(path / "denoiser", Denoiser, DenoiserConfig),
            load_model(path / "reward_model", RewardModel, RewardModelConfig),
            state_model,
        ).eval()
