"""Summaries and figures of robot evaluations.

- :func:`aggregate`: per policy, the answer to "does the robot succeed?" first (success
  rate with its Wilson interval), then "does the block end up on the goal?" (mean final
  coverage), "what did the policy add to the scene?" (mean improvement) and, secondary,
  the mean max coverage, each with a Student-t interval; from the per-episode table of
  :func:`~fog_pipeline.core.evaluation.rollout.evaluate_policy`. Flat keys of numbers,
  so that ``dvc metrics show`` / ``dvc metrics diff`` can print and compare them.
- :func:`paired_difference` / :func:`paired_differences` / :func:`comparisons`: the mean
  difference of two policies on the same scenes, scene by scene, with Student-t intervals
  (pairing removes the scene-to-scene spread that the per-policy intervals carry).
- :func:`comparison_figure`: success rate and mean final coverage per policy.
- :func:`sample_efficiency_figure`: robot success rate and final coverage against the
  world-model transitions a policy consumed, one line per policy family (FoG, PPO, ...);
  rows come from :func:`sample_efficiency_row`.
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
# The difference of two fractions (improvement = max - initial coverage; a paired gap).
DIFFERENCE_RANGE = (-1.0, 1.0)

# Per-policy means with a t interval, in report order (success comes before them).
MEAN_MEASURES = {
    "final_coverage": COVERAGE_RANGE,
    "improvement": DIFFERENCE_RANGE,
    "max_coverage": COVERAGE_RANGE,  # secondary: where the block came closest
}

# Measures compared scene by scene, in report order; success counts 0/1 per scene.
PAIRED_MEASURES = ("success", "final_coverage", "improvement", "max_coverage")

EFFICIENCY_COLUMNS = (
    "family",
    "transitions",
    "success_rate",
    "success_rate_low",
    "success_rate_high",
    "final_coverage_mean",
)


def _require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(table.columns)}")


def aggregate(episodes: pd.DataFrame, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per policy (in order of first appearance), the evaluation summary.

    Keys, in this order: ``episodes``, ``successes``, ``success_rate`` with its Wilson
    interval ``success_rate_low``/``_high``; then ``final_coverage_mean``,
    ``improvement_mean`` and ``max_coverage_mean`` (see :data:`MEAN_MEASURES`), each with
    its Student-t interval clipped to the measure's range (``*_low``/``*_high``, see
    :func:`~fog_pipeline.core.evaluation.stats.mean_interval`; a coverage outside [0, 1]
    is refused); then ``initial_coverage_mean`` (the same for every policy when the
    scenes reset identically), ``return_mean``, ``length_mean``. All intervals at
    ``confidence``.
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
        for measure, bounds in MEAN_MEASURES.items():
            mean, low, high = mean_interval(rows[measure].to_numpy(), confidence, bounds)
            entry |= {f"{measure}_mean": mean, f"{measure}_low": low, f"{measure}_high": high}
        entry["initial_coverage_mean"] = float(rows["initial_coverage"].mean())
        entry["return_mean"] = float(rows["return"].mean())
        entry["length_mean"] = float(rows["length"].mean())
        summary[str(policy)] = entry
    return summary


def _per_scene(episodes: pd.DataFrame, policy: str) -> pd.DataFrame:
    rows = episodes[episodes["policy"] == policy].set_index("seed")
    if not rows.index.is_unique:
        raise ValueError(f"policy {policy!r} ran some scene seed more than once")
    return rows


def paired_difference(
    episodes: pd.DataFrame, policy: str, baseline: str, confidence: float = 0.95
) -> dict[str, float] | None:
    """``policy`` minus ``baseline``, scene by scene; ``None`` if either was not evaluated.

    For each of :data:`PAIRED_MEASURES` (``success`` as 0/1 per scene): the mean over the
    scenes of the per-scene difference and its Student-t interval,
    ``<measure>_diff_mean``/``_low``/``_high`` (clipped to [-1, 1]); and ``scenes``, the
    number of scenes. Both must have run on exactly the same seeds, once each.
    """
    _require_columns(episodes, EPISODE_COLUMNS, "the episode table")
    ours, theirs = _per_scene(episodes, policy), _per_scene(episodes, baseline)
    if ours.empty or theirs.empty:
        return None
    if set(ours.index) != set(theirs.index):
        raise ValueError(
            f"policy {policy!r} ran on other scenes than {baseline!r}: a paired "
            "comparison needs every policy on the same seeds, once each"
        )
    theirs = theirs.loc[ours.index]
    entry: dict[str, float] = {"scenes": len(ours)}
    for measure in PAIRED_MEASURES:
        gap = ours[measure].astype(float) - theirs[measure].astype(float)
        mean, low, high = mean_interval(gap.to_numpy(), confidence, DIFFERENCE_RANGE)
        entry |= {
            f"{measure}_diff_mean": mean,
            f"{measure}_diff_low": low,
            f"{measure}_diff_high": high,
        }
    return entry


def paired_differences(
    episodes: pd.DataFrame, baseline: str, confidence: float = 0.95
) -> dict[str, dict[str, float]]:
    """Every other policy against ``baseline``: ``{policy: policy − baseline}``.

    Entries as in :func:`paired_difference`, policies in order of first appearance; an
    absent baseline gives ``{}``.
    """
    _require_columns(episodes, EPISODE_COLUMNS, "the episode table")
    result = {}
    for policy in episodes["policy"].drop_duplicates():
        if policy != baseline:
            entry = paired_difference(episodes, str(policy), baseline, confidence)
            if entry is not None:
                result[str(policy)] = entry
    return result


def comparisons(
    episodes: pd.DataFrame, policy: str, baselines: Iterable[str], confidence: float = 0.95
) -> dict[str, dict[str, float]]:
    """``policy`` against each of ``baselines``: ``{baseline: policy − baseline}``.

    Entries as in :func:`paired_difference`, in the order of ``baselines``; a pair in
    which either policy was not evaluated is left out (so is ``policy`` itself).
    """
    result = {}
    for baseline in baselines:
        if baseline != policy:
            entry = paired_difference(episodes, policy, baseline, confidence)
            if entry is not None:
                result[str(baseline)] = entry
    return result


def _error_bars(means: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    # matplotlib wants distances below and above the bar, never negative
    return np.stack([np.maximum(means - lows, 0), np.maximum(highs - means, 0)])


def comparison_figure(summary: Mapping[str, Mapping[str, Any]], confidence: float = 0.95) -> Figure:
    """Bar charts per policy: success rate (Wilson error bars) and mean final coverage.

    The coverage bars carry t-interval error bars; when the summary has them, markers show
    the mean initial coverage (where the scenes started) and the mean max coverage
    (secondary: where the block came closest). ``summary`` is :func:`aggregate`'s result;
    ``confidence`` only labels the axes.
    """
    if not summary:
        raise ValueError("no policy to plot: the summary is empty")
    names = list(summary)
    x = np.arange(len(names))

    def column(key: str) -> np.ndarray:
        return np.array([summary[name][key] for name in names], dtype=np.float64)

    def has(key: str) -> bool:
        return all(key in summary[name] for name in names)

    figure = Figure(figsize=(3.0 + 1.6 * len(names), 3.8), layout="constrained")
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
    final = column("final_coverage_mean")
    coverage_ax.bar(
        x,
        final,
        yerr=_error_bars(final, column("final_coverage_low"), column("final_coverage_high")),
        capsize=4,
        color="tab:orange",
        label="final (bar)",
    )
    for key, marker, label in (
        ("initial_coverage_mean", "_", "initial"),
        ("max_coverage_mean", "^", "max (secondary)"),
    ):
        if has(key):
            coverage_ax.plot(
                x, column(key), marker, color="black", markersize=10, ls="none", label=label
            )
    coverage_ax.set_ylabel(f"mean coverage ({confidence:.0%} t interval)")
    # Below the panels, where it cannot hide a bar.
    figure.legend(
        *coverage_ax.get_legend_handles_labels(),
        loc="outside lower right",
        ncols=3,
        fontsize="small",
        title="coverage",
    )
    # Success counts under the names: a 0 % bar has nothing to print a label on.
    labels = [f"{n}\n{summary[n]['successes']}/{summary[n]['episodes']}" for n in names]
    for ax, title in ((success_ax, "Task success"), (coverage_ax, "Block on the goal at the end")):
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
    snapshot's entry of :func:`aggregate`. Columns: success rate and its interval, final
    coverage and its interval, and the mean max coverage (extra).
    """
    keys = (
        "success_rate",
        "success_rate_low",
        "success_rate_high",
        "final_coverage_mean",
        "final_coverage_low",
        "final_coverage_high",
        "max_coverage_mean",
    )
    return {"family": family, "transitions": int(transitions)} | {
        key: float(policy_summary[key]) for key in keys
    }


