"""Every defect class: build the bad file, clean it, check status and reason."""

from __future__ import annotations

import dataclasses
from functools import partial

import h5py
import numpy as np
import pytest

from fog_pipeline.core.config import ConfigError, parse_config
from fog_pipeline.core.episodes.cleaning import (
    CleaningConfig,
    NoUsableEpisodesError,
    clean_episode,
    clean_file,
    reconcile,
)
from fog_pipeline.core.episodes.schema import (
    episode_to_bytes,
    read_raw,
    write_episode,
)

CONFIG = CleaningConfig(min_segment_length=8, frozen_min_run=5)
STATE_NAMES = ["joint_0", "joint_1", "gripper"]


def with_state(episode, names=STATE_NAMES):
    """A schema-2 episode: proprioception (distinct per step) and a progress label."""
    rng = np.random.default_rng(len(episode))
    episode.state = rng.normal(size=(len(episode), len(names))).astype(np.float32)
    episode.progress = np.linspace(0.1, 0.9, len(episode), dtype=np.float32)
    episode.attrs["state_names"] = list(names)
    return episode


def clean_path(path, config=CONFIG):
    return clean_file(path.stem, partial(read_raw, path), config)


def write_and_clean(tmp_path, episode, config=CONFIG):
    path = tmp_path / "ep.h5"
    write_episode(path, episode)
    before = path.read_bytes()
    result = clean_path(path, config)
    assert path.read_bytes() == before, "cleaning must never modify the raw file"
    return result


def test_clean_episode_is_kept(tmp_path, make_episode):
    result = write_and_clean(tmp_path, make_episode(30))
    assert (result.status, result.reasons) == ("kept", [])
    assert result.length_before == result.length_after == 30
    assert len(result.segments) == 1


def test_state_and_progress_reach_the_segments(tmp_path, make_episode):
    episode = with_state(make_episode(30))
    result = write_and_clean(tmp_path, episode)
    assert (result.status, result.reasons) == ("kept", [])
    assert result.state_names == tuple(STATE_NAMES) and result.progress_source == "progress"
    segment = result.segments[0]
    np.testing.assert_array_equal(segment.state, episode.state)
    np.testing.assert_array_equal(segment.progress, episode.progress)
    assert segment.state.dtype == segment.progress.dtype == np.float32


def test_version_1_file_cleans_without_state(tmp_path, make_episode):
    episode = make_episode(30)
    episode.attrs["schema_version"] = 1
    result = write_and_clean(tmp_path, episode)
    assert (result.status, result.reasons) == ("kept", [])
    segment = result.segments[0]
    assert segment.state.shape == (30, 0) and segment.state.dtype == np.float32
    # No progress label: the reward stands in, and the result says so.
    assert result.progress_source == "rewards" and result.state_names == ()
    np.testing.assert_array_equal(segment.progress, episode.rewards)


def test_unknown_schema_version_is_quarantined(tmp_path, make_episode):
    episode = make_episode(30)
    episode.attrs["schema_version"] = 3
    assert write_and_clean(tmp_path, episode).reasons == ["unsupported_schema_version:3"]


def test_small_timestamp_jitter_is_kept(tmp_path, make_episode):
    episode = make_episode(30)
    episode.timestamps = episode.timestamps + np.random.default_rng(1).normal(0, 0.005, 30)
    assert write_and_clean(tmp_path, episode).status == "kept"


