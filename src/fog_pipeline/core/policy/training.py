"""FoG as the policy pipeline runs it: typed parameters, the actor and critic sized from
the models, behaviour cloning, the trainer inside the global model, and the bundles and
summary that come out.

:class:`FoGRun` builds everything (and resumes an unfinished checkpoint of the same
setup) when constructed, trains in :meth:`FoGRun.fit`, and returns the deployable bundles
afterwards. The caller owns the metric log: it opens it in append mode when
``run.resumed`` and hands the whole run's curves to :meth:`FoGRun.summary`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS, parse_config, parse_sized
from fog_pipeline.core.device import select_device
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.policy.bundle import DeployedPolicy, PolicyInfo
from fog_pipeline.core.policy.critic import CriticConfig, CriticEnsemble
from fog_pipeline.core.policy.fog import FoGConfig, FoGTrainer
from fog_pipeline.core.policy.prior import BehaviourPriorConfig, demonstrations, pretrain_actor
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.surrogate.training import SurrogateTrainer, SurrogateTrainingConfig
from fog_pipeline.core.training_state import tensor_digest
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel

log = logging.getLogger(__name__)

Curve = list[tuple[int, float]]
MetricsCallback = Callable[[int, dict[str, float]], None]


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


def build_actor_critic(
    parsed: PolicyParams, surrogate: RSSM, training_set: TrainingSet
) -> tuple[Actor, CriticEnsemble]:
    features = surrogate.config.deter + surrogate.config.stoch
    action_dim = training_set.meta["action_dim"]
    actor_config = parse_sized(
        ActorConfig,
        parsed.actor,
        {"feature_dim": features, "action_dim": action_dim},
        "policy.actor",
    )
    critic_config = parse_sized(
        CriticConfig, parsed.critic, {"feature_dim": features}, "policy.critic"
    )
    actor = Actor(actor_config)
    actor.set_action_bounds(
        torch.tensor(training_set.meta["action_low"]),
        torch.tensor(training_set.meta["action_high"]),
    )
    return actor, CriticEnsemble(critic_config)


def window_mean(curve: Curve, share: float, last: bool) -> float | None:
    """The mean of the first (or last) ``share`` of a curve's values; None if empty."""
    if not curve:
        return None
    count = max(1, round(len(curve) * share))
    rows = curve[-count:] if last else curve[:count]
    return sum(value for _, value in rows) / len(rows)


def snapshot_bundle(
    state: dict[str, torch.Tensor], surrogate: RSSM, actor: Actor, info: PolicyInfo
) -> DeployedPolicy:
    """A deployable policy from a trainer snapshot (actor + online-updated surrogate)."""
    twin_surrogate, twin_actor = RSSM(surrogate.config), Actor(actor.config)
    for prefix, module in (("surrogate/", twin_surrogate), ("actor/", twin_actor)):
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
    return DeployedPolicy(twin_surrogate, twin_actor, info)


