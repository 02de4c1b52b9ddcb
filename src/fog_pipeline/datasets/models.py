"""Kedro datasets for model checkpoints (directories of config.json + safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from fog_pipeline.core.io import recover
from fog_pipeline.core.world_model.model import WorldModel


class WorldModelDataset(AbstractDataset[WorldModel, WorldModel]):
    """The global world model bundle (EMA denoiser + reward model)."""

    def __init__(self, path: str, metadata: dict | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> WorldModel:
        return WorldModel.load(self._path)

    def save(self, data: WorldModel) -> None:
        data.save(self._path)

    def _exists(self) -> bool:
        return (recover(self._path) / "denoiser" / "config.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
