"""Export the cleaned training set as a LeRobot v3.0 dataset
(``kedro run --pipeline=export_lerobot``). Not part of the default DAG: run it by name."""

from fog_pipeline.pipelines.export_lerobot.pipeline import create_pipeline

__all__ = ["create_pipeline"]
