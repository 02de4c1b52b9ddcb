"""import_lerobot → episodes → export_lerobot, run by name in the `lerobot` environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.project import pipelines

from fog_pipeline.core.episodes.lerobot import LeRobotFormatError, read_lerobot, write_lerobot
from fog_pipeline.core.episodes.schema import SCHEMA_VERSION, Episode, read_episode
from fog_pipeline.core.episodes.training_set import TrainingSet

pytestmark = pytest.mark.slow
KEDRO = Path(sys.executable).parent / "kedro"


def pusht_like(seed: int, length: int = 24, size: int = 64) -> Episode:
    """A LeRobot Push-T episode as its recorder stores it: pusher position as state and
    absolute pusher targets as actions, in table units."""
    rng = np.random.default_rng(seed)
    agent = 150 + np.cumsum(rng.uniform(-8, 8, (length, 2)), axis=0)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = np.stack(
        [
            np.stack([(xx + 3 * t + seed) % 256, (yy * 2) % 256, (xx + yy + t) % 256], -1)
            for t in range(length)
        ]
    ).astype(np.uint8)
    return Episode(
        frames=frames,
        actions=(agent + rng.uniform(-12, 12, (length, 2))).astype(np.float32),
        rewards=rng.uniform(0, 1, length).astype(np.float32),
        success=np.arange(length) == length - 1,
        timestamps=np.arange(length) / 10.0,
        state=agent.astype(np.float32),
        attrs={
            "schema_version": SCHEMA_VERSION,
            "fps": 10.0,
            "task": "Push the T-shaped block onto the T-shaped target.",
            "action_low": np.zeros(2, dtype=np.float32),
            "action_high": np.full(2, 512.0, dtype=np.float32),
            "state_names": ["motor_0", "motor_1"],
        },
    )


def test_lerobot_pipelines_run_by_name_only(kedro_project):
    registered = dict(pipelines)
    assert {"import_lerobot", "export_lerobot"} <= set(registered)
    default = {node.name for node in registered["__default__"].nodes}
    assert "clean_episodes" in default
    assert not default & {"import_lerobot_episodes", "export_lerobot_dataset"}


def test_import_clean_export(kedro_project):
    project = kedro_project.path
    source = project / "downloads/pusht"
    write_lerobot({f"e{i}": pusht_like(i) for i in range(4)}, source)

    # by name on the command line, as a user runs it
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}
    command = [str(KEDRO), "run", "--pipeline=import_lerobot", "--env=lerobot"]
    command.append(f"--params=lerobot.import.source={source}")
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    raw = sorted((project / "data/01_raw/lerobot_episodes").glob("*.h5"))
    assert [f.stem for f in raw] == [f"lerobot_{i:06d}" for i in range(4)]
    imported = read_episode(raw[0])
    assert imported.frames.shape == (24, 32, 32, 3)  # the lerobot env's Push-T settings
    assert imported.attrs["state_names"] == ["agent_x", "agent_y", "target_x", "target_y"]
    assert np.abs(imported.actions).max() <= 1.0
    manifest = pd.read_csv(project / "data/01_raw/lerobot_import_manifest.csv")
    assert manifest["steps"].tolist() == [24] * 4

    kedro_project("episodes", env="lerobot")  # cleans the imported episodes
    kedro_project("export_lerobot", env="lerobot")
    training_set = TrainingSet.load(project / "data/03_primary/training_set")
    assert len(training_set) == 4 * 24
    summary = json.loads((project / "data/08_reporting/lerobot_export.json").read_text())
    assert summary["episodes"] == 4 and summary["frames"] == 4 * 24

    exported = list(read_lerobot(project / "data/07_model_output/lerobot"))
    frames = np.concatenate([e.frames for e in exported])
    order = training_set.segments.assign(v=training_set.segments["split"] == "val")
    offsets = order.sort_values(["v", "offset"])["offset"].to_numpy()
    expected = np.concatenate([training_set.frames[o : o + 24] for o in offsets])
    np.testing.assert_array_equal(frames, expected)  # lossless by default
    np.testing.assert_array_equal(exported[0].attrs["action_low"], [-1, -1])


def test_a_damaged_dataset_imports_nothing(kedro_project):
    source = kedro_project.path / "downloads/pusht"
    write_lerobot({"e0": pusht_like(0, size=32)}, source)
    (source / "videos/observation.image/chunk-000/file-000.mp4").unlink()
    with pytest.raises(LeRobotFormatError, match="file-000.mp4: missing"):
        kedro_project("import_lerobot", params={"lerobot": {"import": {"source": str(source)}}})
    assert not (kedro_project.path / "data/01_raw/lerobot_episodes").exists()
