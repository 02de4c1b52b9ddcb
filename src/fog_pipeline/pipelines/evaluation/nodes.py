"""Nodes of the ``evaluation`` pipeline: run policies on the robot and report success."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Annotated, Any

import pandas as pd
from matplotlib.figure import Figure
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.envs import RobotBackend, make_backend
from fog_pipeline.core.evaluation import (
    BackendPolicyAdapter,
    EpisodeVideo,
    EvaluationPolicy,
    RandomPolicy,
    aggregate,
    comparison_figure,
    comparisons,
    evaluate_policy,
    evaluation_robots,
    paired_differences,
    sample_efficiency_figure,
    sample_efficiency_row,
)
from fog_pipeline.pipelines.collect.nodes import CollectParams, collection_policy

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
REFERENCE_POLICIES = ("random", "data_policy")
# FoG is compared, scene by scene, with: the behaviour-cloned actor it started from (what
# FoG's training added), the ablation without FoG's reinforcement term (what that term
# adds), PPO in the same world model, and random actions. The names are the node's input
# keys (pipeline.py) and the reference policies; a pair appears when both were evaluated.
FOG = "fog"
FOG_BASELINES = ("fog_initial", "fog_anchor_only", "ppo", "random")
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


def _check_disjoint_seeds(config: EvaluationParams, collect: CollectParams) -> None:
    recorded = range(collect.first_env_seed, collect.first_env_seed + collect.n_episodes)
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


def _reference_policy(name: str, backend: RobotBackend, collect: CollectParams, seed: int):
    if name == "random":
        return RandomPolicy(backend.action_low, backend.action_high, seed)
    # The data-collection policy with the settings that recorded the data.
    return BackendPolicyAdapter(collection_policy(collect), backend, seed, name)


def evaluate_on_robot(
    params: dict[str, Any],
    collect_params: dict[str, Any],
    seed: int,
    **learned_policies: EvaluationPolicy,
) -> tuple[pd.DataFrame, dict[str, EpisodeVideo]]:
    """Run the reference policies, then ``learned_policies``, on the same unseen scenes.

    The robot is the one the data was recorded on (``collect.backend`` and its
    ``backend_options``): a policy trained on its camera frames must see the same
    camera; a simulator runs as ``evaluation.robots`` copies in parallel (the same
    results). ``learned_policies`` are extra node inputs mapped by name (the name becomes
    the policy's name in every output), each an object with ``reset()`` and
    ``act(frame, state) -> action`` (``state``: the robot's proprioception,
    ``backend.read_state()``, read right after ``frame``), and ``reset_robot`` /
    ``act_batch`` to use several robots at once. Returns the per-episode table
    and the videos keyed ``<policy>_<k>`` (the first ``video_episodes`` episodes of each
    policy).
    """
    config = parse_config(EvaluationParams, params, "evaluation")
    collect = parse_config(CollectParams, collect_params, "collect")
    _check_disjoint_seeds(config, collect)
    clashes = sorted(set(learned_policies) & set(config.reference_policies))
    if clashes:
        raise ValueError(
            f"policy inputs {clashes} are named like reference policies; rename the inputs "
            "of the evaluate_on_robot node (the input's key is the policy's name)"
        )
    for name, policy in learned_policies.items():
        if not all(callable(getattr(policy, method, None)) for method in ("reset", "act")):
            raise TypeError(
                f"policy input {name!r} is a {type(policy).__name__}, which lacks reset() or "
                "act(frame, state); load it as an object with reset() and "
                "act(frame, state) -> action"
            )

    if not config.reference_policies and not learned_policies:
        raise ValueError(
            "no policy to evaluate: evaluation.reference_policies is empty and the node has "
            "no policy input"
        )

    tables, videos = [], {}
    make_robot = functools.partial(make_backend, collect.backend, **collect.backend_options)
    with make_robot() as backend:
        if config.max_steps > backend.max_episode_steps:
            raise ValueError(
                f"evaluation.max_steps={config.max_steps} exceeds the robot's episode limit "
                f"{backend.max_episode_steps} (collect.backend_options.max_episode_steps): "
                "lower the first or raise the second"
            )
        policies = {
            name: _reference_policy(name, backend, collect, seed)
            for name in config.reference_policies
        } | learned_policies
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


def report_evaluation(
    episodes: pd.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, Any], Figure]:
    """The evaluation summary (``evaluation.json``, the DVC metrics) and the figure.

    Layout (every interval at ``confidence``)::

        confidence, first_seed, max_steps
        policies:      {policy: aggregate()'s entry: success_rate (+ Wilson _low/_high)
                        first, then final_coverage_, improvement_, max_coverage_ mean/low/
                        high, initial_coverage_mean, return_mean, length_mean}
        fog_versus:    {other: fog − other, scene by scene: scenes, then
                        <m>_diff_mean/_low/_high for m in success, final_coverage,
                        improvement, max_coverage}; other in FOG_BASELINES, when both ran
        versus_random: {policy: policy − random, same keys}, for every other policy
    """
    config = parse_config(EvaluationParams, params, "evaluation")
    policies = aggregate(episodes, CONFIDENCE)
    for name, entry in policies.items():
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
    summary = {
        "confidence": CONFIDENCE,
        "first_seed": config.first_seed,
        "max_steps": config.max_steps,
        "policies": policies,
        # Same scenes for every policy: differences scene by scene.
        "fog_versus": comparisons(episodes, FOG, FOG_BASELINES, CONFIDENCE),
        "versus_random": paired_differences(episodes, "random", CONFIDENCE),
    }
    for other, entry in summary["fog_versus"].items():
        _log_comparison(f"{FOG} - {other}", entry)
    for name, entry in summary["versus_random"].items():
        if not (name == FOG and "random" in summary["fog_versus"]):  # logged just above
            _log_comparison(f"{name} - random", entry)
    return summary, comparison_figure(policies, CONFIDENCE)


def evaluate_sample_efficiency(
    params: dict[str, Any],
    collect_params: dict[str, Any],
    seed: int,
    fog_snapshots: dict[int, EvaluationPolicy],
    ppo_snapshots: dict[int, EvaluationPolicy],
) -> tuple[pd.DataFrame, Figure]:
    """The sample-efficiency curve: every FoG and PPO snapshot on the robot.

    Snapshots were saved at the same world-model transition counts; each runs
    ``snapshot_episodes`` episodes on the first evaluation seeds. Returns one row per
    snapshot (family, transitions, success rate and interval, final coverage and
    interval, mean max coverage) and the figure.
    """
    config = parse_config(EvaluationParams, params, "evaluation")
    episodes = min(config.snapshot_episodes, config.episodes)
    snapshots = {
        f"{family}@{transitions}": (family, transitions, policy)
        for family, group in (("fog", fog_snapshots), ("ppo", ppo_snapshots))
        for transitions, policy in sorted(group.items())
    }
    table, _ = evaluate_on_robot(
        {**params, "episodes": episodes, "reference_policies": [], "video_episodes": 0},
        collect_params,
        seed,
        **{name: policy for name, (_, _, policy) in snapshots.items()},
    )
    summary = aggregate(table, CONFIDENCE)
    rows = pd.DataFrame(
        [
            sample_efficiency_row(family, transitions, summary[name])
            for name, (family, transitions, _) in snapshots.items()
        ]
    )
    return rows, sample_efficiency_figure(rows)
