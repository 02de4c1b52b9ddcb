"""`dvc repro` of the stages on the smoke configuration, in a throw-away copy of the repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _sh(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "KEDRO_ENV": "smoke",
        "KEDRO_DISABLE_TELEMETRY": "true",
        # the stages call `kedro`: use the one installed beside this interpreter
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.fixture
def repo_copy(tmp_path):
    """The committed tree (plus uncommitted edits) without data, in a fresh git repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tmp_path / name)
    _sh("git", "init", "-q", cwd=tmp_path)
    _sh("git", "add", "-A", cwd=tmp_path)
    # dvclive (inside the world_model stage) needs a repository with a commit
    _sh(
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.com",
        "commit",
        "-q",
        "-m",
        "copy",
        cwd=tmp_path,
    )
    return tmp_path


def test_repro_is_incremental(repo_copy):
    dvc = str(BIN / "dvc")
    first = _sh(dvc, "repro", cwd=repo_copy)
    assert _ran(first) == {
        "collect",
        "episodes",
        "world_model",
        "surrogate",
        "policy",
        "baselines",
        "evaluation",
    }
    assert (repo_copy / "data/03_primary/training_set/meta.json").exists()
    metrics = _sh(dvc, "metrics", "show", cwd=repo_copy)
    for name in ("episodes_summary", "world_model_metrics", "policy_training", "evaluation"):
        assert f"{name}.json" in metrics, name

    assert _ran(_sh(dvc, "repro", cwd=repo_copy)) == set(), "nothing changed: nothing reruns"

    params_file = repo_copy / "conf/base/parameters_episodes.yml"
    params = yaml.safe_load(params_file.read_text())
    params["episodes"]["cleaning"]["max_gap_factor"] = 2.0
    params_file.write_text(yaml.safe_dump(params))
    # The smoke data has no gaps: the training set comes out identical, so the stages
    # after `episodes` do not rerun.
    assert _ran(_sh(dvc, "repro", cwd=repo_copy)) == {"episodes"}
