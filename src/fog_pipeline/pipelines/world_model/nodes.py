"""Nodes of the ``world_model`` pipeline."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS, parse_config, parse_sized
from fog_pipeline.core.device import select_device
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.world_model.denoiser import DenoiserConfig
from fog_pipeline.core.world_model.evaluation import (
    frame_fidelity,
    open_loop_rollouts,
    reward_fidelity,
    rollout_figure,
)
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.core.world_model.reward import RewardModelConfig
from fog_pipeline.core.world_model.state import StateModelConfig
from fog_pipeline.core.world_model.training import WorldModelTrainer, WorldModelTrainingConfig
from fog_pipeline.pipelines.live import live_logger

log = logging.getLogger(__name__)


@dataclass
class FidelityConfig:
    __pydantic_config__ = STRICT_KEYS

    horizons: tuple[Annotated[int, Field(ge=1)], ...] = (1, 4, 16)
    windows: Annotated[int, Field(ge=1)] = 64
    # G's sampler precision: the one FoG and PPO imagine with (globals.yml).
    precision: Literal["auto", "fp32", "bf16"] = "fp32"


@dataclass
class WorldModelParams:
    __pydantic_config__ = STRICT_KEYS

    device: str = "cpu"
    # Architecture only: frame size and action size come from the training set.
    denoiser: dict[str, Any] = field(default_factory=dict)
    reward_model: dict[str, Any] = field(default_factory=dict)
    state_model: dict[str, Any] = field(default_factory=dict)  # used when the robot logs state
    training: WorldModelTrainingConfig = field(default_factory=WorldModelTrainingConfig)
    evaluation: FidelityConfig = field(default_factory=FidelityConfig)
    # Resumable training state (not a result): a rerun continues from here.
    checkpoint_dir: str = "data/06_models/world_model_checkpoint"
    live_dir: str = "data/08_reporting/world_model_training"


def _configs(params: WorldModelParams, data: TrainingSet):
    """The model configs: the parameters' architecture with the training set's sizes."""
    height, width, _ = data.meta["frame_shape"]
    frame = {"frame_height": height, "frame_width": width}
    action, state = {"action_dim": data.meta["action_dim"]}, {"state_dim": data.meta["state_dim"]}
    denoiser = parse_sized(
        DenoiserConfig, params.denoiser, frame | action | state, "world_model.denoiser"
    )
    reward = parse_sized(
        RewardModelConfig, params.reward_model, frame | state, "world_model.reward_model"
    )
    state_model = None
    if denoiser.state_dim:
        state_model = parse_sized(
            StateModelConfig,
            params.state_model,
            action | state | {"context": denoiser.context},
            "world_model.state_model",
        )
    return denoiser, reward, state_model


def train_world_model(training_set: TrainingSet, params: dict, seed: int) -> WorldModel:
    """Train the denoiser, the state model and the reward model; resumes from the
    checkpoint of an interrupted run."""
    parsed = parse_config(WorldModelParams, params, "world_model")  # all of it, before any work
    denoiser_config, reward_config, state_config = _configs(parsed, training_set)
    device = select_device(parsed.device)
    stats = training_set.meta["stats"]
    model = WorldModel.create(
        denoiser_config, reward_config, stats["action_mean"], stats["action_std"], state_config
    ).to(device)
    trainer = WorldModelTrainer(model, training_set, parsed.training, seed, device)
    checkpoint = Path(parsed.checkpoint_dir)
    resuming = trainer.try_resume(checkpoint)
    log.info(
        "World model: denoiser %.2f M parameters, reward and state models %.2f M, %d "
        "training windows, %s from step %d of %d.",
        sum(p.numel() for p in model.denoiser.parameters()) / 1e6,
        sum(p.numel() for p in trainer.head_parameters()) / 1e6,
        len(trainer.starts),
        "resuming" if resuming else "starting",
        trainer.step,
        parsed.training.steps,
    )
    started = time.perf_counter()
    with live_logger(parsed.live_dir, resume=resuming) as on_metrics:
        trainer.fit(checkpoint, on_metrics)
    log.info("World-model training took %.0f s.", time.perf_counter() - started)
    return model.to(select_device("cpu"))


def evaluate_world_model(
    world_model: WorldModel, training_set: TrainingSet, params: dict, seed: int
) -> tuple[dict[str, Any], Any]:
    """Fidelity report (DVC metrics) and the real-vs-imagined picture."""
    parsed = parse_config(WorldModelParams, params, "world_model")
    device = select_device(parsed.device)
    world_model.to(device)
    horizons = sorted(set(parsed.evaluation.horizons))
    real, imagined, state_errors = open_loop_rollouts(
        world_model,
        training_set,
        max(horizons),
        parsed.evaluation.windows,
        seed,
        device,
        parsed.evaluation.precision,
    )
    per_step = frame_fidelity(real, imagined, world_model.context, state_errors)["per_step"]
    rollouts = {f"k{k}": per_step[k - 1] for k in horizons}
    for name, row in rollouts.items():
        row["beats_copy_last"] = row["mse"] < row["mse_copy_last"]
        if not row["beats_copy_last"]:
            log.warning("The world model does not beat copy-last-frame at %s: %s", name, row)
    metrics = {
        "windows": int(len(real)),
        "rollout": rollouts,
        "mse_by_step": [row["mse"] for row in per_step],
        "mse_copy_last_by_step": [row["mse_copy_last"] for row in per_step],
        "reward": reward_fidelity(world_model, training_set, device),
    }
    log.info(
        "Fidelity: %s",
        ", ".join(
            f"{name} PSNR {row['psnr']:.2f} vs copy-last {row['psnr_copy_last']:.2f}"
            for name, row in rollouts.items()
        ),
    )
    world_model.to(select_device("cpu"))
    return _finite(metrics), rollout_figure(real, imagined, world_model.context)


def _finite(value):
    """JSON has no NaN: report undefined numbers as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value
