"""The global world model G: next-frame denoiser + reward/termination model, one bundle.

On disk: ``<dir>/denoiser/`` and ``<dir>/reward_model/``, each ``config.json`` +
``model.safetensors``; the denoiser holds the EMA weights (the ones rollouts use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.io import atomic_dir
from fog_pipeline.core.world_model.denoiser import Denoiser, DenoiserConfig
from fog_pipeline.core.world_model.reward import RewardModel, RewardModelConfig


@dataclass
class WorldModel:
    denoiser: Denoiser
    reward_model: RewardModel

    @classmethod
    def create(
        cls,
        denoiser: DenoiserConfig,
        reward_model: RewardModelConfig,
        action_mean: list[float],
        action_std: list[float],
    ) -> WorldModel:
        model = cls(Denoiser(denoiser), RewardModel(reward_model))
        for module in (model.denoiser, model.reward_model):
            module.set_action_stats(torch.tensor(action_mean), torch.tensor(action_std))
        return model

    @property
    def context(self) -> int:
        return self.denoiser.config.context

    def to(self, device: torch.device) -> WorldModel:
        self.denoiser.to(device)
        self.reward_model.to(device)
        return self

    def eval(self) -> WorldModel:
        self.denoiser.eval()
        self.reward_model.eval()
        return self

    def save(self, path: str | os.PathLike) -> None:
        with atomic_dir(path) as tmp:
            save_model(tmp / "denoiser", self.denoiser, self.denoiser.config)
            save_model(tmp / "reward_model", self.reward_model, self.reward_model.config)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WorldModel:
        path = Path(path)
        if not (path / "denoiser").is_dir():
            raise FileNotFoundError(
                f"No world model at {path}. Train it with `kedro run --pipeline=world_model` "
                "(or `dvc repro world_model`)."
            )
        return cls(
            load_model(path / "denoiser", Denoiser, DenoiserConfig),
            load_model(path / "reward_model", RewardModel, RewardModelConfig),
        ).eval()
