"""Nodes of the ``policy`` pipeline: train with FoG, then picture the policy in the model."""

from __future__ import annotations

from typing import Any

import torch

from fog_pipeline.core.device import select_device
from fog_pipeline.core.envs.batched import BatchedRobotEnv
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.bundle import DeployedPolicy
from fog_pipeline.core.policy.imagination import imagination_figure, imagine_episodes
from fog_pipeline.core.policy.training import FoGRun, parse_policy_params
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.pipelines.live import live_logger, read_curve


def train_policy(
    world_model: WorldModel,
    surrogate: RSSM,
    training_set: TrainingSet,
    params: dict,
    seed: int,
    env: BatchedRobotEnv | None = None,
) -> tuple[DeployedPolicy, DeployedPolicy, dict[int, DeployedPolicy], dict[str, Any]]:
    """FoG inside the global model (:class:`~fog_pipeline.core.policy.training.FoGRun`).

    Returns the trained bundle, the initial one (the actor FoG starts from: behaviour-cloned
    when ``policy.prior.pretrain_steps`` > 0, else untrained), the snapshots (the initial
    bundle at 0 transitions included) and a summary. ``env`` replaces G as the world FoG
    rolls out in; only the diagnostic ``scripts/fog_on_simulator.py`` passes one (the
    robot's simulator), the pipeline never does.
    """
    parsed = parse_policy_params(params)
    run = FoGRun(world_model, surrogate, training_set, parsed, seed, env)
    with live_logger(parsed.live_dir, resume=run.resumed) as on_metrics:
        run.fit(on_metrics)
    policy, snapshots = run.bundles()
    returns = read_curve(parsed.live_dir, "imagined_return")
    summary = run.summary(returns, read_curve(parsed.live_dir, "imagined_reward"))
    return policy, run.initial, snapshots, summary


def train_policy_anchor_only(
    world_model: WorldModel,
    surrogate: RSSM,
    training_set: TrainingSet,
    params: dict,
    seed: int,
) -> tuple[DeployedPolicy, dict[str, Any]]:
    """The ablation: FoG's run with its reinforcement term switched off.

    Same start (behaviour cloning), anchor, rollouts, surrogate updates and budget as
    :func:`train_policy`; the difference on the robot is what FoG's gradient adds. Its
    checkpoints and curves go to ``<checkpoint_dir>_anchor_only`` and
    ``<live_dir>_anchor_only``.
    """
    parsed = parse_policy_params(params)
    if parsed.prior.weight == 0:
        raise ValueError(
            "the anchor-only ablation needs an anchor: set policy.prior.weight > 0 (or drop "
            "the train_policy_anchor_only node)"
        )
    ablation = {
        **params,
        "fog": {**params.get("fog", {}), "reinforcement_weight": 0.0, "snapshots": 0},
        "checkpoint_dir": f"{parsed.checkpoint_dir}_anchor_only",
        "live_dir": f"{parsed.live_dir}_anchor_only",
    }
    policy, _, _, summary = train_policy(world_model, surrogate, training_set, ablation, seed)
    return policy, summary


def picture_policy(
    policy: DeployedPolicy,
    world_model: WorldModel,
    training_set: TrainingSet,
    params: dict,
    seed: int,
):
    """Imagined episodes of the trained bundle from validation contexts, as a figure."""
    parsed = parse_policy_params(params)
    device = select_device(parsed.device)
    env = WorldModelEnv(
        world_model.to(device),
        training_set,
        parsed.imagination.episodes,
        split="val",
        max_steps=parsed.imagination.steps + 1,
        seed=seed,
        device=device,
        precision=parsed.env.precision,
    )
    frames, rewards = imagine_episodes(policy, env, parsed.imagination.steps)
    world_model.to(torch.device("cpu"))
    return imagination_figure(frames, rewards)
