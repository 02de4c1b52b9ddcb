"""The worked example of docs/robots.md, on the smoke sizes: a LeRobot folder in, a policy
trained on it, evaluated on a robot served over the network.

The commands are the page's (`kedro run --pipeline=...`, `python -m
fog_pipeline.serve_robot`), run as a user runs them, in a copy of the project. The LeRobot
folder is the one `export_lerobot` writes from recorded smoke episodes (the same format
a LeRobot user brings); the robot is the Push-T simulator behind the ZeroMQ server on
loopback, reached only through `collect.backend=remote`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from robot_server import end_server, start_server

from fog_pipeline.core.episodes.training_set import TrainingSet

pytestmark = pytest.mark.slow
KEDRO = Path(sys.executable).parent / "kedro"
REPO = Path(__file__).resolve().parents[2]
TRAIN = ("episodes", "world_model", "surrogate", "policy", "baselines")


def _kedro(project: Path, pipeline: str, env: str, *params: str) -> str:
    command = [str(KEDRO), "run", f"--pipeline={pipeline}", f"--env={env}"]
    if params:
        command.append("--params=" + ",".join(params))
    environ = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, cwd=project, env=environ, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_lerobot_in_train_evaluate_on_a_remote_robot(kedro_project, tmp_path):
    project = kedro_project.path
    # A LeRobot v3.0 folder, as a LeRobot user would bring one.
    kedro_project.use("collect", "episodes")  # recorded smoke episodes, cleaned
    _kedro(project, "export_lerobot", "smoke")
    source = tmp_path / "downloads/my_robot"
    shutil.move(project / "data/07_model_output/lerobot", source)
    shutil.rmtree(project / "data")  # nothing of the recording is left but the folder

    # The `lerobot` environment's catalog (raw episodes from the import) on smoke sizes.
    env = project / "conf/smoke_lerobot"
    shutil.copytree(project / "conf/smoke", env)
    shutil.copy(REPO / "conf/lerobot/catalog.yml", env / "catalog.yml")
    _kedro(project, "import_lerobot", "smoke_lerobot", f"lerobot.import.source={source}")
    imported = sorted(p.stem for p in (project / "data/01_raw/lerobot_episodes").glob("*.h5"))
    assert imported and all(name.startswith("lerobot_") for name in imported)
    for pipeline in TRAIN:
        _kedro(project, pipeline, "smoke_lerobot")
    training_set = TrainingSet.load(project / "data/03_primary/training_set")
    assert set(training_set.segments["episode_id"]) <= set(imported)

    server = start_server(tmp_path / "server.log", width=16, height=16, verbose=True)
    try:
        _kedro(
            project,
            "evaluation",
            "smoke_lerobot",
            "collect.backend=remote",
            "collect.backend_options.host=127.0.0.1",
            f"collect.backend_options.port={server.port}",
        )
    finally:
        assert end_server(server) == 0, server.log.read_text()
    episodes = pd.read_csv(project / "data/08_reporting/evaluation_episodes.csv")
    assert {"fog", "ppo", "random"} <= set(episodes["policy"])
    assert (episodes["length"] >= 1).all()
    # every episode of every policy ran on the served robot
    assert server.log.read_text().count("reset") >= len(episodes)
    report = json.loads((project / "data/08_reporting/evaluation.json").read_text())
    assert "fog" in json.dumps(report)
