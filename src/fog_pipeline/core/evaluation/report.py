"""Summaries and figures of robot evaluations.

- :func:`aggregate`: per policy, success rate with its Wilson interval and mean
  coverage/return/length, from the per-episode table of
  :func:`~fog_pipeline.core.evaluation.rollout.evaluate_policy`. Flat keys of numbers,
  so that ``dvc metrics show`` / ``dvc metrics diff`` can print and compare them.
- :func:`paired_differences`: per policy, its mean difference to a baseline policy on the
  same scenes, with intervals (pairing removes the scene-to-scene spread that the
  per-policy intervals carry).
- :func:`comparison_figure`: success rate and mean max coverage per policy.
- :func:`sample_efficiency_figure`: robot success and coverage against the world-model
  transitions a policy consumed, one line per policy family (FoG, PPO, ...); rows come
  from :func:`sample_efficiency_row`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fog_pipeline.core.evaluation.rollout import EPISODE_COLUMNS
from fog_pipeline.core.evaluation.stats import mean_interval, wilson_interval

# Coverage is a fraction (the robot's reward label; on Push-T clip(coverage / 0.95, 0, 1)).
COVERAGE_RANGE = (0.0, 1.0)

EFFICIENCY_COLUMNS = (
    "family",
    "transitions",
    "success_rate",
    "success_rate_low",
    "success_rate_high",
    "max_coverage_mean",
)


def _require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(table.columns)}")


def aggregate(episodes: pd.DataFrame, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per policy (in order of first appearance), the evaluation summary.

    Keys: ``episodes``, ``successes``, ``success_rate`` with its Wilson interval
    ``success_rate_low``/``_high``; ``max_coverage_mean`` and ``final_coverage_mean``
    with their Student-t intervals clipped to [0, 1] (``*_low``/``*_high``, see
    :func:`~fog_pipeline.core.evaluation.stats.mean_interval`; a coverage outside [0, 1]
    is refused); ``return_mean``, ``length_mean``. All intervals at ``confidence``.
    """
    _require_columns(episodes, EPISODE_COLUMNS, "the episode table")
    if episodes.empty:
        raise ValueError("the episode table is empty: nothing to aggregate")
    summary = {}
    for policy, rows in episodes.groupby("policy", sort=False):
        trials, successes = len(rows), int(rows["success"].astype(bool).sum())
        low, high = wilson_interval(successes, trials, confidence)
        entry: dict[str, Any] = {
            "episodes": trials,
            "successes": successes,
            "success_rate": successes / trials,
            "success_rate_low": low,
            "success_rate_high": high,
        }
        for measure in ("max_coverage", "final_coverage"):
            mean, low, high = mean_interval(rows[measure].to_numpy(), confidence, COVERAGE_RANGE)
            entry |= {f"{measure}_mean": mean, f"{measure}_low": low, f"{measure}_high": high}
        entry["return_mean"] = float(rows["return"].mean())
        entry["length_mean"] = float(rows["length"].mean())
        summary[str(policy)] = entry
    return summary


PAIRED_MEASURES = ("max_coverage", "final_coverage", "return")


def paired_differences(
    episodes: pd.DataFrame, baseline: str, confidence: float = 0.95
) -> dict[str, dict[str, float]]:
    """Per policy other than ``baseline``: the mean over shared scene seeds of (policy −
    baseline) for each of :data:`PAIRED_MEASURES`, with its Student-t interval
    (``<measure>_diff_mean``/``_low``/``_high``) and the number of ``scenes``. Every
    policy must have run on exactly the baseline's seeds; an absent baseline gives ``{}``.
    """
    _require_columns(episodes, EPISODE_COLUMNS, "the episode table")
    reference = episodes[episodes["policy"] == baseline].set_index("seed")
    if reference.empty:
        return {}
    result = {}
    for policy, rows in episodes.groupby("policy", sort=False):
        if policy == baseline:
            continue
        rows = rows.set_index("seed")
        if set(rows.index) != set(reference.index) or not rows.index.is_unique:
            raise ValueError(
                f"policy {policy!r} ran on other scenes than {baseline!r}: a paired "
                "comparison needs every policy on the same seeds, once each"
            )
        entry: dict[str, float] = {"scenes": len(rows)}
        for measure in PAIRED_MEASURES:
            gap = rows[measure] - reference.loc[rows.index, measure]
            mean, low, high = mean_interval(gap.to_numpy(), confidence)
            entry |= {
                f"{measure}_diff_mean": mean,
                f"{measure}_diff_low": low,
                f"{measure}_diff_high": high,
            }
        result[str(policy)] = entry
    return result


