"""Record robot episodes (``kedro run --pipeline=collect``)."""

from fog_pipeline.pipelines.collect.pipeline import create_pipeline

__all__ = ["create_pipeline"]
