"""LeRobot datasets in and out (core.episodes.lerobot): round trips, a hand-built v2.1
layout, the Push-T action conversion, and damaged datasets."""

from __future__ import annotations

import json
import logging
from fractions import Fraction

import av
import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fog_pipeline.core.episodes import lerobot
from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.lerobot import (
    LeRobotExportConfig,
    LeRobotFormatError,
    LeRobotImportConfig,
    absolute_to_relative,
    read_lerobot,
    write_lerobot,
)
from fog_pipeline.core.episodes.schema import SCHEMA_VERSION, Episode
from fog_pipeline.core.episodes.training_set import build_training_set

FPS = 10
STATE_NAMES = ["agent_x", "agent_y", "target_x", "target_y"]


def smooth_frames(length: int, seed: int, size: int = 32) -> np.ndarray:
    """A soft blob drifting over colour gradients: every frame differs, and the content
    is smooth enough for a lossy codec to keep close (random noise would not be)."""
    yy, xx = np.mgrid[0:size, 0:size] * (32 / size)
    frames = []
    for t in range(length):
        cx, cy = 6 + 0.7 * t, 14 + 5 * np.sin(t / 4 + seed)
        blob = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 18)
        image = np.stack([30 + blob + seed, 80 + 0.5 * blob + 2 * xx, 150 - 0.3 * blob + yy], -1)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(frames)


def episode(seed: int, length: int = 20, size: int = 32) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(
        frames=smooth_frames(length, seed, size),
        actions=rng.uniform(-1, 1, (length, 2)).astype(np.float32),
        rewards=rng.uniform(0, 1, length).astype(np.float32),
        success=np.arange(length) >= length - 3,
        timestamps=np.arange(length) / FPS,
        state=rng.uniform(-1, 1, (length, 4)).astype(np.float32),
        progress=rng.uniform(0, 1, length).astype(np.float32),
        attrs={
            "schema_version": SCHEMA_VERSION,
            "fps": float(FPS),
            "task": "push the T",
            "action_low": np.array([-1.0, -1.0], dtype=np.float32),
            "action_high": np.array([1.0, 1.0], dtype=np.float32),
            "state_names": STATE_NAMES,
        },
    )


def assert_same_arrays(imported: Episode, original: Episode) -> None:
    for name in ("actions", "rewards", "success", "state", "progress"):
        np.testing.assert_array_equal(getattr(imported, name), getattr(original, name), name)
    # LeRobot stores timestamps as float32
    np.testing.assert_allclose(imported.timestamps, original.timestamps, atol=1e-6)


@pytest.fixture
def episodes() -> dict[str, Episode]:
    return {f"episode_{i:06d}": episode(i, length=16 + 4 * i) for i in range(3)}


def test_lossless_round_trip_is_bit_exact(tmp_path, episodes):
    folder = tmp_path / "dataset"
    info = write_lerobot(episodes, folder, LeRobotExportConfig(codec="lossless"))
    assert info["total_episodes"] == 3 and info["total_frames"] == 16 + 20 + 24
    for name in ("meta/info.json", "meta/stats.json", "meta/tasks.parquet"):
        assert (folder / name).is_file(), name
    assert (folder / "meta/episodes/chunk-000/file-000.parquet").is_file()
    assert (folder / "data/chunk-000/file-000.parquet").is_file()
    assert (folder / "videos/observation.image/chunk-000/file-000.mp4").is_file()
    assert json.loads((folder / "meta/info.json").read_text()) == info
    assert info["features"]["observation.state"]["names"] == STATE_NAMES

    imported = list(read_lerobot(folder))
    assert len(imported) == 3
    for back, original in zip(imported, episodes.values(), strict=True):
        np.testing.assert_array_equal(back.frames, original.frames)
        assert_same_arrays(back, original)
        assert back.attrs["state_names"] == STATE_NAMES
        assert back.attrs["task"] == "push the T" and back.attrs["fps"] == FPS
        # the bounds travel in info.json, so as_is actions keep the robot's bounds
        np.testing.assert_array_equal(back.attrs["action_low"], [-1, -1])
        np.testing.assert_array_equal(back.attrs["action_high"], [1, 1])

    rows = pd.read_parquet(folder / "meta/episodes/chunk-000/file-000.parquet")
    assert rows["dataset_from_index"].tolist() == [0, 16, 36]
    assert rows["dataset_to_index"].tolist() == [16, 36, 60]
    assert rows["videos/observation.image/from_timestamp"].tolist() == [0.0, 1.6, 3.6]
    assert rows["source_episode_id"].tolist() == list(episodes)
    data = pd.read_parquet(folder / "data/chunk-000/file-000.parquet")
    assert data["index"].tolist() == list(range(60))
    assert data.groupby("episode_index")["next.done"].sum().tolist() == [1, 1, 1]
    assert pd.read_parquet(folder / "meta/tasks.parquet").loc["push the T", "task_index"] == 0
    stats = json.loads((folder / "meta/stats.json").read_text())
    actions = np.concatenate([e.actions for e in episodes.values()])
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], actions.std(axis=0), rtol=1e-5)
    assert np.shape(stats["observation.image"]["mean"]) == (3, 1, 1)


