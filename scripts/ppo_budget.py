"""Diagnostic: PPO at several multiples of FoG's world-model budget.

Trains the pipeline's PPO baseline (``conf/<env>/parameters_baselines.yml``, same start,
environments and imagined episode length) for ``factor`` times FoG's transitions, for
each ``--factors`` entry, then scores every snapshot (25/50/75/100 % of each budget, and
the start) on the same validation scenes (seeds 300000.., disjoint from the recorded and
evaluation scenes), with the pipeline's FoG snapshots beside them when present. It prints
the curve, and writes ``data/08_reporting/diagnostics/ppo_budget.{json,csv,png}`` (success
and final coverage against world-model transitions, log scale). An interrupted run
resumes where its checkpoints stopped (``data/08_reporting/diagnostics/ppo_budget_x<k>``)::

    .venv/bin/python scripts/ppo_budget.py --factors 4 10 --episodes 20

On the 2-core CPU machine PPO's 1x budget takes about 7 minutes, so 10x takes over an
hour: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

from fog_pipeline.core.evaluation.report import (
    aggregate,
    sample_efficiency_figure,
    sample_efficiency_row,
)
from fog_pipeline.core.policy.training import parse_policy_params
from fog_pipeline.diagnostics import (
    REPORT_DIR,
    VALIDATION_FIRST_SEED,
    load,
    load_project,
    score_on_validation,
)
from fog_pipeline.pipelines.baselines.nodes import train_ppo_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="Kedro conf environment (default: base)")
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 10])
    parser.add_argument("--episodes", type=int, default=20, help="validation scenes per snapshot")
    parser.add_argument("--first-seed", type=int, default=VALIDATION_FIRST_SEED)
    args = parser.parse_args()
    if any(factor < 1 for factor in args.factors):
        parser.error(f"--factors must be >= 1, got {args.factors}")

    catalog, params = load_project(args.env)
    world_model = load(catalog, "world_model")
    surrogate = load(catalog, "surrogate")
    training_set = load(catalog, "training_set")
    base = parse_policy_params(params["policy"]).fog
    policies, points, timing = {}, {}, {}
    if catalog.exists("policy_snapshots"):
        for transitions, policy in catalog.load("policy_snapshots").items():
            name = f"fog@{transitions}"
            policies[name], points[name] = policy, ("fog (1x)", transitions)
    for factor in args.factors:
        run_dir = REPORT_DIR / f"ppo_budget_x{factor}"
        policy_params = {
            **params["policy"],
            "fog": {**params["policy"]["fog"], "iterations": base.iterations * factor},
        }
        baselines = {
            **params["baselines"],
            "checkpoint_dir": str(run_dir / "checkpoint"),
            "live_dir": str(run_dir / "live"),
        }
        started = time.perf_counter()
        _, snapshots, summary = train_ppo_baseline(
            world_model, surrogate, training_set, baselines, policy_params, params["seed"]
        )
        timing[f"x{factor}"] = {
            "transitions": base.total_transitions * factor,
            "wall_time_s": round(time.perf_counter() - started, 1),
            "summary": summary,
        }
        for transitions, policy in snapshots.items():
            name = f"ppo_x{factor}@{transitions}"
            policies[name], points[name] = policy, (f"ppo ({factor}x)", transitions)

    table = score_on_validation(policies, params, args.episodes, args.first_seed)
    summary = aggregate(table)
    rows = [
        sample_efficiency_row(family, transitions, summary[name])
        for name, (family, transitions) in points.items()
    ]
    print("| family | transitions | success | final coverage | improvement |")
    print("|---|---|---|---|---|")
    for name, (family, transitions) in points.items():
        entry = summary[name]
        print(
            f"| {family} | {transitions} | {entry['successes']}/{entry['episodes']} | "
            f"{entry['final_coverage_mean']:.3f} | {entry['improvement_mean']:+.3f} |"
        )
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    report = {
        "what": "PPO at multiples of FoG's world-model budget, on validation scenes",
        "fog_budget_transitions": base.total_transitions,
        "validation_seeds": [args.first_seed, args.first_seed + args.episodes - 1],
        "runs": timing,
        "policies": summary,
    }
    (REPORT_DIR / "ppo_budget.json").write_text(json.dumps(report, indent=2) + "\n")
    table.to_csv(REPORT_DIR / "ppo_budget_episodes.csv", index=False)
    figure = sample_efficiency_figure(rows, log_x=True)
    figure.savefig(REPORT_DIR / "ppo_budget.png", dpi=120)
    print(f"\nwritten: {REPORT_DIR / 'ppo_budget.json'} and ppo_budget.png")


if __name__ == "__main__":
    main()
