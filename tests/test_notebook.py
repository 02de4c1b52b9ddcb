"""notebooks/results.ipynb runs top to bottom, through the catalog, on smoke artifacts made
in a throw-away project copy (never the repo's data/)."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from nbclient import NotebookClient

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "results.ipynb"
FIGURE_CELLS = ("figure:episodes", "figure:world_model", "figure:surrogate")
PNG = b"\x89PNG\r\n\x1a\n"


def copy_project(target: Path) -> Path:
    # as tests/pipelines/conftest.py: config only; the package is the installed one
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(REPO / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()
    return target


def run_pipelines(project: Path, *names: str) -> None:
    bootstrap_project(project)
    with contextlib.chdir(project), KedroSession.create(project_path=project, env="smoke") as s:
        s.run(pipeline_names=list(names))


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory) -> Path:
    """Everything the notebook's figures read: episodes, world model and surrogate reports
    (about a minute on 2 cores). Robot evaluation is left out on purpose."""
    project = copy_project(tmp_path_factory.mktemp("notebook_project"))
    run_pipelines(project, "collect", "episodes", "world_model", "surrogate")
    return project


def execute(project: Path, cwd: Path, tags: set[str] | None = None) -> nbformat.NotebookNode:
    """Run the committed notebook (only the cells tagged ``tags`` if given) on ``project``.

    The kernel starts in ``cwd``, outside any project: it can only find ``project`` through
    FOG_PROJECT_PATH, the variable the notebook documents.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if tags is not None:
        notebook.cells = [c for c in notebook.cells if set(c.metadata.get("tags", [])) & tags]
    env = {**os.environ, "FOG_PROJECT_PATH": str(project), "KEDRO_ENV": "smoke"}
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    return notebook


def cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    (found,) = [c for c in notebook.cells if tag in c.metadata.get("tags", [])]
    return found


def stdout(code_cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in code_cell.outputs if o.output_type == "stream")


def images(code_cell: nbformat.NotebookNode, mime: str = "image/png") -> list[bytes]:
    return [
        base64.b64decode(o.data[mime])
        for o in code_cell.outputs
        if o.output_type in ("display_data", "execute_result") and mime in o.data
    ]


def test_committed_notebook_is_generated_and_clean():
    """results.ipynb is what notebooks/build_results_notebook.py writes, without outputs."""
    committed = nbformat.read(NOTEBOOK, as_version=4)
    for code_cell in (c for c in committed.cells if c.cell_type == "code"):
        assert not code_cell.outputs and code_cell.execution_count is None, code_cell.id
    spec = importlib.util.spec_from_file_location(
        "build", NOTEBOOK.with_name("build_results_notebook.py")
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    expected = builder.build()
    assert [c.source for c in committed.cells] == [c.source for c in expected.cells], (
        "results.ipynb is stale: run `python notebooks/build_results_notebook.py`"
    )


def test_notebook_draws_the_results(smoke_project, tmp_path):
    notebook = execute(smoke_project, cwd=tmp_path)

    for code_cell in (c for c in notebook.cells if c.cell_type == "code"):
        errors = [o for o in code_cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {code_cell.id}: {errors}"
    assert f"Kedro project {smoke_project.resolve()}" in stdout(cell(notebook, "setup"))
    for tag in FIGURE_CELLS:
        pictures = images(cell(notebook, tag))
        assert pictures and all(p.startswith(PNG) for p in pictures), f"{tag}: no figure"
    # Not produced in this project: the cell says which run makes it, instead of failing.
    evaluation = cell(notebook, "evaluation")
    assert "kedro run --pipeline=evaluation" in stdout(evaluation)
    assert not images(evaluation)


def test_notebook_draws_the_robot_evaluation(smoke_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(smoke_project, project)
    bootstrap_project(project)
    # Robot rollouts need trained FoG and PPO policies (minutes even on smoke): write a small
    # per-episode table and let the pipeline's own report node summarise it, so the summary
    # the notebook reads has the real schema.
    episodes = pd.DataFrame(
        [
            {
                "policy": policy,
                "seed": 100_000 + k,
                "success": coverage > 0.95,
                "initial_coverage": 0.05,
                "final_coverage": 0.9 * coverage,
                "max_coverage": coverage,
                "improvement": coverage - 0.05,
                "return": 3.0 * coverage,
                "length": 10,
            }
            for policy, coverages in {"fog": [0.97, 0.6, 0.8], "random": [0.1, 0.3, 0.2]}.items()
            for k, coverage in enumerate(coverages)
        ]
    )
    with contextlib.chdir(project):
        with KedroSession.create(project_path=project, env="smoke") as session:
            session.load_context().catalog.save("evaluation_episodes", episodes)
        with KedroSession.create(project_path=project, env="smoke") as session:
            session.run(pipeline_names=["evaluation"], node_names=["report_evaluation"])

    notebook = execute(project, cwd=tmp_path, tags={"setup", "overview", "evaluation"})
    evaluation = cell(notebook, "evaluation")
    assert "kedro run" not in stdout(evaluation), stdout(evaluation)
    tables = [o.data["text/html"] for o in evaluation.outputs if "text/html" in o.get("data", {})]
    assert any("fog" in t and "success_rate" in t for t in tables), "no per-policy table"
    assert any("random" in t and "success_diff_mean" in t for t in tables), "no FoG comparison"
    assert images(evaluation), "no success/coverage figure"
