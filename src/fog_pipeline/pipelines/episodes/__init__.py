"""Clean raw episodes into the training set (``kedro run --pipeline=episodes``)."""

from fog_pipeline.pipelines.episodes.pipeline import create_pipeline

__all__ = ["create_pipeline"]
