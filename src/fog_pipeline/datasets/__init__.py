"""Thin Kedro datasets over the project's own file formats (the logic lives in ``core``)."""

from fog_pipeline.datasets.episodes import EpisodeFolderDataset, TrainingSetDataset

__all__ = ["EpisodeFolderDataset", "TrainingSetDataset"]
