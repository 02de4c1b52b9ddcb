"""Robot steps per second of closed-loop evaluation: serial beside vectorised.

    python benchmarks/robot_evaluation.py [--robots 2] [--episodes 8] [--max-steps 300]
        [--policy data/06_models/policy] [--seconds 5]

Measures, on the Push-T simulator at the evaluation's camera size:

- raw: the simulator alone (``PushTBackend.step`` with random actions), in one process
  and in ``min(robots, cores)`` processes at once (their summed rate: the ceiling this
  machine allows);
- serial: :func:`evaluate_policy` on one in-process robot (``evaluation.robots: 1``);
- vectorised: the same episodes on a :class:`SimulatorPool` of ``--robots`` robots, one
  process each, in two groups: the policy acts for one while the other steps
  (``evaluation.robots: N``); the pool's start is timed apart (once per evaluation node);

for random actions (a policy that costs nothing), the data-collection policy (it runs
beside each robot, in the robot's process) and, if a bundle is on disk at ``--policy``,
the learned policy (in this process, robot by robot). The goal: vectorised at least 80 %
of raw per core times the cores it can use (``min(robots, cores)``). Each vectorised run
is checked to give the serial results exactly. Other load on the machine skews the
numbers: the load average before and after is printed.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.episodes.teleop import PushTTeleoperator
from fog_pipeline.core.evaluation import (
    BackendPolicyAdapter,
    RandomPolicy,
    SimulatorPool,
    evaluate_policy,
)
from fog_pipeline.core.policy.bundle import INFO_FILE, load_policy

GOAL = 0.8


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def raw_rate(make, seconds: float, ready=None, rates=None) -> float:
    """Simulator steps per second with random actions, resets included (after ``ready``,
    a barrier shared with other processes; the rate also goes to the queue ``rates``)."""
    rng = np.random.default_rng(0)
    with make() as robot:
        robot.reset(0)
        if ready is not None:
            ready.wait()
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            if robot.step(rng.uniform(-1.0, 1.0, 2)).truncated:
                robot.reset(steps)
            steps += 1
        rate = steps / (time.perf_counter() - start)
    if rates is not None:
        rates.put(rate)
    return rate


def parallel_raw_rate(make, processes: int, seconds: float) -> float:
    """The simulators' summed rate, ``processes`` of them running at once: what the
    machine allows, whatever the cost of coordinating them."""
    context = multiprocessing.get_context("spawn")
    ready, rates = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=raw_rate, args=(make, seconds, ready, rates))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(rates.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total


def eval_rate(policy, robots, seeds, max_steps) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    episodes = evaluate_policy(policy, robots, seeds, max_steps, progress=False).episodes
    return episodes["length"].sum() / (time.perf_counter() - start), episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, nargs="+", default=[2])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=100_000)
    parser.add_argument("--policy", type=Path, default=Path("data/06_models/policy"))
    parser.add_argument("--size", type=int, default=32, help="camera size without a bundle")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    bundle = load_policy(args.policy) if (args.policy / INFO_FILE).is_file() else None
    size = bundle.info.frame_shape[0] if bundle is not None else args.size
    make = functools.partial(make_backend, "pusht", width=size, height=size)
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    print(
        f"{_cpu()}, {cores} cores, torch threads {torch.get_num_threads()}; Push-T "
        f"{size}x{size}, {args.episodes} episodes x <= {args.max_steps} steps"
    )
    if bundle is None:
        print(f"no policy bundle at {args.policy}: the learned policy is skipped")
    policies = {
        "random": lambda robot: RandomPolicy(robot.action_low, robot.action_high, 0),
        "data_policy (teleoperator)": lambda robot: BackendPolicyAdapter(
            PushTTeleoperator(), robot, 0, "data_policy"
        ),
    }
    if bundle is not None:
        policies[f"learned ({args.policy})"] = lambda robot: load_policy(args.policy)

    print(
        f"{'policy':<34}{'robots':>7}{'serial/s':>10}{'vector/s':>10}{'vec/serial':>11}"
        f"{'vec/(raw*cores)':>16}{'goal':>6}{'vec/raw_par':>12}{'same':>6}"
    )
    with make() as robot:
        for robots in args.robots:
            used = min(robots, cores)
            # Measured next to the runs they compare with: the machine's speed drifts.
            raw = raw_rate(make, args.seconds)
            raw_parallel = parallel_raw_rate(make, used, args.seconds)
            start = time.perf_counter()
            with SimulatorPool(make, robots) as pool:
                started = time.perf_counter() - start
                for name, policy in policies.items():
                    serial, expected = eval_rate(policy(robot), robot, seeds, args.max_steps)
                    vector, got = eval_rate(policy(robot), pool, seeds, args.max_steps)
                    ratio = vector / (raw * used)
                    print(
                        f"{name:<34}{robots:>7}{serial:>10.0f}{vector:>10.0f}"
                        f"{vector / serial:>10.2f}x{ratio:>15.0%}"
                        f"{'ok' if ratio >= GOAL else 'below':>6}"
                        f"{vector / raw_parallel:>11.0%}{str(got.equals(expected)):>6}",
                        flush=True,
                    )
            print(
                f"  raw simulator: {raw:.0f} steps/s in 1 process, {raw_parallel:.0f} in "
                f"{used} at once; pool of {robots} started in {started:.1f} s"
            )
    print(
        f"goal: vectorised >= {GOAL:.0%} of raw per core x cores used (min(robots, "
        f"{cores})); raw_par: the summed rate of that many raw simulators at once; load "
        f"average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
