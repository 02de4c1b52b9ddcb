"""Nodes of the ``baselines`` pipeline: PPO in the global world model, FoG's budget."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from fog_pipeline.core.baselines.ppo import (
    BudgetCallback,
    LatentWorldModelVecEnv,
    PPOConfig,
    behaviour_clone_ppo,
    make_ppo,
    ppo_actor,
)
from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.device import select_device
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.bundle import DeployedPolicy, PolicyInfo
from fog_pipeline.core.policy.fog import tensor_digest
from fog_pipeline.core.policy.prior import demonstrations
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.training_state import resume_training_state, save_training_state
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.pipelines.live import live_logger
from fog_pipeline.pipelines.policy.nodes import parse_policy_params, read_curve, window_mean

log = logging.getLogger(__name__)


@dataclass
class BaselinesParams:
    __pydantic_config__ = STRICT_KEYS

    device: str = "cpu"
    ppo: PPOConfig = field(default_factory=PPOConfig)
    checkpoint_dir: str = "data/06_models/ppo_checkpoint"
    live_dir: str = "data/08_reporting/ppo_training"


def train_ppo_baseline(
    world_model: WorldModel,
    surrogate: RSSM,
    training_set: TrainingSet,
    params: dict,
    policy_params: dict,
    seed: int,
) -> tuple[DeployedPolicy, dict[int, DeployedPolicy], dict[str, Any]]:
    """PPO with FoG's world-model transition budget and snapshot points.

    The environment count and imagined episode length are FoG's (``policy.fog.num_envs``,
    ``policy.env``), and G samples with its one setting, so both see the same imagined
    world. PPO's
    policy starts from behaviour cloning with FoG's settings (``policy.prior``), as FoG's
    actor does; FoG's anchor term has no place in sb3's loss, so PPO trains without it.
    The snapshot at 0 transitions is that starting policy.
    Checkpoints are written at every snapshot point; a rerun after an interruption
    resumes from the last one (the imagined environments restart from fresh contexts).
    """
    parsed = parse_config(BaselinesParams, params, "baselines")
    fog = parse_policy_params(policy_params)
    budget = fog.fog.total_transitions
    snapshot_at = [i * fog.fog.transitions_per_iteration for i in fog.fog.snapshot_iterations()]
    device = select_device(parsed.device)
    world_model.requires_grad_(False)
    env = WorldModelEnv(
        world_model.to(device),
        training_set,
        fog.fog.num_envs,
        max_steps=fog.env.max_steps,
        seed=seed,
        device=device,
        precision=fog.env.precision,
    )
    gamma = parsed.ppo.gamma
    success_value = gamma / (1.0 - gamma) if gamma < 1 else 0.0
    vec_env = LatentWorldModelVecEnv(env, surrogate.to(device), success_value)
    model = make_ppo(vec_env, parsed.ppo, seed, str(device))
    shape = tuple(training_set.meta["frame_shape"])
    names = tuple(training_set.meta["state_names"])
    if fog.prior.pretrain_steps > 0:
        demos = demonstrations(surrogate, training_set)
        behaviour_clone_ppo(model, demos, env.action_low, env.action_high, fog.prior, seed)
    start = ppo_actor(model, env.action_low, env.action_high)
    snapshots: dict[int, dict[str, torch.Tensor]] = {0: start.state_dict()}
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "ppo": dataclasses.asdict(parsed.ppo),
                "budget": budget,
                "snapshots": snapshot_at,
                "env": dataclasses.asdict(fog.env),
                "num_envs": fog.fog.num_envs,
                "prior": dataclasses.asdict(fog.prior),
                "world_model": tensor_digest(world_model.denoiser.state_dict().values()),
                "surrogate": tensor_digest(surrogate.state_dict().values()),
                "seed": seed,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    rng = np.random.default_rng(seed)  # stored for the checkpoint format; PPO seeds itself

    def checkpoint(transitions: int) -> None:
        save_training_state(
            parsed.checkpoint_dir,
            step=transitions,
            fingerprint=fingerprint,
            modules={
                "policy": model.policy.state_dict(),
                **{f"snapshot_{t}": state for t, state in snapshots.items()},
            },
            optimizers={"optim": model.policy.optimizer},
            generator=env.generator,
            rng=rng,
        )

    def on_snapshot(transitions: int, trained) -> None:
        actor = ppo_actor(trained, env.action_low, env.action_high)
        snapshots[transitions] = {k: v.detach().clone() for k, v in actor.state_dict().items()}
        checkpoint(transitions)

    def keep(transitions: int):
        def load(state: dict[str, torch.Tensor]) -> None:
            if state:
                snapshots[transitions] = state

        return load

    done = resume_training_state(
        parsed.checkpoint_dir,
        total_steps=budget,
        fingerprint=fingerprint,
        modules={"policy": model.policy.load_state_dict}
        | {f"snapshot_{t}": keep(t) for t in snapshot_at},
        optimizers={"optim": model.policy.optimizer},
        generator=env.generator,
        rng=rng,
        device=device,
    )
    resumed = done is not None
    done = done or 0
    if resumed:
        log.info("Resumed PPO at %d world-model transitions.", done)
    model.num_timesteps = vec_env.transitions = done
    log.info(
        "PPO: %d world-model transitions (FoG's budget), %d environments, rollouts of %d steps.",
        budget,
        fog.fog.num_envs,
        parsed.ppo.n_steps,
    )
    started = time.perf_counter()
    with (
        live_logger(parsed.live_dir, resume=resumed) as on_metrics,
        tqdm(total=budget, initial=done, desc="policy (PPO)", unit="transition") as bar,
    ):

        def progress(transitions: int, reward: float) -> None:
            bar.update(transitions - bar.n)
            bar.set_postfix(reward=f"{reward:.3f}")

        callback = BudgetCallback(
            vec_env, [t for t in snapshot_at if t > done], on_snapshot, on_metrics, progress
        )
        model.learn(total_timesteps=budget - done, callback=callback, reset_num_timesteps=False)
    wall = time.perf_counter() - started
    world_model.to(torch.device("cpu"))
    surrogate = surrogate.cpu()
    final = ppo_actor(model, env.action_low, env.action_high)
    bundles = {}
    for transitions, state in sorted(snapshots.items()):
        actor = ppo_actor(model, env.action_low, env.action_high)
        actor.load_state_dict(state)
        bundles[transitions] = DeployedPolicy(
            surrogate, actor, PolicyInfo("ppo", transitions, shape, names)
        )
    policy = DeployedPolicy(surrogate, final, PolicyInfo("ppo", vec_env.transitions, shape, names))
    rewards = read_curve(parsed.live_dir, "imagined_reward")
    summary = {
        "transitions": vec_env.transitions,
        "budget_from": "policy.fog (iterations x num_envs x horizon)",
        "wall_time_s": round(wall, 1),
        "resumed": resumed,
        "imagined_reward_first_10pct": window_mean(rewards, 0.1, last=False),
        "imagined_reward_last_10pct": window_mean(rewards, 0.1, last=True),
        "snapshots": sorted(bundles),
    }
    return policy, bundles, summary
