"""A throw-away copy of the Kedro project (conf + pyproject) to run pipelines in, and the
smoke run's upstream artifacts, built once per session, to start a test's copy from."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

REPO = Path(__file__).resolve().parents[2]
# The pipelines whose smoke artifacts tests share, in the order they depend on each other.
UPSTREAM = ("collect", "episodes", "world_model", "surrogate")


def copy_project(target: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(REPO / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()  # Kedro insists on one; the package is the installed one
    return target


def run_pipelines(
    project: Path, *pipelines: str, env: str = "smoke", params: dict | None = None
) -> dict:
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        return session.run(pipeline_names=list(pipelines))


def stage_outputs(stage: str) -> list[str]:
    """What the stage writes, as dvc.yaml lists it (outs, metrics and plots)."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    entries = [e for key in ("outs", "metrics", "plots") for e in spec.get(key, [])]
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


class SmokeUpstream:
    """The upstream pipelines of the smoke run, each run once (on first use) in a project
    of their own, as `dvc repro` runs them: one pipeline per session."""

    def __init__(self, project: Path):
        self.project = project
        self.ran: list[str] = []

    def _build(self, stage: str) -> None:
        here = Path.cwd()
        try:
            os.chdir(self.project)  # catalog paths are relative to the project
            bootstrap_project(self.project)
            for name in UPSTREAM[: UPSTREAM.index(stage) + 1]:
                if name not in self.ran:
                    run_pipelines(self.project, name)
                    self.ran.append(name)
        finally:
            os.chdir(here)

    def copy_into(self, project: Path, *stages: str) -> None:
        """Copy the named stages' smoke artifacts (all of them, nothing else) into
        ``project``, as if ``kedro run --pipeline=<stage>`` had run there for each."""
        unknown = set(stages) - set(UPSTREAM)
        assert not unknown, f"no shared smoke artifacts for {sorted(unknown)}"
        self._build(max(stages, key=UPSTREAM.index))
        for stage in stages:
            for output in stage_outputs(stage):
                source, target = self.project / output, project / output
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True)
                elif source.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
        bootstrap_project(project)


@pytest.fixture(scope="session")
def smoke_upstream(tmp_path_factory) -> SmokeUpstream:
    """Built lazily: a test that asks for no stage's artifacts builds none. Each xdist
    worker has its own session, so its own copy."""
    return SmokeUpstream(copy_project(tmp_path_factory.mktemp("smoke_upstream")))


@pytest.fixture
def kedro_project(tmp_path, monkeypatch, request):
    """Run pipelines in a copy of the project; catalog paths resolve inside tmp_path.

    ``kedro_project.use(*stages)`` copies the session's smoke artifacts of those
    upstream stages into the copy, in place of running them."""
    project = copy_project(tmp_path)
    monkeypatch.chdir(project)
    bootstrap_project(project)

    def run(*pipelines: str, env: str = "smoke", params: dict | None = None) -> dict:
        return run_pipelines(project, *pipelines, env=env, params=params)

    def use(*stages: str) -> None:
        request.getfixturevalue("smoke_upstream").copy_into(project, *stages)

    run.path = project
    run.use = use
    return run
