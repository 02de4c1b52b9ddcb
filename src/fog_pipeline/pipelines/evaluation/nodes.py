"""Nodes of the ``evaluation`` pipeline: run policies on the robot and report success."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.episodes.collection import CollectParams
from fog_pipeline.core.evaluation import (
    EpisodeVideo,
    EvaluationPolicy,
    aggregate,
    comparison_figure,
    sample_efficiency_figure,
    sample_efficiency_row,
)
from fog_pipeline.core.evaluation.protocol import (
    CONFIDENCE,
    EvaluationParams,
    evaluate_policies,
    evaluation_summary,
)

# FoG is compared, scene by scene, with: the behaviour-cloned actor it started from (what
# FoG's training added), the ablation without FoG's reinforcement term (what that term
# adds), PPO in the same world model, and random actions. The names are the node's input
# keys (pipeline.py) and the reference policies; a pair appears when both were evaluated.
FOG = "fog"
FOG_BASELINES = ("fog_initial", "fog_anchor_only", "ppo", "random")


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
    make_robot = functools.partial(make_backend, collect.backend, **collect.backend_options)
    return evaluate_policies(config, collect, seed, learned_policies, make_robot)


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
    summary = evaluation_summary(episodes, config, FOG, FOG_BASELINES)
    return summary, comparison_figure(summary["policies"], CONFIDENCE)


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
