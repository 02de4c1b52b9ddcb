"""The evaluation protocol as the evaluation pipeline runs it: its typed parameters, the
reference policies, every policy on the same unseen scenes, and the logged summary.

Scenes are scored on the robot the data was recorded on (``collect.backend``), on seeds
disjoint from the recorded ones, so the data-collection parameters come in too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import pandas as pd
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs.robot import RobotBackend
from fog_pipeline.core.episodes.collection import CollectParams, collection_policy
from fog_pipeline.core.evaluation.report import aggregate, comparisons, paired_differences
from fog_pipeline.core.evaluation.robots import evaluation_robots
from fog_pipeline.core.evaluation.rollout import (
    BackendPolicyAdapter,
    EpisodeVideo,
    EvaluationPolicy,
    RandomPolicy,
    evaluate_policy,
)

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
REFERENCE_POLICIES = ("random", "data_policy")
BOUNDS = ("mean", "low", "high")
PAIRED_LOGGED = ("success", "final_coverage", "improvement")  # with intervals in the log


@dataclass
class EvaluationParams:
    __pydantic_config__ = STRICT_KEYS

    # Episodes per policy. Every policy runs on the same scenes (a paired comparison).
    episodes: Annotated[int, Field(ge=1)] = 50
    # Scene seeds first_seed .. first_seed + episodes - 1: they must not overlap the
    # seeds the training data was recorded on (collect.first_env_seed, n_episodes).
    first_seed: Annotated[int, Field(ge=0)] = 100_000
    # Time limit of an episode in control steps (at most the backend's max_episode_steps).
    max_steps: Annotated[int, Field(ge=1)] = 300
    reference_policies: tuple[str, ...] = REFERENCE_POLICIES
    # GIFs of the first episodes of each policy (data/08_reporting/evaluation_videos).
    video_episodes: Annotated[int, Field(ge=0)] = 2
    # Episodes per FoG/PPO snapshot on the sample-efficiency curve (the first seeds).
    snapshot_episodes: Annotated[int, Field(ge=1)] = 20
    # Simulated robots stepped side by side (one process each, the same results as 1);
    # 1, and any robot that is not a simulator, runs one episode at a time in-process.
    robots: Annotated[int, Field(ge=1)] = 1

    def __post_init__(self) -> None:
        self.reference_policies = tuple(self.reference_policies)
        unknown = sorted(set(self.reference_policies) - set(REFERENCE_POLICIES))
        if unknown:
            raise ValueError(
                f"unknown reference policies {unknown}; known: {', '.join(REFERENCE_POLICIES)}"
            )
        if len(set(self.reference_policies)) != len(self.reference_policies):
            raise ValueError(f"reference_policies repeats a name: {self.reference_policies}")

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.episodes)


def check_disjoint_seeds(config: EvaluationParams, collect: CollectParams) -> None:
    recorded = collect.env_seeds
    shared = range(max(config.seeds.start, recorded.start), min(config.seeds.stop, recorded.stop))
    if shared:
        raise ValueError(
            f"evaluation scene seeds {config.seeds.start}..{config.seeds.stop - 1} "
            f"(evaluation.first_seed, evaluation.episodes) overlap the seeds the training data "
            f"was recorded on, {recorded.start}..{recorded.stop - 1} (collect.first_env_seed, "
            f"collect.n_episodes): {len(shared)} shared, {shared.start}..{shared.stop - 1}. "
            "A policy must be scored on scenes its world model never saw: set "
            f"evaluation.first_seed >= {recorded.stop} (or make the ranges disjoint)."
        )


def check_policies(config: EvaluationParams, learned: Mapping[str, Any]) -> None:
    """The learned policies act like policies and are not named like reference ones."""
    clashes = sorted(set(learned) & set(config.reference_policies))
    if clashes:
        raise ValueError(
            f"policy inputs {clashes} are named like reference policies; rename the inputs "
            "of the evaluate_on_robot node (the input's key is the policy's name)"
        )
    for name, policy in learned.items():
        if not all(callable(getattr(policy, method, None)) for method in ("reset", "act")):
            raise TypeError(
                f"policy input {name!r} is a {type(policy).__name__}, which lacks reset() or "
                "act(frame, state); load it as an object with reset() and "
                "act(frame, state) -> action"
            )
    if not config.reference_policies and not learned:
        raise ValueError(
            "no policy to evaluate: evaluation.reference_policies is empty and the node has "
            "no policy input"
        )


def reference_policy(name: str, backend: RobotBackend, collect: CollectParams, seed: int):
    if name == "random":
        return RandomPolicy(backend.action_low, backend.action_high, seed)
    # The data-collection policy with the settings that recorded the data.
    return BackendPolicyAdapter(collection_policy(collect), backend, seed, name)


def evaluate_policies(
    config: EvaluationParams,
    collect: CollectParams,
    seed: int,
    learned: Mapping[str, EvaluationPolicy],
    make_robot: Callable[[], RobotBackend],
) -> tuple[pd.DataFrame, dict[str, EpisodeVideo]]:
    """The reference policies, then ``learned``, on the same unseen scenes of robots
    made by ``make_robot``: the per-episode table and the videos keyed ``<policy>_<k>``."""
    check_disjoint_seeds(config, collect)
    check_policies(config, learned)
    tables, videos = [], {}
    with make_robot() as backend:
        if config.max_steps > backend.max_episode_steps:
            raise ValueError(
                f"evaluation.max_steps={config.max_steps} exceeds the robot's episode limit "
                f"{backend.max_episode_steps} (collect.backend_options.max_episode_steps): "
                "lower the first or raise the second"
            )
        policies = {
            name: reference_policy(name, backend, collect, seed)
            for name in config.reference_policies
        } | dict(learned)
        # One pool for all policies: its processes start once.
        with evaluation_robots(backend, make_robot, config.robots) as robots:
            for name, policy in policies.items():
                result = evaluate_policy(
                    policy,
                    robots,
                    config.seeds,
                    config.max_steps,
                    name=name,
                    video_episodes=config.video_episodes,
                )
                tables.append(result.episodes)
                videos |= {f"{name}_{k}": video for k, video in enumerate(result.videos)}
    return pd.concat(tables, ignore_index=True), videos


def _log_comparison(label: str, entry: dict[str, float]) -> None:
    log.info(
        "%s, paired over %d scenes: success %+.2f [%+.2f, %+.2f], final coverage %+.3f "
        "[%+.3f, %+.3f], improvement %+.3f [%+.3f, %+.3f], max coverage %+.3f",
        label,
        entry["scenes"],
        *(entry[f"{measure}_diff_{k}"] for measure in PAIRED_LOGGED for k in BOUNDS),
        entry["max_coverage_diff_mean"],
    )


def _log_policy(name: str, entry: dict[str, Any]) -> None:
    log.info(
        "%s: success %d/%d (%.0f %%, %.0f %% CI %.0f-%.0f %%), final coverage %.3f "
        "[%.3f, %.3f], improvement %+.3f [%+.3f, %+.3f] (from %.3f), max coverage %.3f, "
        "mean length %.0f steps",
        name,
        entry["successes"],
        entry["episodes"],
        100 * entry["success_rate"],
        100 * CONFIDENCE,
        100 * entry["success_rate_low"],
        100 * entry["success_rate_high"],
        *(entry[f"final_coverage_{k}"] for k in BOUNDS),
        *(entry[f"improvement_{k}"] for k in BOUNDS),
        entry["initial_coverage_mean"],
        entry["max_coverage_mean"],
        entry["length_mean"],
    )


def evaluation_summary(
    episodes: pd.DataFrame, config: EvaluationParams, policy: str, baselines: Sequence[str]
) -> dict[str, Any]:
    """Per-policy results, ``policy`` against each of ``baselines`` and every policy
    against random, scene by scene (every interval at ``CONFIDENCE``); logged as well."""
    policies = aggregate(episodes, CONFIDENCE)
    for name, entry in policies.items():
        _log_policy(name, entry)
    summary = {
        "confidence": CONFIDENCE,
        "first_seed": config.first_seed,
        "max_steps": config.max_steps,
        "policies": policies,
        # Same scenes for every policy: differences scene by scene.
        f"{policy}_versus": comparisons(episodes, policy, baselines, CONFIDENCE),
        "versus_random": paired_differences(episodes, "random", CONFIDENCE),
    }
    for other, entry in summary[f"{policy}_versus"].items():
        _log_comparison(f"{policy} - {other}", entry)
    for name, entry in summary["versus_random"].items():
        if not (name == policy and "random" in summary[f"{policy}_versus"]):  # logged above
            _log_comparison(f"{name} - random", entry)
    return summary
