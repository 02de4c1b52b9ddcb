"""Evaluate policies on the robot (``kedro run --pipeline=evaluation``)."""

from fog_pipeline.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
