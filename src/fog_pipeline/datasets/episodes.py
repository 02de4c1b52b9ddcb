"""Kedro datasets for recorded episodes and the cleaned training set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from tqdm.auto import tqdm

from fog_pipeline.core.episodes.schema import Episode, read_raw, write_episode
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.io import atomic_dir, recover

EpisodeLike = Episode | bytes


class EpisodeFolderDataset(AbstractDataset[Mapping[str, Any], dict[str, Callable]]):
    """A folder of episode HDF5 files (one file per episode, see ``core.episodes.schema``).

    ``load()`` is lazy, like Kedro's ``PartitionedDataset``: it returns
    ``{episode_id: loader}`` where ``loader()`` reads that file and returns
    ``(arrays, attrs)`` or raises ``EpisodeReadError``. Reads share one process-wide HDF5
    lock, so a threaded runner is safe. ``save()`` takes ``{episode_id: Episode | bytes}``
    (bytes: the file's raw content) and replaces the whole folder atomically; ``load``
    never writes, so raw data is never modified.
    """

    def __init__(self, path: str, suffix: str = ".h5", metadata: dict | None = None):
        self._path = Path(path)
        self._suffix = suffix
        self.metadata = metadata

    def load(self) -> dict[str, Callable]:
        if not recover(self._path).is_dir():
            raise FileNotFoundError(
                f"No episode folder at {self._path}. Record episodes with "
                "`kedro run --pipeline=collect`, or point the catalog entry at your logs."
            )
        files = sorted(self._path.glob(f"*{self._suffix}"))
        return {file.stem: partial(read_raw, file) for file in files}

    def save(self, data: Mapping[str, EpisodeLike]) -> None:
        with atomic_dir(self._path) as tmp:
            for episode_id, episode in tqdm(data.items(), desc="writing episodes", unit="ep"):
                write_episode(tmp / f"{episode_id}{self._suffix}", episode)

    def _exists(self) -> bool:
        return recover(self._path).is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "suffix": self._suffix}


class TrainingSetDataset(AbstractDataset[TrainingSet, TrainingSet]):
    """The cleaned training set directory (memory-mapped arrays + segment index)."""

    def __init__(self, path: str, mmap: bool = True, metadata: dict | None = None):
        self._path = Path(path)
        self._mmap = mmap
        self.metadata = metadata

    def load(self) -> TrainingSet:
        return TrainingSet.load(self._path, mmap=self._mmap)

    def save(self, data: TrainingSet) -> None:
        data.save(self._path)

    def _exists(self) -> bool:
        return (recover(self._path) / "meta.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "mmap": self._mmap}
