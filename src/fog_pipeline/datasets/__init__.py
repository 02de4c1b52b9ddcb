"""Thin Kedro datasets over the project's own file formats (the logic lives in ``core``)."""

from fog_pipeline.datasets.episodes import EpisodeFolderDataset, TrainingSetDataset
from fog_pipeline.datasets.models import WorldModelDataset
from fog_pipeline.datasets.policy import PolicyBundleDataset, PolicySnapshotsDataset
from fog_pipeline.datasets.surrogate import SurrogateDataset
from fog_pipeline.datasets.videos import GifFolderDataset

__all__ = [
    "EpisodeFolderDataset",
    "GifFolderDataset",
    "PolicyBundleDataset",
    "PolicySnapshotsDataset",
    "SurrogateDataset",
    "TrainingSetDataset",
    "WorldModelDataset",
]
