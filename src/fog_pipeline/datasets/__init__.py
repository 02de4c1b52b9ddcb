"""Thin Kedro datasets over the project's own file formats (the logic lives in ``core``)."""

from fog_pipeline.datasets.episodes import EpisodeFolderDataset, TrainingSetDataset
from fog_pipeline.datasets.models import WorldModelDataset

__all__ = ["EpisodeFolderDataset", "TrainingSetDataset", "WorldModelDataset"]
