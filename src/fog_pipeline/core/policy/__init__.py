"""Policy optimisation inside the world model (FoG): building blocks."""

from fog_pipeline.core.policy.returns import decoupled, td_lambda

__all__ = ["decoupled", "td_lambda"]
