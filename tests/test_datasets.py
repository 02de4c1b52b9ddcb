"""Kedro datasets: round trips, missing and damaged files, failed saves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io import DatasetError
from tiny_world import tiny_bundle, tiny_world_model

from fog_pipeline.core import checkpoint, io
from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.schema import EpisodeReadError, episode_to_bytes
from fog_pipeline.core.episodes.training_set import TrainingSet, build_training_set
from fog_pipeline.core.evaluation import EpisodeVideo
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig
from fog_pipeline.datasets import (
    EpisodeFolderDataset,
    GifFolderDataset,
    PolicyBundleDataset,
    PolicySnapshotsDataset,
    SurrogateDataset,
    TrainingSetDataset,
    WorldModelDataset,
)
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


# -- the model, policy and video datasets ------------------------------------------------
def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    one, other = a.state_dict(), b.state_dict()
    assert one.keys() == other.keys()
    for name in one:
        torch.testing.assert_close(one[name], other[name], rtol=0, atol=0, msg=name)


def fail_on_call(monkeypatch, number: int) -> None:
    """The ``number``-th tensor file written (from 1) fails, like a full disk."""
    calls = []
    save_tensors = checkpoint.save_tensors

    def failing(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == number:
            raise OSError(28, "No space left on device")
        return save_tensors(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_tensors", failing)


def only(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def damage(file) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def test_world_model_round_trip_and_a_failed_save(tmp_path, monkeypatch):
    dataset = WorldModelDataset(path=str(tmp_path / "world_model"))
    assert not dataset.exists()
    model = tiny_world_model(seed=0)
    dataset.save(model)
    assert dataset.exists()
    loaded = dataset.load()
    assert loaded.state_dim == model.state_dim and loaded.context == model.context
    for part in ("denoiser", "reward_model", "state_model"):
        assert_same_weights(getattr(loaded, part), getattr(model, part))

    fail_on_call(monkeypatch, 2)  # the denoiser is written, the reward model is not
    with pytest.raises(DatasetError, match="No space left"):
        dataset.save(tiny_world_model(seed=1))
    assert_same_weights(dataset.load().denoiser, model.denoiser)
    assert only(tmp_path) == ["world_model"], "no half-written folder left"


def test_world_model_missing_or_damaged_names_the_fix_or_the_file(tmp_path):
    dataset = WorldModelDataset(path=str(tmp_path / "world_model"))
    with pytest.raises(DatasetError, match="kedro run --pipeline=world_model"):
        dataset.load()
    dataset.save(tiny_world_model())
    damage(tmp_path / "world_model/reward_model/model.safetensors")
    with pytest.raises(
        DatasetError, match=r"Damaged tensor file .*reward_model/model\.safetensors"
    ):
        dataset.load()


def tiny_surrogate(seed: int) -> RSSM:
    torch.manual_seed(seed)
    config = RSSMConfig(
        frame_height=8, frame_width=8, deter=8, stoch=4, hidden=8, cnn_depth=4, cnn_layers=2
    )
    return RSSM(config)


def test_surrogate_round_trip_and_a_failed_save(tmp_path, monkeypatch):
    dataset = SurrogateDataset(path=str(tmp_path / "surrogate"))
    assert not dataset.exists()
    model = tiny_surrogate(0)
    dataset.save(model)
    assert dataset.exists()
    loaded = dataset.load()
    assert loaded.config == model.config and not loaded.training
    assert_same_weights(loaded, model)

    fail_on_call(monkeypatch, 1)  # config.json is written, the weights are not
    with pytest.raises(DatasetError, match="No space left"):
        dataset.save(tiny_surrogate(1))
    assert_same_weights(dataset.load(), model)
    assert only(tmp_path) == ["surrogate"]


def test_surrogate_missing_or_damaged_names_the_fix_or_the_file(tmp_path):
    dataset = SurrogateDataset(path=str(tmp_path / "surrogate"))
    with pytest.raises(DatasetError, match="kedro run --pipeline=surrogate"):
        dataset.load()
    dataset.save(tiny_surrogate(0))
    (tmp_path / "surrogate/config.json").write_text('{"type": "RSSM", "deter":')
    with pytest.raises(DatasetError, match=r"Damaged model checkpoint .*config\.json"):
        dataset.load()


def acts_alike(one, other) -> bool:
    frame = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    one.reset(), other.reset()
    return np.array_equal(one.act(frame), other.act(frame))


def test_policy_bundle_round_trip_and_a_failed_save(tmp_path, monkeypatch):
    dataset = PolicyBundleDataset(path=str(tmp_path / "policy"))
    assert not dataset.exists()
    bundle = tiny_bundle([-1.0, -1.0], [1.0, 1.0], seed=0, transitions=24)
    dataset.save(bundle)
    assert dataset.exists()
    loaded = dataset.load()
    assert loaded.info == bundle.info
    assert acts_alike(loaded, bundle)
    other = tiny_bundle([-1.0, -1.0], [1.0, 1.0], seed=1)
    assert not acts_alike(other, bundle), "the check above could not fail"

    fail_on_call(monkeypatch, 2)  # the surrogate is written, the actor is not
    with pytest.raises(DatasetError, match="No space left"):
        dataset.save(other)
    assert acts_alike(dataset.load(), bundle)
    assert only(tmp_path) == ["policy"]


def test_policy_bundle_missing_or_damaged_names_the_fix_or_the_file(tmp_path):
    dataset = PolicyBundleDataset(path=str(tmp_path / "policy"))
    with pytest.raises(DatasetError, match="kedro run --pipeline=policy"):
        dataset.load()
    dataset.save(tiny_bundle([-1.0, -1.0], [1.0, 1.0]))
    damage(tmp_path / "policy/actor/model.safetensors")
    with pytest.raises(DatasetError, match=r"Damaged tensor file .*actor/model\.safetensors"):
        dataset.load()


def test_policy_snapshots_round_trip_and_a_failed_save(tmp_path):
    dataset = PolicySnapshotsDataset(path=str(tmp_path / "snapshots"))
    assert not dataset.exists()
    (tmp_path / "snapshots").mkdir()
    assert not dataset.exists(), "an empty folder holds no snapshot"
    bundles = {t: tiny_bundle([-1.0, -1.0], [1.0, 1.0], seed=t, transitions=t) for t in (0, 12)}
    dataset.save(bundles)
    assert dataset.exists()
    assert only(tmp_path / "snapshots") == ["transitions_000000000", "transitions_000000012"]
    loaded = dataset.load()
    assert sorted(loaded) == [0, 12]
    for transitions, bundle in bundles.items():
        assert loaded[transitions].info.transitions == transitions
        assert acts_alike(loaded[transitions], bundle)

    with pytest.raises(DatasetError):
        dataset.save({24: bundles[0], 36: "not a policy"})
    assert sorted(dataset.load()) == [0, 12], "the whole set is replaced, or none of it"
    assert only(tmp_path) == ["snapshots"]


def test_policy_snapshots_missing_names_the_fix(tmp_path):
    with pytest.raises(DatasetError, match="kedro run --pipeline=policy"):
        PolicySnapshotsDataset(path=str(tmp_path / "snapshots")).load()


def video(name: str, steps: int, seed: int) -> EpisodeVideo:
    """Frames of pure colours (a GIF palette holds them exactly), each unlike the last."""
    rng = np.random.default_rng(seed)
    frames = (rng.integers(0, 2, (steps + 1, 4, 4, 3)) * 255).astype(np.uint8)
    frames[np.arange(steps + 1), 0, 0] = [[255 * (t % 2), 0, 255] for t in range(steps + 1)]
    return EpisodeVideo(policy=name, seed=seed, frames=frames, fps=10.0)


def test_gif_folder_round_trip_and_a_failed_save(tmp_path):
    dataset = GifFolderDataset(path=str(tmp_path / "videos"), display_size=16)
    assert not dataset.exists()
    videos = {"fog_0": video("fog", 3, 0), "ppo_0": video("ppo", 5, 1)}
    dataset.save(videos)
    loaded = dataset.load()
    assert sorted(loaded) == ["fog_0", "ppo_0"]
    for name, original in videos.items():
        upscaled = original.frames.repeat(4, axis=1).repeat(4, axis=2)  # 4 x 4 -> 16 x 16
        np.testing.assert_array_equal(loaded[name], upscaled)

    broken = EpisodeVideo(policy="x", seed=0, frames=np.zeros((2, 4, 4)), fps=10.0)
    with pytest.raises(DatasetError, match="frames must be uint8"):
        dataset.save({"new_0": video("new", 2, 2), "broken_0": broken})
    assert sorted(dataset.load()) == ["fog_0", "ppo_0"]
    assert only(tmp_path) == ["videos"]


def test_gif_folder_missing_or_damaged_names_the_fix_or_the_file(tmp_path):
    dataset = GifFolderDataset(path=str(tmp_path / "videos"))
    with pytest.raises(DatasetError, match="kedro run --pipeline=evaluation"):
        dataset.load()
    dataset.save({"fog_0": video("fog", 3, 0)})
    damage(tmp_path / "videos/fog_0.gif")
    with pytest.raises(DatasetError, match=r"Damaged GIF .*fog_0\.gif"):
        dataset.load()


class Crash(BaseException):
    """The process dies between the two renames of a swap."""


def test_a_dataset_recovers_the_previous_version_after_a_crash_mid_swap(tmp_path, monkeypatch):
    """Where there is no atomic exchange, a swap takes two renames; a crash between them
    leaves only the previous version, aside: the next load finds it."""
    dataset = PolicySnapshotsDataset(path=str(tmp_path / "snapshots"))
    dataset.save({0: tiny_bundle([-1.0, -1.0], [1.0, 1.0], transitions=0)})
    monkeypatch.setattr(io, "exchange", lambda a, b: False)
    rename, path = os.rename, tmp_path / "snapshots"

    def crashing(source, target):
        if Path(target) == path:
            raise Crash  # the new version's rename into place (and the handler's restore)
        rename(source, target)

    monkeypatch.setattr(io.os, "rename", crashing)
    with pytest.raises(Crash):
        dataset.save({12: tiny_bundle([-1.0, -1.0], [1.0, 1.0], transitions=12)})
    monkeypatch.undo()
    assert not (tmp_path / "snapshots").exists()  # the gap
    assert dataset.exists()
    assert sorted(dataset.load()) == [0]
