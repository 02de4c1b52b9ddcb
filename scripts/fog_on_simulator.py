"""Diagnostic: FoG with the robot's simulator in place of the global world model G.

The same FoG loop as ``kedro run --pipeline=policy`` (same start, anchor, surrogate,
online surrogate updates, budget and settings from ``conf/<env>/parameters_policy.yml``),
but the forward trajectories, frames and labels come from the Push-T simulator
(:class:`~fog_pipeline.core.envs.batched.BatchedRobotEnv`) instead of G: the setting of
DMO. Comparing it with the pipeline's FoG locates the bottleneck:

- simulator-FoG >> G-FoG: the world model costs the gap (fidelity, exploitation);
- simulator-FoG ~ its start: the optimiser (surrogate gradients, actor-critic, anchor)
  is what holds the policy back, whatever the world model.

It scores the start, simulator-FoG and, when present, the pipeline's ``policy`` on the
same validation scenes (seeds 300000.., disjoint from the recorded and evaluation
scenes), prints the table and paired differences, and writes
``data/08_reporting/diagnostics/fog_on_simulator.json``. Training scenes for the
simulator are seeds 400000.. (fresh scenes, not the recorded ones). Needs the
``world_model`` stage's data and the ``surrogate`` artifact (``make run`` makes them)::

    .venv/bin/python scripts/fog_on_simulator.py --episodes 50

A diagnostic only: the product never trains in the simulator.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.envs.batched import BatchedRobotEnv
from fog_pipeline.diagnostics import (
    REPORT_DIR,
    VALIDATION_FIRST_SEED,
    comparison_report,
    load,
    load_project,
    print_report,
    score_on_validation,
    with_overrides,
    write_report,
)
from fog_pipeline.pipelines.policy.nodes import parse_policy_params, train_policy

SIMULATOR_FIRST_SEED = 400_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="Kedro conf environment (default: base)")
    parser.add_argument("--episodes", type=int, default=50, help="validation scenes to score on")
    parser.add_argument("--first-seed", type=int, default=VALIDATION_FIRST_SEED)
    parser.add_argument(
        "--episode-steps",
        type=int,
        default=None,
        help="simulated episode length (default: the evaluation's time limit, so the "
        "policy meets every phase of the task; a horizon-long episode would only ever "
        "see a scene's first steps)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a policy parameter, e.g. --set fog.iterations=300 --set prior.weight=0.1",
    )
    parser.add_argument("--name", default="fog_on_simulator", help="report name")
    parser.add_argument(
        "--skip-pipeline-policy",
        action="store_true",
        help="do not score the pipeline's FoG policy beside them (faster sweeps)",
    )
    args = parser.parse_args()

    catalog, params = load_project(args.env)
    collect = params["collect"]
    world_model = load(catalog, "world_model")
    surrogate = load(catalog, "surrogate")
    training_set = load(catalog, "training_set")
    params["policy"] = with_overrides(params["policy"], args.set)
    policy_params = parse_policy_params(params["policy"])
    run_dir = REPORT_DIR / f"{args.name}_run"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: the simulator cannot resume
    overrides = {
        **params["policy"],
        "checkpoint_dir": str(run_dir / "checkpoint"),
        "live_dir": str(run_dir / "live"),
    }
    env = BatchedRobotEnv(
        lambda: make_backend(collect["backend"], **collect.get("backend_options", {})),
        num_envs=policy_params.fog.num_envs,
        context=world_model.context,
        max_steps=args.episode_steps or params["evaluation"]["max_steps"],
        first_seed=SIMULATOR_FIRST_SEED,
        seed=params["seed"],
    )
    started = time.perf_counter()
    try:
        trained, initial, _, summary = train_policy(
            world_model, surrogate, training_set, overrides, params["seed"], env=env
        )
    finally:
        env.close()
    wall = time.perf_counter() - started

    policies = {"fog_initial": initial, "fog_on_simulator": trained}
    pairs = [("fog_on_simulator", "fog_initial")]
    if catalog.exists("policy") and not args.skip_pipeline_policy:
        policies["fog"] = catalog.load("policy")
        pairs += [("fog_on_simulator", "fog"), ("fog", "fog_initial")]
    table = score_on_validation(policies, params, args.episodes, args.first_seed)
    report = comparison_report(
        table,
        pairs,
        {
            "what": "FoG with the simulator's frames and labels in place of G (DMO setting)",
            "validation_seeds": [args.first_seed, args.first_seed + args.episodes - 1],
            "simulator_scenes_used": int(env.next_seed - SIMULATOR_FIRST_SEED),
            "episode_steps": env.max_steps,
            "overrides": args.set,
            "training_wall_time_s": round(wall, 1),
            "training": summary,
        },
    )
    print_report(report)
    print(f"\nwritten: {write_report(args.name, report, table)}")


if __name__ == "__main__":
    main()