def _error_bars(means: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    # matplotlib wants distances below and above the bar, never negative
    return np.stack([np.maximum(means - lows, 0), np.maximum(highs - means, 0)])


def comparison_figure(summary: Mapping[str, Mapping[str, Any]], confidence: float = 0.95) -> Figure:
    """Bar charts per policy: success rate (Wilson error bars) and mean max coverage.

    ``summary`` is :func:`aggregate`'s result; ``confidence`` only labels the axes.
    """
    if not summary:
        raise ValueError("no policy to plot: the summary is empty")
    names = list(summary)
    x = np.arange(len(names))

    def column(key: str) -> np.ndarray:
        return np.array([summary[name][key] for name in names], dtype=np.float64)

    figure = Figure(figsize=(3.0 + 1.6 * len(names), 3.6), layout="constrained")
    success_ax, coverage_ax = figure.subplots(1, 2)
    rate = column("success_rate")
    success_ax.bar(
        x,
        rate,
        yerr=_error_bars(rate, column("success_rate_low"), column("success_rate_high")),
        capsize=4,
        color="tab:blue",
    )
    success_ax.set_ylabel(f"success rate ({confidence:.0%} Wilson interval)")
    coverage = column("max_coverage_mean")
    coverage_ax.bar(
        x,
        coverage,
        yerr=_error_bars(coverage, column("max_coverage_low"), column("max_coverage_high")),
        capsize=4,
        color="tab:orange",
    )
    coverage_ax.set_ylabel(f"mean max coverage ({confidence:.0%} t interval)")
    # Success counts under the names: a 0 % bar has nothing to print a label on.
    labels = [f"{n}\n{summary[n]['successes']}/{summary[n]['episodes']}" for n in names]
    for ax, title in ((success_ax, "Task success"), (coverage_ax, "Best coverage per episode")):
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle("Robot evaluation (same scenes for every policy)")
    return figure


def sample_efficiency_row(
    family: str, transitions: int, policy_summary: Mapping[str, Any]
) -> dict[str, Any]:
    """One point of :func:`sample_efficiency_figure`.

    ``family`` is the training method (``"fog"``, ``"ppo"``), ``transitions`` the
    world-model transitions the policy snapshot had consumed, ``policy_summary`` that
    snapshot's entry of :func:`aggregate`.
    """
    keys = (
        "success_rate",
        "success_rate_low",
        "success_rate_high",
        "max_coverage_mean",
        "max_coverage_low",
        "max_coverage_high",
    )
    return {"family": family, "transitions": int(transitions)} | {
        key: float(policy_summary[key]) for key in keys
    }


def sample_efficiency_figure(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame, log_x: bool = False
) -> Figure:
    """Robot success rate and mean max coverage against world-model transitions consumed.

    One line per ``family``, its points sorted by ``transitions``; shaded bands show the
    success rate's Wilson interval and, when the rows have ``max_coverage_low`` /
    ``max_coverage_high``, the coverage interval. Rows need :data:`EFFICIENCY_COLUMNS`
    (build them with :func:`sample_efficiency_row`). ``log_x`` for budgets spanning
    orders of magnitude (PPO usually needs far more transitions than FoG).
    """
    table = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows
    _require_columns(table, EFFICIENCY_COLUMNS, "the sample-efficiency rows")
    if table.empty:
        raise ValueError("no sample-efficiency row to plot")
    has_coverage_band = {"max_coverage_low", "max_coverage_high"} <= set(table.columns)

    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    success_ax, coverage_ax = figure.subplots(1, 2, sharex=True)
    for family, points in table.groupby("family", sort=False):
        points = points.sort_values("transitions")
        x = points["transitions"].to_numpy(dtype=np.float64)
        (line,) = success_ax.plot(x, points["success_rate"], marker="o", label=str(family))
        band = {"alpha": 0.2, "linewidth": 0, "color": line.get_color()}
        success_ax.fill_between(x, points["success_rate_low"], points["success_rate_high"], **band)
        coverage_ax.plot(x, points["max_coverage_mean"], marker="o", color=line.get_color())
        if has_coverage_band:
            coverage_ax.fill_between(
                x, points["max_coverage_low"], points["max_coverage_high"], **band
            )
    success_ax.set_ylabel("robot success rate")
    coverage_ax.set_ylabel("mean max coverage")
    for ax in (success_ax, coverage_ax):
        ax.set_xlabel("world-model transitions consumed")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        if log_x:
            ax.set_xscale("log")
    success_ax.legend(title="policy")
    figure.suptitle("Sample efficiency: robot results against world-model budget")
    return figure
