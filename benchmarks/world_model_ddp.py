"""World-model training throughput with 1 and more data-parallel processes, side by side.

    python benchmarks/world_model_ddp.py [--env base|gpu] [--device cpu|cuda]
        [--processes 1 2] [--steps 20] [--warmup 3] [--repeats 1] [--threads N]
        [--training-set data/03_primary/training_set]

Trains the world model of the chosen Kedro environment (conf/base, overlaid by
conf/<env>; its architecture and training section, with its global batch size) for
``--warmup`` + ``--steps`` steps, once per process count, through the same
``WorldModelTrainer.fit`` that the ``world_model`` pipeline calls. The data is a
synthetic training set of the environment's shape (Push-T: 2 actions, 4 state numbers)
unless ``--training-set`` names a real one: speed does not depend on the pixels.

The clock runs from the end of the warm-up steps to the last step (the parent's metrics
callback sees both), so steps/s is the steady training rate; the time from the call to
the end of the warm-up (spawning and importing in the processes included) is printed
apart. samples/s = steps/s x the global batch.
With ``--repeats`` > 1 the process counts alternate and the median is printed.
``--threads`` sets this process's torch threads (default: torch's choice), which CPU
processes split between them, as in the pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.device import select_device, use_bf16
from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.training_set import TrainingSet, build_training_set
from fog_pipeline.core.world_model.denoiser import DenoiserConfig
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.core.world_model.reward import RewardModelConfig
from fog_pipeline.core.world_model.state import StateModelConfig
from fog_pipeline.core.world_model.training import WorldModelTrainer, WorldModelTrainingConfig
from fog_pipeline.diagnostics import load_project

FRAME_SIZE = {"base": 32, "smoke": 16, "gpu": 64}
ACTION_DIM, STATE_DIM = 2, 4


def _params(env: str) -> dict:
    """The ``world_model`` parameters of a Kedro environment, merged by Kedro itself."""
    return load_project(None if env == "base" else env)[1]["world_model"]


def synthetic_training_set(size: int, segments: int = 40, length: int = 100) -> TrainingSet:
    rng = np.random.default_rng(0)
    parts = []
    for i in range(segments):
        parts.append(
            Segment(
                f"ep{i}",
                0,
                rng.integers(0, 255, size=(length, size, size, 3), dtype=np.uint8),
                rng.uniform(-1, 1, size=(length, ACTION_DIM)).astype(np.float32),
                rng.uniform(0, 1, size=length).astype(np.float32),
                np.zeros(length, dtype=bool),
                rng.uniform(-1, 1, size=(length, STATE_DIM)).astype(np.float32),
                rng.uniform(0, 1, size=length).astype(np.float32),
            )
        )
    meta = {
        "fps": 10.0,
        "action_low": [-1.0] * ACTION_DIM,
        "action_high": [1.0] * ACTION_DIM,
        "state_names": [f"s{i}" for i in range(STATE_DIM)],
    }
    return build_training_set(parts, val_fraction=0.1, seed=0, meta=meta)


def build_model(params: dict, data: TrainingSet) -> WorldModel:
    height, width, _ = data.meta["frame_shape"]
    frame = {"frame_height": height, "frame_width": width, "state_dim": data.meta["state_dim"]}
    denoiser = parse_config(
        DenoiserConfig,
        {**params["denoiser"], **frame, "action_dim": data.meta["action_dim"]},
        "world_model.denoiser",
    )
    reward = parse_config(
        RewardModelConfig, {**params.get("reward_model", {}), **frame}, "world_model.reward_model"
    )
    state = parse_config(
        StateModelConfig,
        {
            **params.get("state_model", {}),
            "state_dim": denoiser.state_dim,
            "action_dim": denoiser.action_dim,
            "context": denoiser.context,
        },
        "world_model.state_model",
    )
    stats = data.meta["stats"]
    torch.manual_seed(0)
    return WorldModel.create(denoiser, reward, stats["action_mean"], stats["action_std"], state)


def measure(params: dict, data: TrainingSet, processes: int, args, device) -> dict[str, float]:
    training = {
        **params["training"],
        "steps": args.warmup + args.steps,
        "log_every": 1,  # a parent-side timestamp at every step
        "checkpoint_every": args.warmup + args.steps,
        "precision": args.precision,
        "processes": processes,
    }
    config = parse_config(WorldModelTrainingConfig, training, "world_model.training")
    trainer = WorldModelTrainer(build_model(params, data), data, config, seed=0, device=device)
    stamps: dict[int, float] = {}
    started = time.perf_counter()
    trainer.fit(None, lambda step, metrics: stamps.setdefault(step, time.perf_counter()))
    elapsed = stamps[config.steps] - stamps[args.warmup]
    steps_per_s = args.steps / elapsed
    return {
        "steps/s": steps_per_s,
        "samples/s": steps_per_s * config.batch_size,
        "to warm s": stamps[args.warmup] - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base", choices=sorted(FRAME_SIZE))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, help="torch threads, split between processes")
    parser.add_argument("--training-set", type=Path, help="a real training set instead")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = select_device(args.device)
    params = _params(args.env)
    if args.training_set is not None:
        data = TrainingSet.load(args.training_set)
    else:
        data = synthetic_training_set(FRAME_SIZE[args.env])
    height, width, _ = data.meta["frame_shape"]
    batch = params["training"]["batch_size"]
    print(
        f"env={args.env} frames {height}x{width} global batch {batch} device={device} "
        f"precision={'bf16' if use_bf16(device, args.precision) else 'fp32'} "
        f"threads={torch.get_num_threads()} (split between CPU processes)"
    )
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in args.processes}
    for _ in range(args.repeats):
        for processes in args.processes:
            runs[processes].append(measure(params, data, processes, args, device))
    rows = {
        n: {k: statistics.median(r[k] for r in results) for k in results[0]}
        for n, results in runs.items()
    }
    base = rows[args.processes[0]]["steps/s"]
    print(f"{'processes':>10}{'steps/s':>10}{'samples/s':>11}{'ratio':>7}{'to warm s':>11}")
    for processes, row in rows.items():
        print(
            f"{processes:>10}{row['steps/s']:>10.3f}{row['samples/s']:>11.1f}"
            f"{row['steps/s'] / base:>7.2f}{row['to warm s']:>11.1f}"
        )


if __name__ == "__main__":
    main()
