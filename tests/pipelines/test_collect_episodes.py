"""collect → episodes through Kedro's own runner, in the smoke environment."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from fog_pipeline.core.episodes.schema import ARRAY_DTYPES, SCHEMA_VERSION, read_raw
from fog_pipeline.core.episodes.training_set import TrainingSet

pytestmark = pytest.mark.slow


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_collect_then_clean(kedro_project):
    kedro_project.use("collect")  # the session's `kedro run --pipeline=collect`
    raw = kedro_project.path / "data/01_raw/episodes"
    files = sorted(raw.glob("*.h5"))
    assert len(files) == 8
    arrays, attrs = read_raw(files[0])
    assert {name: a.dtype for name, a in arrays.items()} == ARRAY_DTYPES
    assert arrays["frames"].shape[1:] == (16, 16, 3)
    assert attrs["backend"] == "pusht" and attrs["schema_version"] == SCHEMA_VERSION == 2
    assert arrays["state"].shape == (len(arrays["frames"]), 4)
    manifest = pd.read_csv(kedro_project.path / "data/01_raw/collect_manifest.csv")
    # One row per file, each the file's own numbers (no faults on the smoke run).
    assert manifest["episode_id"].tolist() == [f.stem for f in files]
    for row in manifest.itertuples():
        logged, _ = read_raw(raw / f"{row.episode_id}.h5")
        assert row.steps == len(logged["frames"]) == 40, row
        assert row.final_progress == pytest.approx(logged["progress"][-1]), row
        assert row.success == bool(logged["success"].any()), row
    before = _digest(raw)

    kedro_project("episodes")
    assert _digest(raw) == before, "the episodes pipeline must not modify raw data"

    training_set = TrainingSet.load(kedro_project.path / "data/03_primary/training_set")
    splits = training_set.segments.groupby("episode_id")["split"].nunique()
    assert (splits == 1).all(), "an episode must not appear in both splits"
    assert set(training_set.segments["split"]) == {"train", "val"}
    assert len(training_set) == 8 * 40
    window = training_set.windows(training_set.window_starts("train", 5)[:3], 5)
    assert window["frames"].shape == (3, 5, 16, 16, 3)
    assert len(training_set.meta["stats"]["action_mean"]) == 2
    assert window["state"].shape == (3, 5, 4) and window["progress"].shape == (3, 5)
    assert training_set.meta["state_names"] == ["agent_x", "agent_y", "target_x", "target_y"]
    assert training_set.meta["progress_source"] == "progress"

    report = pd.read_csv(kedro_project.path / "data/08_reporting/episodes_report.csv")
    assert len(report) == 8 and set(report["status"]) == {"kept"}


def test_injected_faults_are_caught(kedro_project):
    """With a fault in every episode, the report must match the ground-truth manifest."""
    kedro_project(
        "collect",
        params={"collect": {"n_episodes": 24, "faults": {"rate": 1.0}}},
    )
    kedro_project("episodes")
    manifest = pd.read_csv(kedro_project.path / "data/01_raw/collect_manifest.csv")
    report = pd.read_csv(kedro_project.path / "data/08_reporting/episodes_report.csv")
    joined = manifest.merge(report, on="episode_id").fillna({"reasons": ""})
    assert len(joined) == 24
    expected = {
        "drop_frames": ("repaired", "time_gap"),
        "duplicate_frames": ("repaired", "duplicate_step"),
        "timestamp_jitter": ("kept", ""),
        "timestamp_gap": ("repaired", "time_gap"),
        "frozen_camera": ("repaired", "frozen_camera"),
        "nan_action": ("repaired", "nonfinite_action"),
        "out_of_range_action": ("repaired", "action_out_of_range"),
        "truncated_file": ("quarantined", "unreadable"),
    }
    assert joined["injected_fault"].nunique() >= 5
    for row in joined.itertuples():
        status, reason = expected[row.injected_fault]
        assert row.status == status, row
        assert reason in row.reasons, row
    quarantine = pd.read_csv(kedro_project.path / "data/08_reporting/episodes_quarantine.csv")
    quarantined = joined.loc[joined.status == "quarantined", "episode_id"]
    assert set(quarantine["episode_id"]) == set(quarantined)


def test_same_seed_same_episodes(kedro_project):
    raw = kedro_project.path / "data/01_raw/episodes"
    kedro_project("collect", params={"collect": {"n_episodes": 3}})
    first = {p.name: read_raw(p)[0] for p in sorted(raw.glob("*.h5"))}
    kedro_project("collect", params={"collect": {"n_episodes": 3}})
    second = {p.name: read_raw(p)[0] for p in sorted(raw.glob("*.h5"))}
    assert first.keys() == second.keys()
    for name in first:
        for key in ARRAY_DTYPES:
            np.testing.assert_array_equal(first[name][key], second[name][key])


def test_missing_raw_folder_names_the_fix(kedro_project):
    with pytest.raises(Exception, match="kedro run --pipeline=collect"):
        kedro_project("episodes")


def test_nothing_survives_fails_with_reasons(kedro_project):
    kedro_project("collect", params={"collect": {"n_episodes": 2, "max_steps": 5}})
    with pytest.raises(Exception, match="No usable episode among 2 file.*too_short: 2"):
        kedro_project("episodes")


def test_bad_parameter_is_named(kedro_project):
    with pytest.raises(Exception, match="collect.n_episods: unknown key"):
        kedro_project("collect", params={"collect": {"n_episods": 3}})