def test_camera_statistics_are_exact(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    noisy = episode(0, length=7, size=16)
    noisy.frames = frames
    write_lerobot([noisy], tmp_path / "dataset")
    stats = json.loads((tmp_path / "dataset/meta/stats.json").read_text())["observation.image"]
    pixels = frames.reshape(-1, 3) / 255.0
    expected = {"min": pixels.min(0), "max": pixels.max(0), "mean": pixels.mean(0)}
    expected |= {"std": pixels.std(0), "q01": np.quantile(pixels, 0.01, axis=0)}
    expected |= {"q50": np.quantile(pixels, 0.5, axis=0), "q99": np.quantile(pixels, 0.99, 0)}
    for name, values in expected.items():
        np.testing.assert_allclose(np.ravel(stats[name]), values, rtol=1e-12, err_msg=name)
    assert stats["count"] == [7]


def test_h264_round_trip_is_close(tmp_path, episodes):
    folder = tmp_path / "dataset"
    write_lerobot(episodes, folder, LeRobotExportConfig(codec="h264", crf=18))
    for back, original in zip(read_lerobot(folder), episodes.values(), strict=True):
        error = np.abs(back.frames.astype(np.int16) - original.frames).mean()
        assert error < 3.0, f"mean abs error {error:.2f} / 255"  # stated bound: 3/255
        assert_same_arrays(back, original)  # only the video is lossy


def test_subset_seeks_into_the_concatenated_video(tmp_path, episodes):
    folder = tmp_path / "dataset"
    write_lerobot(episodes, folder, LeRobotExportConfig(gop=4))
    (only,) = read_lerobot(folder, LeRobotImportConfig(episodes=[1]))
    np.testing.assert_array_equal(only.frames, episodes["episode_000001"].frames)
    assert only.attrs["lerobot_episode_index"] == 1
    with pytest.raises(LeRobotFormatError, match="no episode"):
        read_lerobot(folder, LeRobotImportConfig(episodes=[7]))


def test_files_roll_over_at_the_size_limits(tmp_path, episodes):
    """Beyond data/video_files_size_in_mb the next episode starts a new file, which the
    reader then follows through data/file_index and videos/<key>/file_index."""
    folder = tmp_path / "dataset"
    tiny = LeRobotExportConfig(data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6)
    write_lerobot(episodes, folder, tiny)
    names = [f"file-{i:03d}" for i in range(3)]
    assert sorted(p.stem for p in (folder / "data/chunk-000").iterdir()) == names
    videos = folder / "videos/observation.image/chunk-000"
    assert sorted(p.stem for p in videos.iterdir()) == names
    rows = pd.read_parquet(folder / "meta/episodes/chunk-000/file-000.parquet")
    assert rows["videos/observation.image/from_timestamp"].tolist() == [0.0, 0.0, 0.0]
    for back, original in zip(read_lerobot(folder), episodes.values(), strict=True):
        np.testing.assert_array_equal(back.frames, original.frames)
        assert_same_arrays(back, original)


def test_training_set_export_keeps_segments_and_splits(tmp_path):
    """Each segment of the training set is one LeRobot episode, train split first."""
    one, two = episode(0, length=24), episode(1, length=12)

    def segment(name, source, start, stop):
        parts = {n: getattr(source, n)[start:stop] for n in ("frames", "actions", "rewards")}
        return Segment(
            name,
            start,
            success=source.success[start:stop],
            state=source.state[start:stop],
            progress=source.progress[start:stop],
            **parts,
        )

    segments = [segment("a", one, 0, 10), segment("a", one, 14, 24), segment("b", two, 0, 12)]
    meta = {
        "fps": 10.0,
        "action_low": [-1.0, -1.0],
        "action_high": [1.0, 1.0],
        "task": "push the T",
        "state_names": STATE_NAMES,
        "progress_source": "progress",
    }
    training_set = build_training_set(segments, val_fraction=0.5, seed=0, meta=meta)
    folder = tmp_path / "dataset"
    info = write_lerobot(training_set, folder)
    val = training_set.segments["split"] == "val"
    n_train = int((~val).sum())
    assert info["splits"] == {"train": f"0:{n_train}", "val": f"{n_train}:3"}
    rows = pd.read_parquet(folder / "meta/episodes/chunk-000/file-000.parquet")
    ordered = training_set.segments.assign(v=val).sort_values(["v", "offset"])
    assert rows["source_episode_id"].tolist() == ordered["episode_id"].tolist()
    assert rows["source_start"].tolist() == ordered["source_start"].tolist()
    for back, segment_row in zip(read_lerobot(folder), ordered.itertuples(), strict=True):
        span = slice(segment_row.offset, segment_row.offset + segment_row.length)
        np.testing.assert_array_equal(back.frames, training_set.frames[span])
        np.testing.assert_array_equal(back.actions, training_set.actions[span])
        np.testing.assert_array_equal(back.state, training_set.state[span])
        np.testing.assert_array_equal(back.progress, training_set.progress[span])


def test_absolute_to_relative_matches_hand_computed_moves():
    targets = np.array([[110.0, 100.0], [110.0, 150.0], [600.0, -5.0], [500.0, 10.0]])
    moves, clipped = absolute_to_relative(targets, np.array([100.0, 100.0]), 25.0, (0.0, 512.0))
    expected = [
        [0.4, 0.0],  # (110 - 100) / 25, (100 - 100) / 25
        [0.0, 1.0],  # (150 - 100) / 25 = 2, clipped to 1
        [1.0, -1.0],  # target clipped to the table (512, 0) first, then the move
        [-0.48, 0.4],  # (500 - 512) / 25, (10 - 0) / 25
    ]
    np.testing.assert_allclose(moves, expected, atol=1e-6)
    assert moves.dtype == np.float32
    assert clipped.tolist() == [False, True, True, False]


def test_unclipped_moves_replay_the_recorded_targets():
    rng = np.random.default_rng(0)
    start = np.array([256.0, 256.0])
    targets = start + np.cumsum(rng.uniform(-20, 20, (50, 2)), axis=0)
    moves, clipped = absolute_to_relative(targets, start, 25.0, (0.0, 512.0))
    assert not clipped.any()
    replay = start + np.cumsum(moves.astype(np.float64) * 25.0, axis=0)
    np.testing.assert_allclose(replay, targets, atol=1e-4)


# --------------------------------------------------------------------------------------
# A LeRobot v2.1 Push-T dataset built by hand: absolute targets, pusher position state


def encode_mp4(path, frames: np.ndarray) -> None:
    """One episode's video, RGB-lossless (so the test can compare frames exactly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", FPS, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def pusht_episode(seed: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    agent = 200 + np.cumsum(rng.uniform(-10, 10, (length, 2)), axis=0)
    return {
        "frames": smooth_frames(length, seed, size=16),
        "observation.state": agent.astype(np.float32),  # pusher position, table units
        "action": (agent + rng.uniform(-15, 15, (length, 2))).astype(np.float32),  # targets
        "next.reward": rng.uniform(0, 1, length).astype(np.float32),
        "next.success": np.arange(length) == length - 1,
    }


def write_v21(folder, episodes: list[dict[str, np.ndarray]], camera: str = "video") -> None:
    """The v2.1 layout: one parquet (and one mp4) per episode, jsonl metadata."""
    features = {
        "observation.image": {
            "dtype": camera,
            "shape": [16, 16, 3],
            "names": ["height", "width", "channel"],
        },
        "observation.state": {
            "dtype": "float32",
            "shape": [2],
            "names": {"motors": ["motor_0", "motor_1"]},
        },
        "action": {"dtype": "float32", "shape": [2], "names": {"motors": ["motor_0", "motor_1"]}},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        **{
            name: {"dtype": dtype, "shape": [1], "names": None}
            for name, dtype in [
                ("timestamp", "float32"),
                ("frame_index", "int64"),
                ("episode_index", "int64"),
                ("index", "int64"),
                ("task_index", "int64"),
            ]
        },
    }
    lengths = [len(e["action"]) for e in episodes]
    info = {
        "codebase_version": "v2.1",
        "robot_type": None,
        "total_episodes": len(episodes),
        "total_frames": sum(lengths),
        "total_tasks": 1,
        "total_videos": len(episodes) if camera == "video" else 0,
        "total_chunks": 1,
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": (
            "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
            if camera == "video"
            else None
        ),
        "features": features,
    }
    (folder / "meta").mkdir(parents=True)
    (folder / "meta/info.json").write_text(json.dumps(info, indent=4))
    task = "Push the T-shaped block onto the T-shaped target."
    (folder / "meta/tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": task}) + "\n")
    lines = [{"episode_index": i, "tasks": [task], "length": n} for i, n in enumerate(lengths)]
    (folder / "meta/episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    stats = [{"episode_index": i, "stats": {}} for i in range(len(episodes))]
    (folder / "meta/episodes_stats.jsonl").write_text("".join(json.dumps(s) + "\n" for s in stats))
    start = 0
    for i, data in enumerate(episodes):
        n = lengths[i]
        columns = {
            "observation.state": list(data["observation.state"]),
            "action": list(data["action"]),
            "next.reward": data["next.reward"],
            "next.success": data["next.success"],
            "next.done": np.arange(n) == n - 1,
            "timestamp": (np.arange(n) / FPS).astype(np.float32),
            "frame_index": np.arange(n),
            "episode_index": np.full(n, i),
            "index": np.arange(start, start + n),
            "task_index": np.zeros(n, dtype=np.int64),
        }
        if camera == "image":
            pngs = [cv2.imencode(".png", f[..., ::-1])[1].tobytes() for f in data["frames"]]
            columns["observation.image"] = [{"bytes": b, "path": None} for b in pngs]
        path = folder / f"data/chunk-000/episode_{i:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(columns).to_parquet(path)
        if camera == "video":
            encode_mp4(
                folder / f"videos/chunk-000/observation.image/episode_{i:06d}.mp4", data["frames"]
            )
        start += n


PUSHT = LeRobotImportConfig(
    width=8,
    height=8,
    actions="absolute_to_relative",
    max_step=25.0,
    workspace=(0.0, 512.0),
    append_target_to_state=True,
    state_scale=1 / 256,
    state_offset=-1.0,
    state_names=STATE_NAMES,
)


@pytest.mark.parametrize("camera", ["video", "image"])
def test_reads_a_v21_pusht_dataset(tmp_path, camera):
    recorded = [pusht_episode(0, 12), pusht_episode(1, 9)]
    write_v21(tmp_path / "pusht", recorded, camera)
    imported = list(read_lerobot(tmp_path / "pusht", PUSHT))
    assert len(imported) == 2
    for back, data in zip(imported, recorded, strict=True):
        resized = [cv2.resize(f, (8, 8), interpolation=cv2.INTER_AREA) for f in data["frames"]]
        np.testing.assert_array_equal(back.frames, np.stack(resized))
        agent, targets = data["observation.state"], data["action"]
        in_force = np.concatenate([agent[:1], targets[:-1]])  # the target when frame t was seen
        expected_moves = np.clip((targets - in_force) / 25.0, -1, 1)
        np.testing.assert_allclose(back.actions, expected_moves, atol=1e-6)
        expected_state = np.concatenate([agent, in_force], axis=1) / 256 - 1
        np.testing.assert_allclose(back.state, expected_state, atol=1e-6)
        np.testing.assert_array_equal(back.rewards, data["next.reward"])
        np.testing.assert_array_equal(back.success, data["next.success"])
        assert back.progress is None  # LeRobot's Push-T has no dense progress label
        assert back.attrs["state_names"] == STATE_NAMES
        np.testing.assert_array_equal(back.attrs["action_low"], [-1, -1])
        assert back.attrs["lerobot_codebase_version"] == "v2.1"
        assert back.attrs["clipped_action_steps"] == int(
            (np.abs((targets - in_force) / 25.0) > 1).any(axis=1).sum()
        )


def test_as_is_keeps_the_recorded_actions(tmp_path):
    recorded = [pusht_episode(0, 12)]
    write_v21(tmp_path / "pusht", recorded)
    (back,) = read_lerobot(tmp_path / "pusht", LeRobotImportConfig())
    np.testing.assert_array_equal(back.actions, recorded[0]["action"])
    np.testing.assert_array_equal(back.state, recorded[0]["observation.state"])
    assert back.attrs["state_names"] == ["motor_0", "motor_1"]
    # no bounds given or stored: the range the data spans
    np.testing.assert_array_equal(back.attrs["action_low"], recorded[0]["action"].min(axis=0))


# --------------------------------------------------------------------------------------
# Damaged datasets and failed writes


@pytest.fixture
def exported(tmp_path, episodes):
    folder = tmp_path / "dataset"
    write_lerobot(episodes, folder)
    return folder


def test_missing_video_names_the_file(exported):
    video = exported / "videos/observation.image/chunk-000/file-000.mp4"
    video.unlink()
    with pytest.raises(LeRobotFormatError, match="file-000.mp4: missing.*videos/"):
        read_lerobot(exported)


def test_missing_v21_video_names_the_file(tmp_path):
    write_v21(tmp_path / "pusht", [pusht_episode(0, 12), pusht_episode(1, 9)])
    (tmp_path / "pusht/videos/chunk-000/observation.image/episode_000001.mp4").unlink()
    with pytest.raises(LeRobotFormatError, match="episode_000001.mp4: missing"):
        read_lerobot(tmp_path / "pusht")


def test_totals_that_disagree_with_info_json(exported):
    info_path = exported / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["total_frames"] += 5
    info_path.write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match=r"info\.json: total_frames is 65 but"):
        read_lerobot(exported)


def test_data_rows_that_disagree_with_the_metadata(exported):
    path = exported / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 2), path)  # a truncated copy
    with pytest.raises(LeRobotFormatError, match="file-000.parquet: 58 rows, but"):
        read_lerobot(exported)


def test_vector_width_that_disagrees_with_info_json(exported):
    info_path = exported / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["features"]["observation.state"]["shape"] = [3]
    info["features"]["observation.state"]["names"] = None
    info_path.write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match=r"'observation.state' holds 4 values.*\[3\]"):
        read_lerobot(exported)


def test_timestamps_off_the_fps_grid(exported):
    path = exported / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    stamps = table.column("timestamp").to_numpy().copy()
    stamps[20:] += 0.05  # half a period, from inside episode 1
    index = table.schema.get_field_index("timestamp")
    pq.write_table(table.set_column(index, "timestamp", pa.array(stamps)), path)
    with pytest.raises(LeRobotFormatError, match="file-000.parquet: episode 1's timestamps"):
        read_lerobot(exported)


def test_missing_reward_and_success_columns(tmp_path, caplog):
    write_v21(tmp_path / "pusht", [pusht_episode(0, 12)])
    info_path = tmp_path / "pusht/meta/info.json"
    info = json.loads(info_path.read_text())
    del info["features"]["next.reward"], info["features"]["next.success"]
    info_path.write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match="reward_key"):
        read_lerobot(tmp_path / "pusht")
    with caplog.at_level(logging.WARNING):
        (back,) = read_lerobot(tmp_path / "pusht", LeRobotImportConfig(reward_key=None))
    assert not back.success.any() and not back.rewards.any()
    assert "not successful" in caplog.text and "rewards are zero" in caplog.text


def test_not_a_lerobot_folder(tmp_path):
    with pytest.raises(LeRobotFormatError, match=r"info\.json: missing.*lerobot.import.source"):
        read_lerobot(tmp_path)


def fail(*args, **kwargs):
    raise OSError("disk full")


def test_a_failed_export_leaves_nothing_behind(tmp_path, episodes, monkeypatch):
    monkeypatch.setattr(lerobot, "_write_metadata", fail)  # after data and videos
    with pytest.raises(OSError, match="disk full"):
        write_lerobot(episodes, tmp_path / "dataset")
    assert list(tmp_path.iterdir()) == [], "no dataset and no temporary folder"


def test_a_failed_export_keeps_the_previous_dataset(exported, episodes, monkeypatch):
    before = {p.relative_to(exported): p.read_bytes() for p in exported.rglob("*") if p.is_file()}
    monkeypatch.setattr(lerobot, "_write_metadata", fail)
    with pytest.raises(OSError, match="disk full"):
        write_lerobot({"one": episodes["episode_000000"]}, exported)
    after = {p.relative_to(exported): p.read_bytes() for p in exported.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in exported.parent.iterdir()] == ["dataset"]


def test_irregular_timestamps_cannot_be_exported(tmp_path, episodes):
    episodes["episode_000002"].timestamps[5] += 0.03  # a late frame
    with pytest.raises(LeRobotFormatError, match="episode_000002: timestamps.*not 1/fps"):
        write_lerobot(episodes, tmp_path / "dataset")
    assert not (tmp_path / "dataset").exists()


def test_h264_needs_even_frame_sizes(tmp_path):
    with pytest.raises(LeRobotFormatError, match="even sizes"):
        write_lerobot([episode(0, size=15)], tmp_path / "dataset", LeRobotExportConfig("h264"))
    assert not (tmp_path / "dataset").exists()
