"""The global world model G: next-frame EDM denoiser, reward model, EMA, frame conversions."""

from fog_pipeline.core.world_model.denoiser import Denoiser, DenoiserConfig
from fog_pipeline.core.world_model.ema import EMA
from fog_pipeline.core.world_model.frames import to_model, to_uint8
from fog_pipeline.core.world_model.reward import RewardModel, RewardModelConfig

__all__ = [
    "EMA",
    "Denoiser",
    "DenoiserConfig",
    "RewardModel",
    "RewardModelConfig",
    "to_model",
    "to_uint8",
]
