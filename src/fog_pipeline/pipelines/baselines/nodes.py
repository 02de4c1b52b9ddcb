"""Nodes of the ``baselines`` pipeline: PPO in the global world model, FoG's budget."""

from __future__ import annotations

from typing import Any

from fog_pipeline.core.baselines.training import PPORun, parse_baselines_params
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.bundle import DeployedPolicy
from fog_pipeline.core.policy.training import parse_policy_params
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.pipelines.live import live_logger, read_curve


def train_ppo_baseline(
    world_model: WorldModel,
    surrogate: RSSM,
    training_set: TrainingSet,
    params: dict,
    policy_params: dict,
    seed: int,
) -> tuple[DeployedPolicy, dict[int, DeployedPolicy], dict[str, Any]]:
    """PPO with FoG's world-model transition budget, environments and snapshot points,
    from behaviour cloning (:class:`~fog_pipeline.core.baselines.training.PPORun`).

    Checkpoints are written at every snapshot point; a rerun after an interruption
    resumes from the last one (the imagined environments restart from fresh contexts).
    """
    parsed = parse_baselines_params(params)
    run = PPORun(
        world_model, surrogate, training_set, parsed, parse_policy_params(policy_params), seed
    )
    with live_logger(parsed.live_dir, resume=run.resumed) as on_metrics:
        run.fit(on_metrics)
    policy, snapshots = run.bundles()
    return policy, snapshots, run.summary(read_curve(parsed.live_dir, "imagined_reward"))
