"""Kedro datasets: HDF5 episode folder and training set round trips."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DatasetError

from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.schema import EpisodeReadError, episode_to_bytes
from fog_pipeline.core.episodes.training_set import build_training_set
from fog_pipeline.datasets import EpisodeFolderDataset, TrainingSetDataset


def test_episode_folder_round_trip(tmp_path, make_episode):
    dataset = EpisodeFolderDataset(path=str(tmp_path / "episodes"))
    assert not dataset.exists()
    episodes = {"a": make_episode(12, seed=1), "b": make_episode(9, seed=2)}
    dataset.save(episodes)
    assert dataset.exists()

    loaders = dataset.load()
    assert sorted(loaders) == ["a", "b"]
    for key, episode in episodes.items():
        arrays, attrs = loaders[key]()
        for name, array in episode.arrays().items():
            np.testing.assert_array_equal(arrays[name], array)
            assert arrays[name].dtype == array.dtype
        assert attrs["fps"] == 10.0 and attrs["backend"] == "synthetic"
        np.testing.assert_array_equal(attrs["action_low"], [-1, -1])


def test_corrupt_file_fails_only_when_read(tmp_path, make_episode):
    dataset = EpisodeFolderDataset(path=str(tmp_path / "episodes"))
    data = episode_to_bytes(make_episode(12))
    dataset.save({"good": make_episode(12), "cut": data[: len(data) // 3]})
    loaders = dataset.load()  # listing never reads a file
    loaders["good"]()
    with pytest.raises(EpisodeReadError, match="cut.h5"):
        loaders["cut"]()


def test_failed_save_keeps_previous_folder(tmp_path, make_episode):
    dataset = EpisodeFolderDataset(path=str(tmp_path / "episodes"))
    dataset.save({"old": make_episode(12)})
    with pytest.raises(DatasetError, match="arrays"):
        dataset.save({"new": make_episode(12), "broken": object()})
    assert sorted(dataset.load()) == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["episodes"], "no temporary left behind"


def test_missing_folder_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetError, match="kedro run --pipeline=collect"):
        EpisodeFolderDataset(path=str(tmp_path / "nothing")).load()


def test_training_set_round_trip(tmp_path, make_episode):
    segments = []
    for i in range(4):
        episode = make_episode(10, seed=i)
        segments.append(
            Segment(f"ep{i}", 0, episode.frames, episode.actions, episode.rewards, episode.success)
        )
    built = build_training_set(segments, val_fraction=0.25, seed=0, meta={"fps": 10.0})
    dataset = TrainingSetDataset(path=str(tmp_path / "training_set"))
    dataset.save(built)
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded.frames, built.frames)
    np.testing.assert_array_equal(loaded.actions, built.actions)
    assert loaded.segments.equals(built.segments)
    assert loaded.meta == built.meta
    assert list(loaded.segments["split"]).count("val") == 1
    # Windows never cross a segment boundary: 4 segments of 10 steps, windows of 4.
    assert len(loaded.window_starts("train", 4)) == 3 * 7
    window = loaded.windows(loaded.window_starts("val", 10), 10)
    assert window["frames"].shape == (1, 10, 8, 8, 3)
