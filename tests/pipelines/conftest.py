"""A throw-away copy of the Kedro project (conf + pyproject) to run pipelines in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

REPO = Path(__file__).resolve().parents[2]


def copy_project(target: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(REPO / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()  # Kedro insists on one; the package is the installed one
    return target


@pytest.fixture
def kedro_project(tmp_path, monkeypatch):
    """Run pipelines in a copy of the project; catalog paths resolve inside tmp_path."""
    project = copy_project(tmp_path)
    monkeypatch.chdir(project)
    bootstrap_project(project)

    def run(*pipelines: str, env: str = "smoke", params: dict | None = None) -> dict:
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as s:
            return s.run(pipeline_names=list(pipelines))

    run.path = project
    return run
