"""Kedro dataset for the local surrogate (config.json + model.safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.io import recover
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig


class SurrogateDataset(AbstractDataset[RSSM, RSSM]):
    """The local surrogate (latent RSSM)."""

    def __init__(self, path: str, metadata: dict | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> RSSM:
        if not (recover(self._path) / "config.json").exists():
            raise FileNotFoundError(
                f"No surrogate at {self._path}. Train it with `kedro run --pipeline=surrogate` "
                "(or `dvc repro surrogate`)."
            )
        return load_model(self._path, RSSM, RSSMConfig)

    def save(self, data: RSSM) -> None:
        save_model(self._path, data, data.config)

    def _exists(self) -> bool:
        return (recover(self._path) / "config.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