def sample_efficiency_figure(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame, log_x: bool = False
) -> Figure:
    """Robot success rate and mean final coverage against world-model transitions consumed.

    One line per ``family``, its points sorted by ``transitions``; shaded bands show the
    success rate's Wilson interval and, when the rows have ``final_coverage_low`` /
    ``final_coverage_high``, the coverage interval. Rows need :data:`EFFICIENCY_COLUMNS`
    (build them with :func:`sample_efficiency_row`). ``log_x`` for budgets spanning
    orders of magnitude (PPO usually needs far more transitions than FoG).
    """
    table = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows
    _require_columns(table, EFFICIENCY_COLUMNS, "the sample-efficiency rows")
    if table.empty:
        raise ValueError("no sample-efficiency row to plot")
    has_coverage_band = {"final_coverage_low", "final_coverage_high"} <= set(table.columns)

    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    success_ax, coverage_ax = figure.subplots(1, 2, sharex=True)
    for family, points in table.groupby("family", sort=False):
        points = points.sort_values("transitions")
        x = points["transitions"].to_numpy(dtype=np.float64)
        (line,) = success_ax.plot(x, points["success_rate"], marker="o", label=str(family))
        band = {"alpha": 0.2, "linewidth": 0, "color": line.get_color()}
        success_ax.fill_between(x, points["success_rate_low"], points["success_rate_high"], **band)
        coverage_ax.plot(x, points["final_coverage_mean"], marker="o", color=line.get_color())
        if has_coverage_band:
            coverage_ax.fill_between(
                x, points["final_coverage_low"], points["final_coverage_high"], **band
            )
    success_ax.set_ylabel("robot success rate")
    coverage_ax.set_ylabel("mean final coverage")
    for ax in (success_ax, coverage_ax):
        ax.set_xlabel("world-model transitions consumed")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        if log_x:
            ax.set_xscale("log")
    success_ax.legend(title="policy")
    figure.suptitle("Sample efficiency: robot results against world-model budget")
    return figure
