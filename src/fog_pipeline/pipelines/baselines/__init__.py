"""The ``baselines`` pipeline: PPO inside the global world model on FoG's budget."""

from fog_pipeline.pipelines.baselines.pipeline import create_pipeline

__all__ = ["create_pipeline"]
