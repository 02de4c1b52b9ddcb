"""Thin Kedro datasets over the project's own file formats (the logic lives in ``core``)."""

from fog_pipeline.datasets.episodes import EpisodeFolderDataset, TrainingSetDataset
from fog_pipeline.datasets.models import WorldModelDataset
from fog_pipeline.datasets.surrogate import SurrogateDataset

__all__ = [
    "EpisodeFolderDataset",
    "SurrogateDataset",
    "TrainingSetDataset",
    "WorldModelDataset",
]
