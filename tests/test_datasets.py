"""Kedro datasets: HDF5 episode folder and training set round trips."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DatasetError

from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.schema import EpisodeReadError, episode_to_bytes
from fog_pipeline.core.episodes.training_set import TrainingSet, build_training_set
from fog_pipeline.datasets import EpisodeFolderDataset, TrainingSetDataset
from fog_pipeline.pipelines.episodes.nodes import build_dataset, clean_episodes, report_episodes


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
    # Segments made without state or progress: width 0, the reward as progress.
    assert window["state"].shape == (1, 10, 0) and window["progress"].shape == (1, 10)
    np.testing.assert_array_equal(loaded.progress, built.rewards)


def test_training_set_carries_state_and_progress(tmp_path, make_episode):
    names = ["joint_0", "joint_1", "gripper"]
    segments = []
    for i in range(4):
        episode = make_episode(10, seed=i)
        state = np.full((10, 3), i, np.float32) + np.arange(10, dtype=np.float32)[:, None]
        progress = np.linspace(0, 1, 10, dtype=np.float32)
        segments.append(
            Segment(
                f"ep{i}",
                0,
                episode.frames,
                episode.actions,
                episode.rewards,
                episode.success,
                state=state,
                progress=progress,
            )
        )
    meta = {"state_names": names, "progress_source": "progress"}
    built = build_training_set(segments, val_fraction=0.25, seed=0, meta=meta)
    built.save(tmp_path / "training_set")
    loaded = TrainingSet.load(tmp_path / "training_set")
    assert loaded.state.shape == (40, 3) and loaded.state.dtype == np.float32
    np.testing.assert_array_equal(loaded.state, built.state)
    np.testing.assert_array_equal(loaded.progress, np.tile(progress, 4))
    assert loaded.meta["state_names"] == names and loaded.meta["state_dim"] == 3
    train = np.repeat(built.segments["split"].to_numpy() == "train", 10)
    stats = loaded.meta["stats"]
    np.testing.assert_allclose(stats["state_mean"], built.state[train].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["state_std"], built.state[train].std(axis=0), rtol=1e-6)
    assert stats["progress_mean"] == pytest.approx(0.5, abs=1e-6)
    window = loaded.windows(loaded.window_starts("train", 4)[:2], 4)
    assert window["state"].shape == (2, 4, 3) and window["progress"].shape == (2, 4)
    np.testing.assert_array_equal(window["state"][0], built.state[:4])
    with pytest.raises(ValueError, match="state_names"):
        build_training_set(segments, 0.25, 0, meta={"state_names": names[:2]})


def test_version_1_episodes_build_a_training_set_without_state(tmp_path, make_episode):
    folder = EpisodeFolderDataset(path=str(tmp_path / "episodes"))
    episodes = {f"ep{i}": make_episode(12, seed=i) for i in range(3)}
    for episode in episodes.values():
        episode.attrs["schema_version"] = 1  # written before state and progress existed
    folder.save(episodes)
    results = clean_episodes(folder.load(), {})
    training_set = build_dataset(results, {}, seed=0)
    assert [r.status for r in results] == ["kept"] * 3
    assert training_set.state.shape == (36, 0)
    assert training_set.meta["state_names"] == [] and training_set.meta["state_dim"] == 0
    assert training_set.meta["progress_source"] == "rewards"
    np.testing.assert_array_equal(training_set.progress, training_set.rewards)
    report, _, summary = report_episodes(results, training_set)
    assert set(report["progress_source"]) == {"rewards"} and set(report["state_dim"]) == {0}
    assert summary["progress_source"] == "rewards"


def test_training_set_from_before_state_asks_for_a_rebuild(tmp_path, make_episode):
    episode = make_episode(10)
    segment = Segment("ep0", 0, episode.frames, episode.actions, episode.rewards, episode.success)
    path = tmp_path / "training_set"
    build_training_set([segment], 0.0, 0, meta={}).save(path)
    for name in ("state", "progress"):
        (path / f"{name}.npy").unlink()  # the layout before state and progress
    with pytest.raises(FileNotFoundError, match="state, progress.*kedro run --pipeline=episodes"):
        TrainingSet.load(path)
