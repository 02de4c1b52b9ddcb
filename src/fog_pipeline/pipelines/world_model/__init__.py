"""Train and evaluate the global world model (``kedro run --pipeline=world_model``)."""

from fog_pipeline.pipelines.world_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
