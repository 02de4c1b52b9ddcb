"""Distil the local surrogate from the global world model (``kedro run --pipeline=surrogate``)."""

from fog_pipeline.pipelines.surrogate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