class FoGRun:
    """One FoG run inside the global model, set up from the policy parameters.

    The initial actor is behaviour-cloned when ``params.prior`` is enabled (else
    untrained); the online updates change a copy of ``surrogate``, never the caller's.
    ``env`` replaces G as the world FoG rolls out in (only the diagnostic
    ``scripts/fog_on_simulator.py`` passes one: the robot's simulator).
    """

    def __init__(
        self,
        world_model: WorldModel,
        surrogate: RSSM,
        training_set: TrainingSet,
        params: PolicyParams,
        seed: int,
        env: Any | None = None,
    ) -> None:
        config = params.fog
        device = select_device(params.device)
        # FoG and its ablation must start from the same actor, whichever runs first: the
        # initial weights come from the seed, not from the random state others left.
        torch.manual_seed(seed)
        surrogate = copy.deepcopy(surrogate)
        actor, critic = build_actor_critic(params, surrogate, training_set)
        self.demos, self.cloning = None, []
        if params.prior.enabled:
            self.demos = demonstrations(surrogate.to(device), training_set)
            log.info("Behaviour prior: %d recorded steps.", len(self.demos))
            self.cloning = pretrain_actor(actor.to(device), self.demos, params.prior, seed)
        surrogate_config = parse_config(
            SurrogateTrainingConfig,
            {
                **params.surrogate_training,
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
                max_steps=params.env.max_steps,
                seed=seed,
                device=device,
                precision=params.env.precision,
            )
        surrogate, actor, critic = surrogate.to(device), actor.to(device), critic.to(device)
        self.trainer = FoGTrainer(
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
                "surrogate_training": surrogate_config,
                "data": training_set.meta,
            },
            prior=params.prior,
            demonstrations=self.demos,
            refresh_demonstrations=lambda: demonstrations(surrogate, training_set),
        )
        self.params, self.world_model = params, world_model
        self.surrogate, self.actor = surrogate, actor
        self.shape = tuple(training_set.meta["frame_shape"])
        self.names = tuple(training_set.meta["state_names"])
        # The actor FoG starts from (before any resume overwrites it), with the surrogate
        # as it was before the online updates.
        self.initial = snapshot_bundle(self.trainer.policy_state(), surrogate, actor, self._info(0))
        log.info(
            "FoG: %d iterations x %d environments x %d steps = %d world-model transitions "
            "(gradients from the %s).",
            config.iterations,
            config.num_envs,
            config.horizon,
            config.total_transitions,
            config.gradient_source,
        )
        self._started = time.perf_counter()
        self.resumed = self.trainer.try_resume(params.checkpoint_dir)
        self.wall_time = 0.0

    def _info(self, transitions: int) -> PolicyInfo:
        return PolicyInfo("fog", transitions, self.shape, self.names)

    def fit(self, on_metrics: MetricsCallback | None = None) -> None:
        """Train to the end, checkpointing to ``params.checkpoint_dir``; the models come
        back on the CPU."""
        self.trainer.fit(self.params.checkpoint_dir, on_metrics)
        self.wall_time = time.perf_counter() - self._started
        self.world_model.to(torch.device("cpu"))
        self.surrogate, self.actor = self.surrogate.cpu(), self.actor.cpu()

    def bundles(self) -> tuple[DeployedPolicy, dict[int, DeployedPolicy]]:
        """The trained bundle and the snapshots by transitions (the initial one at 0)."""
        policy = DeployedPolicy(self.surrogate, self.actor, self._info(self.trainer.transitions))
        snapshots = {0: self.initial} | {
            transitions: snapshot_bundle(state, self.surrogate, self.actor, self._info(transitions))
            for transitions, state in sorted(self.trainer.snapshots.items())
        }
        return policy, snapshots

    def summary(self, returns: Curve, rewards: Curve) -> dict[str, Any]:
        """The training summary from the whole run's imagined return and reward curves."""
        config, prior, trainer = self.params.fog, self.params.prior, self.trainer
        cloning = self.cloning
        summary = {
            "iterations": config.iterations,
            "transitions": trainer.transitions,
            "gradient_source": config.gradient_source,
            "reinforcement_weight": config.reinforcement_weight,
            "wall_time_s": round(self.wall_time, 1),
            "resumed": self.resumed,
            "imagined_return_first_10pct": window_mean(returns, 0.1, last=False),
            "imagined_return_last_10pct": window_mean(returns, 0.1, last=True),
            "imagined_reward_first_10pct": window_mean(rewards, 0.1, last=False),
            "imagined_reward_last_10pct": window_mean(rewards, 0.1, last=True),
            "final_alpha": trainer.alpha,
            # The online surrogate updates: G's sequences stored and gradient steps taken.
            "surrogate_replay_sequences": len(trainer.replay),
            "surrogate_update_steps": trainer.surrogate_trainer.step,
            "behaviour_cloning": {
                "pretrain_steps": prior.pretrain_steps,
                "anchor_weight": prior.weight,
                "recorded_steps": 0 if self.demos is None else len(self.demos),
                "nll_first_100": sum(cloning[:100]) / len(cloning[:100]) if cloning else None,
                "nll_last_100": sum(cloning[-100:]) / len(cloning[-100:]) if cloning else None,
            },
            "snapshots": sorted({0, *trainer.snapshots}),
        }
        log.info(
            "Imagined return %.3f -> %.3f (first vs last 10%% of iterations) in %.0f s.",
            summary["imagined_return_first_10pct"] or float("nan"),
            summary["imagined_return_last_10pct"] or float("nan"),
            self.wall_time,
        )
        return summary
