"""Kedro dataset for evaluation videos: a folder of GIFs, one per episode (the writing
itself is :func:`fog_pipeline.core.evaluation.write_gif`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from kedro.io import AbstractDataset

from fog_pipeline.core.evaluation import EpisodeVideo, write_gif
from fog_pipeline.core.io import atomic_dir, recover


class GifFolderDataset(AbstractDataset[Mapping[str, EpisodeVideo], dict[str, np.ndarray]]):
    """``save({name: EpisodeVideo})`` writes ``<path>/<name>.gif`` for each, replacing the
    folder atomically (no stale GIF of an earlier run survives); ``display_size`` is the
    smallest size of a GIF's longer side (frames are upscaled, nearest neighbour).
    ``load()`` returns ``{name: frames (T, H, W, 3) uint8}`` as displayed.
    """

    def __init__(self, path: str, display_size: int = 256, metadata: dict | None = None):
        self._path = Path(path)
        self._display_size = display_size
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        if not recover(self._path).is_dir():
            raise FileNotFoundError(
                f"No evaluation videos at {self._path}. Make them with "
                "`kedro run --pipeline=evaluation` (or `dvc repro evaluation`)."
            )
        return {file.stem: _read_gif(file) for file in sorted(self._path.glob("*.gif"))}

    def save(self, data: Mapping[str, EpisodeVideo]) -> None:
        with atomic_dir(self._path) as tmp:
            for name, video in data.items():
                write_gif(tmp / f"{name}.gif", video, self._display_size)

    def _exists(self) -> bool:
        return recover(self._path).is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "display_size": self._display_size}


def _read_gif(file: Path) -> np.ndarray:
    try:
        return iio.imread(file, index=None)
    except Exception as error:  # imageio's plugins raise their own types
        raise ValueError(f"Damaged GIF {file}: {error}") from error
