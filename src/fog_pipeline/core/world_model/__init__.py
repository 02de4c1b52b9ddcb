"""The global world model G: next-frame EDM denoiser, next-state and reward models, EMA,
frame conversions."""

from fog_pipeline.core.world_model.denoiser import Denoiser, DenoiserConfig
from fog_pipeline.core.world_model.ema import EMA
from fog_pipeline.core.world_model.frames import to_model, to_uint8
from fog_pipeline.core.world_model.reward import RewardModel, RewardModelConfig
from fog_pipeline.core.world_model.state import StateModel, StateModelConfig

__all__ = [
    "EMA",
    "Denoiser",
    "DenoiserConfig",
    "RewardModel",
    "RewardModelConfig",
    "StateModel",
    "StateModelConfig",
    "to_model",
    "to_uint8",
]