def test_truncated_file_is_quarantined(tmp_path, make_episode):
    path = tmp_path / "ep.h5"
    data = episode_to_bytes(make_episode(30))
    write_episode(path, data[: len(data) // 2])
    result = clean_path(path)
    assert (result.status, result.reasons) == ("quarantined", ["unreadable"])


def test_not_hdf5_is_quarantined(tmp_path):
    path = tmp_path / "ep.h5"
    path.write_text("this is not an HDF5 file")
    assert clean_path(path).reasons == ["unreadable"]


def test_missing_dataset_is_quarantined(tmp_path, make_episode):
    path = tmp_path / "ep.h5"
    write_episode(path, make_episode(30))
    with h5py.File(path, "a") as h5:
        del h5["actions"]
    result = clean_path(path)
    assert result.status == "quarantined"
    assert "missing_dataset:actions" in result.reasons


def test_missing_attribute_is_quarantined(tmp_path, make_episode):
    episode = make_episode(30)
    del episode.attrs["fps"]
    result = write_and_clean(tmp_path, episode)
    assert result.status == "quarantined" and "missing_attribute:fps" in result.reasons


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("frames", np.zeros((30, 8, 8), np.uint8), "bad_shape:frames"),
        ("frames", np.zeros((30, 8, 8, 3), np.float32), "bad_dtype:frames"),
        ("actions", np.zeros((30, 3), np.float32), "bad_shape:actions"),
        ("actions", np.zeros((30, 2), np.int64), "bad_dtype:actions"),
        ("rewards", np.zeros((30, 2), np.float32), "bad_shape:rewards"),
        ("timestamps", np.array(["x"] * 30, dtype="S1"), "bad_dtype:timestamps"),
    ],
)
def test_wrong_shape_or_dtype_is_quarantined(tmp_path, make_episode, field, value, reason):
    episode = dataclasses.replace(make_episode(30), **{field: value})
    result = write_and_clean(tmp_path, episode)
    assert result.status == "quarantined"
    assert reason in result.reasons


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("state", np.zeros((30, 2), np.float32), "bad_shape:state"),  # 3 state_names
        ("state", np.zeros(30, np.float32), "bad_shape:state"),
        ("state", np.zeros((30, 3), np.int32), "bad_dtype:state"),
        ("progress", np.zeros((30, 1), np.float32), "bad_shape:progress"),
        ("progress", np.zeros(30, np.int64), "bad_dtype:progress"),
    ],
)
def test_bad_state_or_progress_is_quarantined(tmp_path, make_episode, field, value, reason):
    episode = dataclasses.replace(with_state(make_episode(30)), **{field: value})
    result = write_and_clean(tmp_path, episode)
    assert result.status == "quarantined" and reason in result.reasons


def test_state_without_names_is_quarantined(tmp_path, make_episode):
    episode = with_state(make_episode(30))
    del episode.attrs["state_names"]
    result = write_and_clean(tmp_path, episode)
    assert result.status == "quarantined"
    assert result.reasons == ["missing_attribute:state_names"]


@pytest.mark.parametrize(("cut", "status"), [(2, "repaired"), (10, "quarantined")])
@pytest.mark.parametrize("field", ["state", "progress"])
def test_short_state_or_progress_follows_the_length_rule(
    tmp_path, make_episode, field, cut, status
):
    episode = with_state(make_episode(30))
    setattr(episode, field, getattr(episode, field)[:-cut])
    result = write_and_clean(tmp_path, episode)
    assert result.status == status and "length_mismatch" in result.reasons
    if status == "repaired":
        assert result.length_after == 28
        assert all(len(s.state) == len(s.progress) == len(s) for s in result.segments)


def test_short_length_mismatch_is_truncated(tmp_path, make_episode):
    episode = make_episode(30)
    episode.actions = episode.actions[:28]
    result = write_and_clean(tmp_path, episode)
    assert result.status == "repaired" and result.reasons == ["length_mismatch"]
    assert result.length_after == 28


def test_large_length_mismatch_is_quarantined(tmp_path, make_episode):
    episode = make_episode(30)
    episode.rewards = episode.rewards[:20]
    result = write_and_clean(tmp_path, episode)
    assert result.status == "quarantined" and "length_mismatch" in result.reasons


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("actions", "nonfinite_action"),
        ("rewards", "nonfinite_reward"),
        ("state", "nonfinite_state"),
        ("progress", "nonfinite_progress"),
    ],
)
@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nonfinite_values_split_the_episode(tmp_path, make_episode, field, reason, bad_value):
    episode = with_state(make_episode(30))
    array = getattr(episode, field)
    array.reshape(len(array), -1)[15, 0] = bad_value  # one entry of step 15 (a view)
    result = write_and_clean(tmp_path, episode)
    assert result.status == "repaired" and result.reasons == [reason]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 15), (16, 14)]
    for segment in result.segments:
        for name in ("actions", "rewards", "state", "progress"):
            assert np.all(np.isfinite(getattr(segment, name))), name


def test_slightly_out_of_range_action_is_clipped(tmp_path, make_episode):
    episode = make_episode(30)
    episode.actions[3] = [1.1, -1.05]  # 5% / 2.5% of the range beyond the bounds
    result = write_and_clean(tmp_path, episode)
    assert result.status == "repaired" and result.reasons == ["action_clipped"]
    assert len(result.segments) == 1
    np.testing.assert_array_equal(result.segments[0].actions[3], [1.0, -1.0])


def test_far_out_of_range_action_splits(tmp_path, make_episode):
    episode = make_episode(30)
    episode.actions[10] = [50.0, 0.0]
    result = write_and_clean(tmp_path, episode)
    assert result.reasons == ["action_out_of_range"]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 10), (11, 19)]


def test_duplicated_record_is_dropped_without_split(tmp_path, make_episode):
    original = with_state(make_episode(30))
    index = np.r_[0:12, 11, 12:30]  # record 11 written twice
    episode = dataclasses.replace(
        original, **{name: array[index] for name, array in original.arrays().items()}
    )
    result = write_and_clean(tmp_path, episode)
    assert result.status == "repaired" and result.reasons == ["duplicate_step"]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 30)]
    np.testing.assert_array_equal(result.segments[0].frames, original.frames)
    np.testing.assert_array_equal(result.segments[0].state, original.state)


