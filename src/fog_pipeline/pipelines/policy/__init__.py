"""The ``policy`` pipeline: FoG policy optimisation inside the global world model."""

from fog_pipeline.pipelines.policy.pipeline import create_pipeline

__all__ = ["create_pipeline"]
