"""Project pipelines: every folder under ``pipelines/`` is runnable by name."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Conversions run on demand, by name: in the default DAG, `kedro run` would export the
# training set on every run, and the import would need a LeRobot download to exist.
BY_NAME_ONLY = ("import_lerobot", "export_lerobot")


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    # Starts from an empty pipeline: `kedro run --pipeline=import_lerobot` loads that
    # pipeline alone, and the sum of nothing must still be a Pipeline.
    pipelines["__default__"] = sum(
        (pipeline for name, pipeline in pipelines.items() if name not in BY_NAME_ONLY),
        Pipeline([]),
    )
    return pipelines