def test_backwards_timestamps_split(tmp_path, make_episode):
    episode = make_episode(30)
    episode.timestamps[20:] -= 1.0
    result = write_and_clean(tmp_path, episode)
    assert result.reasons == ["non_monotonic_timestamps"]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 20), (20, 10)]


def test_time_gap_splits_instead_of_bridging(tmp_path, make_episode):
    episode = make_episode(40)
    keep = np.r_[0:18, 21:40]  # three dropped frames
    episode = dataclasses.replace(
        episode, **{name: array[keep] for name, array in episode.arrays().items()}
    )
    result = write_and_clean(tmp_path, episode)
    assert result.reasons == ["time_gap"]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 18), (18, 19)]


def test_frozen_camera_steps_are_removed(tmp_path, make_episode):
    episode = make_episode(40)
    episode.frames[11:18] = episode.frames[10]  # frames 10..17 identical: a run of 8
    result = write_and_clean(tmp_path, episode)
    assert result.reasons == ["frozen_camera"]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 11), (18, 22)]


def test_briefly_static_frames_are_not_frozen(tmp_path, make_episode):
    episode = make_episode(30)
    episode.frames[11:13] = episode.frames[10]  # 3 identical frames < frozen_min_run
    assert write_and_clean(tmp_path, episode).status == "kept"


def test_too_short_episode_is_quarantined(tmp_path, make_episode):
    result = write_and_clean(tmp_path, make_episode(5))
    assert (result.status, result.reasons) == ("quarantined", ["too_short"])


def test_short_piece_after_split_is_dropped(tmp_path, make_episode):
    episode = make_episode(30)
    episode.actions[25] = np.nan
    result = write_and_clean(tmp_path, episode)
    assert result.reasons == ["nonfinite_action", "short_segment_dropped"]
    assert [(s.start, len(s)) for s in result.segments] == [(0, 25)]


def test_reconcile_quarantines_minority_resolution(make_episode):
    results = [clean_episode(f"ep{i}", *_raw(make_episode(20, seed=i)), CONFIG) for i in range(3)]
    odd = make_episode(20, seed=9)
    odd.frames = np.repeat(np.repeat(odd.frames, 2, axis=1), 2, axis=2)
    results.append(clean_episode("odd", *_raw(odd), CONFIG))
    reconcile(results)
    assert [r.status for r in results] == ["kept"] * 3 + ["quarantined"]
    assert results[-1].reasons == ["inconsistent_frame_shape"]


def test_reconcile_quarantines_disagreeing_proprioception(make_episode):
    def cleaned(episode_id, episode):
        return clean_episode(episode_id, *_raw(episode), CONFIG)

    results = [cleaned(f"ep{i}", with_state(make_episode(20, seed=i))) for i in range(3)]
    results.append(cleaned("renamed", with_state(make_episode(20), ["joint_0", "joint_1", "x"])))
    results.append(cleaned("narrow", with_state(make_episode(20), ["joint_0", "joint_1"])))
    results.append(cleaned("camera_only", make_episode(20)))
    no_progress = with_state(make_episode(20))
    no_progress.progress = None
    results.append(cleaned("no_progress", no_progress))
    assert all(r.status == "kept" for r in results)  # each file is fine on its own
    reconcile(results)
    assert [r.status for r in results] == ["kept"] * 3 + ["quarantined"] * 4
    assert results[3].reasons == ["inconsistent_state_names"]
    assert results[4].reasons == ["inconsistent_state_dim", "inconsistent_state_names"]
    assert results[5].reasons == [
        "inconsistent_state_dim",
        "inconsistent_state_names",
        "inconsistent_progress_source",
    ]
    assert results[6].reasons == ["inconsistent_progress_source"]


def test_no_usable_episode_fails_with_reasons(make_episode):
    results = [clean_episode("a", *_raw(make_episode(4)), CONFIG)]
    results.append(clean_episode("b", None, None, CONFIG, read_error="boom"))
    with pytest.raises(NoUsableEpisodesError, match="too_short: 1.*unreadable: 1"):
        reconcile(results)


def test_wrong_cleaning_parameter_is_named():
    with pytest.raises(ConfigError, match="cleaning.frozen_min_run") as info:
        parse_config(CleaningConfig, {"frozen_min_run": 1}, "episodes.cleaning")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(CleaningConfig, {"frozen_min_rnu": 5}, "episodes.cleaning")
    assert "parameters" in str(info.value)


def _raw(episode):
    return episode.arrays(), dict(episode.attrs)
