"""Nodes of the ``surrogate`` pipeline: fit on episodes, distil on G's rollouts, report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fog_pipeline.core.config import STRICT_KEYS, parse_config, parse_sized
from fog_pipeline.core.device import select_device
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.surrogate.distill import RolloutConfig, world_model_rollouts
from fog_pipeline.core.surrogate.evaluation import (
    SurrogateEvaluationConfig,
    gradient_fidelity,
    prediction_errors,
)
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig
from fog_pipeline.core.surrogate.training import SurrogateTrainer, SurrogateTrainingConfig
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.pipelines.live import live_logger

log = logging.getLogger(__name__)


@dataclass
class DistillationConfig:
    __pydantic_config__ = STRICT_KEYS

    rollouts: RolloutConfig = field(default_factory=RolloutConfig)
    training: SurrogateTrainingConfig = field(default_factory=SurrogateTrainingConfig)


@dataclass
class SurrogateParams:
    __pydantic_config__ = STRICT_KEYS

    device: str = "cpu"
    # Architecture only: frame, action and proprioception sizes come from the training set.
    rssm: dict[str, Any] = field(default_factory=dict)
    training: SurrogateTrainingConfig = field(default_factory=SurrogateTrainingConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    evaluation: SurrogateEvaluationConfig = field(default_factory=SurrogateEvaluationConfig)
    checkpoint_dir: str = "data/06_models/surrogate_checkpoint"
    live_dir: str = "data/08_reporting/surrogate_training"


def _parse(params: dict) -> SurrogateParams:
    return parse_config(SurrogateParams, params, "surrogate")


def fit_surrogate_on_episodes(training_set: TrainingSet, params: dict, seed: int) -> RSSM:
    """Phase 1: fit the RSSM to the cleaned real episodes."""
    parsed = _parse(params)  # all of it, before any work
    height, width, _ = training_set.meta["frame_shape"]
    derived = {
        "frame_height": height,
        "frame_width": width,
        "action_dim": training_set.meta["action_dim"],
        "proprio_dim": training_set.meta["state_dim"],
    }
    config = parse_sized(RSSMConfig, parsed.rssm, derived, "surrogate.rssm")
    model = RSSM(config)
    stats = training_set.meta["stats"]
    model.set_action_stats(torch.tensor(stats["action_mean"]), torch.tensor(stats["action_std"]))
    device = select_device(parsed.device)
    trainer = SurrogateTrainer(model.to(device), parsed.training, seed, device, data=training_set)
    log.info(
        "Surrogate: %.2f M parameters; phase 1 on recorded episodes.", model.param_count() / 1e6
    )
    checkpoint = Path(parsed.checkpoint_dir) / "episodes"
    with live_logger(
        str(Path(parsed.live_dir) / "episodes"), resume=trainer.try_resume(checkpoint)
    ) as on_metrics:
        trainer.fit(checkpoint, on_metrics)
    return model.cpu()


def distill_surrogate(
    surrogate_on_episodes: RSSM,
    world_model: WorldModel,
    training_set: TrainingSet,
    params: dict,
    seed: int,
) -> RSSM:
    """Phase 2: fine-tune on the global model's own rollouts from real contexts."""
    parsed = _parse(params)
    device = select_device(parsed.device)
    rollout = parsed.distillation.rollouts
    env = WorldModelEnv(
        world_model.to(device),
        training_set,
        rollout.batch_size,
        seed=seed,
        device=device,
        precision=rollout.precision,
    )
    sequences = world_model_rollouts(env, rollout, seed)
    world_model.to(torch.device("cpu"))
    model = surrogate_on_episodes
    trainer = SurrogateTrainer(
        model.to(device), parsed.distillation.training, seed, device, data=sequences
    )
    log.info(
        "Distilling on %d world-model sequences of %d steps.",
        len(sequences["frames"]),
        rollout.length,
    )
    checkpoint = Path(parsed.checkpoint_dir) / "distillation"
    live = str(Path(parsed.live_dir) / "distillation")
    with live_logger(live, resume=trainer.try_resume(checkpoint)) as on_metrics:
        trainer.fit(checkpoint, on_metrics)
    return model.cpu()


def report_surrogate(
    surrogate_on_episodes: RSSM,
    surrogate: RSSM,
    world_model: WorldModel,
    training_set: TrainingSet,
    params: dict,
    seed: int,
) -> dict[str, Any]:
    """Prediction errors and gradient fidelity, before and after distillation."""
    config = _parse(params).evaluation
    report: dict[str, Any] = {}
    for name, model in (
        ("before_distillation", surrogate_on_episodes),
        ("after_distillation", surrogate),
    ):
        model.eval()
        report[name] = {
            **prediction_errors(model, training_set, config, seed),
            "gradient_fidelity": gradient_fidelity(model, world_model, training_set, config, seed),
        }
        fidelity = report[name]["gradient_fidelity"]
        log.info(
            "Surrogate %s: one-step latent error %.3f, reward MAE %.3f, latent gradient cosine "
            "%.2f ± %.2f, reward gradient cosine %.2f ± %.2f",
            name,
            report[name]["one_step_latent_error"],
            report[name]["reward_mae"],
            fidelity["latent_cosine"]["mean"],
            fidelity["latent_cosine"]["std"],
            fidelity["reward_gradient_cosine"]["mean"],
            fidelity["reward_gradient_cosine"]["std"],
        )
    report["parameters"] = surrogate.param_count()
    report["latent_size"] = surrogate.config.deter + surrogate.config.stoch
    return report
