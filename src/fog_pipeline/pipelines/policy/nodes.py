"""Nodes of the ``policy`` pipeline: train with FoG, then picture the policy in the model."""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.device import select_device
from fog_pipeline.core.envs.batched import BatchedRobotEnv
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.policy.bundle import DeployedPolicy, PolicyInfo
from fog_pipeline.core.policy.critic import CriticConfig, CriticEnsemble
from fog_pipeline.core.policy.fog import FoGConfig, FoGTrainer, tensor_digest
from fog_pipeline.core.policy.imagination import imagination_figure, imagine_episodes
from fog_pipeline.core.policy.prior import BehaviourPriorConfig, demonstrations, pretrain_actor
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.surrogate.training import SurrogateTrainer, SurrogateTrainingConfig
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.pipelines.live import live_logger

log = logging.getLogger(__name__)


@dataclass
class ImaginedEnvConfig:
    __pydantic_config__ = STRICT_KEYS

    # Imagined episodes restart from real contexts after this many steps, which keeps G
    # near the data it was trained on. G samples with its own setting
    # (world_model.denoiser.sampling_steps), the one its fidelity report measures.
    max_steps: Annotated[int, Field(ge=1)] = 100
    # G's sampler precision, the same as in its fidelity report (globals.yml).
    precision: Literal["auto", "fp32", "bf16"] = "fp32"


@dataclass
class ImaginationConfig:
    __pydantic_config__ = STRICT_KEYS

    episodes: Annotated[int, Field(ge=1)] = 4
    steps: Annotated[int, Field(ge=1)] = 24


@dataclass
class PolicyParams:
    __pydantic_config__ = STRICT_KEYS

    device: str = "cpu"
    env: ImaginedEnvConfig = field(default_factory=ImaginedEnvConfig)
    # Architectures only: input and action sizes come from the surrogate and the data.
    actor: dict[str, Any] = field(default_factory=dict)
    critic: dict[str, Any] = field(default_factory=dict)
    fog: FoGConfig = field(default_factory=FoGConfig)
    prior: BehaviourPriorConfig = field(default_factory=BehaviourPriorConfig)
    # The online surrogate updates (steps are derived: iterations x fog.surrogate_updates).
    surrogate_training: dict[str, Any] = field(default_factory=lambda: {"lr": 1e-4})
    imagination: ImaginationConfig = field(default_factory=ImaginationConfig)
    checkpoint_dir: str = "data/06_models/policy_checkpoint"
    live_dir: str = "data/08_reporting/policy_training"


def parse_policy_params(params: dict) -> PolicyParams:
    return parse_config(PolicyParams, params, "policy")


def _sized(section: dict[str, Any], derived: dict[str, Any], where: str, cls: type) -> Any:
    clash = sorted(set(derived) & set(section))
    if clash:
        raise ValueError(f"{where}.{clash[0]} is derived from the models; remove it.")
    return parse_config(cls, {**section, **derived}, where)


def build_actor_critic(
    parsed: PolicyParams, surrogate: RSSM, training_set: TrainingSet
) -> tuple[Actor, CriticEnsemble]:
    features = surrogate.config.deter + surrogate.config.stoch
    action_dim = training_set.meta["action_dim"]
    actor_config = _sized(
        parsed.actor,
        {"feature_dim": features, "action_dim": action_dim},
        "policy.actor",
        ActorConfig,
    )
    critic_config = _sized(parsed.critic, {"feature_dim": features}, "policy.critic", CriticConfig)
    actor = Actor(actor_config)
    actor.set_action_bounds(
        torch.tensor(training_set.meta["action_low"]),
        torch.tensor(training_set.meta["action_high"]),
    )
    return actor, CriticEnsemble(critic_config)


def read_curve(live_dir: str | Path, metric: str) -> list[tuple[int, float]]:
    """A dvclive curve as (step, value) rows (the whole run, across resumes)."""
    path = Path(live_dir) / "plots" / "metrics" / f"{metric}.tsv"
    if not path.exists():
        return []
    with path.open() as handle:
        return [
            (int(row["step"]), float(row[metric])) for row in csv.DictReader(handle, delimiter="\t")
        ]


def window_mean(curve: list[tuple[int, float]], share: float, last: bool) -> float | None:
    if not curve:
        return None
    count = max(1, round(len(curve) * share))
    rows = curve[-count:] if last else curve[:count]
    return sum(value for _, value in rows) / len(rows)


def _bundle(state: dict[str, torch.Tensor], surrogate: RSSM, actor: Actor, info: PolicyInfo):
    """A deployable policy from a trainer snapshot (actor + online-updated surrogate)."""
    twin_surrogate, twin_actor = RSSM(surrogate.config), Actor(actor.config)
    for prefix, module in (("surrogate/", twin_surrogate), ("actor/", twin_actor)):
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
    return DeployedPolicy(twin_surrogate, twin_actor, info)


