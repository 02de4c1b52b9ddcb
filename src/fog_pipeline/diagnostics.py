"""Shared pieces of the diagnostic scripts (``scripts/fog_on_simulator.py``,
``scripts/ppo_budget.py``): load the project's artifacts, score policies on validation
scenes and print paired comparisons.

Diagnostics choose and explain; they never feed the pipeline. They score on *validation*
scenes (seeds from 300000 by default), disjoint from the recorded scenes (collect's seeds)
and from the evaluation's (100000..), so that nothing tuned on them leaks into the
reported results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fog_pipeline.core.evaluation.report import aggregate, paired_difference
from fog_pipeline.core.evaluation.rollout import EvaluationPolicy
from fog_pipeline.pipelines.evaluation.nodes import evaluate_on_robot

PROJECT = Path(__file__).resolve().parents[2]
VALIDATION_FIRST_SEED = 300_000
REPORT_DIR = PROJECT / "data" / "08_reporting" / "diagnostics"


def load_project(env: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The Kedro catalog and parameters of the project (``env``: a conf environment)."""
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    session = KedroSession.create(project_path=PROJECT, env=env)
    context = session.load_context()
    return context.catalog, context.params


def load(catalog: Any, name: str) -> Any:
    """A catalog entry, with the command that makes it when it is missing."""
    if not catalog.exists(name):
        raise FileNotFoundError(
            f"artifact {name!r} is missing; run the pipelines first (make run, or kedro run "
            "--pipeline=<the stage that writes it>)"
        )
    return catalog.load(name)


def with_overrides(section: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``section`` with ``key.sub=value`` pairs applied (values read as YAML), e.g.
    ``fog.actor_lr=1e-3``; the pipeline validates the result as it validates its own."""
    section = json.loads(json.dumps(section))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set expects key.sub=value, got {pair!r}")
        *path, last = key.strip().split(".")
        node = section
        for part in path:
            node = node.setdefault(part, {})
        node[last] = _scalar(value)
    return section


def _scalar(text: str) -> Any:
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    return value


def score_on_validation(
    policies: dict[str, EvaluationPolicy],
    params: dict[str, Any],
    episodes: int,
    first_seed: int = VALIDATION_FIRST_SEED,
) -> pd.DataFrame:
    """Every policy on the same ``episodes`` validation scenes, on the recording's robot
    with the evaluation's time limit; the per-episode table."""
    evaluation = {
        **params["evaluation"],
        "episodes": episodes,
        "first_seed": first_seed,
        "reference_policies": [],
        "video_episodes": 0,
    }
    table, _ = evaluate_on_robot(evaluation, params["collect"], params["seed"], **policies)
    return table


def comparison_report(
    table: pd.DataFrame, pairs: list[tuple[str, str]], extra: dict[str, Any]
) -> dict[str, Any]:
    """Per-policy summary, the paired differences ``pairs`` (policy, baseline), ``extra``."""
    return {
        **extra,
        "policies": aggregate(table),
        "paired": {
            f"{policy} - {baseline}": paired_difference(table, policy, baseline)
            for policy, baseline in pairs
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print("| policy | success | final coverage | improvement |")
    print("|---|---|---|---|")
    for name, entry in report["policies"].items():
        print(
            f"| {name} | {entry['successes']}/{entry['episodes']} | "
            f"{entry['final_coverage_mean']:.3f} | {entry['improvement_mean']:+.3f} |"
        )
    print()
    print("| paired (95 % t) | success | final coverage | improvement |")
    print("|---|---|---|---|")
    for label, entry in report["paired"].items():
        cells = [
            f"{entry[f'{m}_diff_mean']:+.3f} ({entry[f'{m}_diff_low']:+.3f}, "
            f"{entry[f'{m}_diff_high']:+.3f})"
            for m in ("success", "final_coverage", "improvement")
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")


def write_report(name: str, report: dict[str, Any], table: pd.DataFrame) -> Path:
    """``data/08_reporting/diagnostics/<name>.json`` and ``<name>_episodes.csv``."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    path = REPORT_DIR / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    table.to_csv(REPORT_DIR / f"{name}_episodes.csv", index=False)
    return path