def train_policy(
    world_model: WorldModel,
    surrogate: RSSM,
    training_set: TrainingSet,
    params: dict,
    seed: int,
    env: BatchedRobotEnv | None = None,
) -> tuple[DeployedPolicy, DeployedPolicy, dict[int, DeployedPolicy], dict[str, Any]]:
    """FoG inside the global model.

    Returns the trained bundle, the initial one (the actor FoG starts from: behaviour-cloned
    when ``policy.prior.pretrain_steps`` > 0, else untrained), the snapshots (the initial
    bundle at 0 transitions included) and a summary. ``env`` replaces G as the world FoG
    rolls out in; only the diagnostic ``scripts/fog_on_simulator.py`` passes one (the
    robot's simulator), the pipeline never does.
    """
    parsed = parse_policy_params(params)
    config = parsed.fog
    device = select_device(parsed.device)
    # FoG and its ablation must start from the same actor, whichever node runs first: the
    # initial weights come from the seed, not from the random state other nodes left, and
    # the online updates change a copy of the surrogate, never the caller's.
    torch.manual_seed(seed)
    surrogate = copy.deepcopy(surrogate)
    actor, critic = build_actor_critic(parsed, surrogate, training_set)
    demos, cloning = None, []
    if parsed.prior.enabled:
        demos = demonstrations(surrogate.to(device), training_set)
        log.info("Behaviour prior: %d recorded steps.", len(demos))
        cloning = pretrain_actor(actor.to(device), demos, parsed.prior, seed)
    surrogate_config = parse_config(
        SurrogateTrainingConfig,
        {
            **parsed.surrogate_training,
            "steps": max(1, config.iterations * config.surrogate_updates),
        },
        "policy.surrogate_training",
    )
    # G is never trained here: frozen weights keep full BPTT from filling parameter grads.
    world_model.requires_grad_(False)
    if env is None:
        env = WorldModelEnv(
            world_model.to(device),
            training_set,
            config.num_envs,
            max_steps=parsed.env.max_steps,
            seed=seed,
            device=device,
            precision=parsed.env.precision,
        )
    surrogate, actor, critic = surrogate.to(device), actor.to(device), critic.to(device)
    trainer = FoGTrainer(
        env,
        surrogate,
        actor,
        critic,
        config,
        seed,
        device,
        surrogate_trainer=SurrogateTrainer(surrogate, surrogate_config, seed, device),
        fingerprint_extra={
            "world_model": tensor_digest(world_model.denoiser.state_dict().values()),
            "env": {"kind": type(env).__name__, "max_steps": env.max_steps},
            "surrogate_training": dataclasses.asdict(surrogate_config),
            "data": training_set.meta,
        },
        prior=parsed.prior,
        demonstrations=demos,
        refresh_demonstrations=lambda: demonstrations(surrogate, training_set),
    )
    shape = tuple(training_set.meta["frame_shape"])
    names = tuple(training_set.meta["state_names"])
    # The actor FoG starts from (before any resume overwrites it), with the surrogate as
    # it was before the online updates.
    initial = _bundle(trainer.policy_state(), surrogate, actor, PolicyInfo("fog", 0, shape, names))
    log.info(
        "FoG: %d iterations x %d environments x %d steps = %d world-model transitions "
        "(gradients from the %s).",
        config.iterations,
        config.num_envs,
        config.horizon,
        config.total_transitions,
        config.gradient_source,
    )
    started = time.perf_counter()
    resumed = trainer.try_resume(parsed.checkpoint_dir)
    if resumed:
        log.info("Resumed policy training at iteration %d.", trainer.step)
    with live_logger(parsed.live_dir, resume=resumed) as on_metrics:
        trainer.fit(parsed.checkpoint_dir, on_metrics)
    wall = time.perf_counter() - started
    world_model.to(torch.device("cpu"))
    surrogate, actor = surrogate.cpu(), actor.cpu()
    policy = DeployedPolicy(surrogate, actor, PolicyInfo("fog", trainer.transitions, shape, names))
    snapshots = {0: initial} | {
        transitions: _bundle(state, surrogate, actor, PolicyInfo("fog", transitions, shape, names))
        for transitions, state in sorted(trainer.snapshots.items())
    }
    returns = read_curve(parsed.live_dir, "imagined_return")
    rewards = read_curve(parsed.live_dir, "imagined_reward")
    summary = {
        "iterations": config.iterations,
        "transitions": trainer.transitions,
        "gradient_source": config.gradient_source,
        "reinforcement_weight": config.reinforcement_weight,
        "wall_time_s": round(wall, 1),
        "resumed": resumed,
        "imagined_return_first_10pct": window_mean(returns, 0.1, last=False),
        "imagined_return_last_10pct": window_mean(returns, 0.1, last=True),
        "imagined_reward_first_10pct": window_mean(rewards, 0.1, last=False),
        "imagined_reward_last_10pct": window_mean(rewards, 0.1, last=True),
        "final_alpha": trainer.alpha,
        # The online surrogate updates: G's sequences stored and gradient steps taken.
        "surrogate_replay_sequences": len(trainer.replay),
        "surrogate_update_steps": trainer.surrogate_trainer.step,
        "behaviour_cloning": {
            "pretrain_steps": parsed.prior.pretrain_steps,
            "anchor_weight": parsed.prior.weight,
            "recorded_steps": 0 if demos is None else len(demos),
            "nll_first_100": sum(cloning[:100]) / len(cloning[:100]) if cloning else None,
            "nll_last_100": sum(cloning[-100:]) / len(cloning[-100:]) if cloning else None,
        },
        "snapshots": sorted(snapshots),
    }
    log.info(
        "Imagined return %.3f -> %.3f (first vs last 10%% of iterations) in %.0f s.",
        summary["imagined_return_first_10pct"] or float("nan"),
        summary["imagined_return_last_10pct"] or float("nan"),
        wall,
    )
    return policy, initial, snapshots, summary


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
