"""What makes imagination faster: torch.compile, channels-last, bf16 and threads, side by side.

    python benchmarks/imagination_speedups.py [--batch 16] [--seconds 3] [--fog-repeats 2]
        [--skip-fog]

Two workloads, each against the project's default (eager, fp32, contiguous, all threads):

1. G's sampler: one imagined transition for a batch (``WorldModel.step``: the default
   Euler steps of the U-Net plus the state, reward and success heads), no grad.
2. One FoG update (``FoGTrainer.train_iteration`` at the default N and H: rollout through
   G, surrogate Jacobians, actor, critic and alpha steps).

Both use the trained default artifacts (run `dvc repro surrogate` first).

Variants: ``threads=1``; ``channels_last`` (U-Net weights and inputs in NHWC);
``bf16`` (autocast; native on CPUs with AVX-512 BF16/AMX, emulated elsewhere);
``compile`` (``torch.compile`` of the U-Net, default mode; its one-off compile time is
printed separately). Each rate is measured after a warm-up call.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch
import yaml

from fog_pipeline.core.device import autocast, cpu_has_native_bf16
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.fog import FoGConfig, FoGTrainer
from fog_pipeline.core.policy.training import build_actor_critic, parse_policy_params
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.datasets.surrogate import SurrogateDataset

ARTIFACTS = Path("data/06_models")
VARIANTS = ("default", "threads=1", "channels_last", "bf16", "compile")


@contextlib.contextmanager
def _variant(name: str, model: WorldModel):
    """Apply one variant to ``model`` (and the torch settings) for the duration."""
    threads = torch.get_num_threads()
    unet = model.denoiser.unet
    try:
        if name == "threads=1":
            torch.set_num_threads(1)
        elif name == "channels_last":
            unet.to(memory_format=torch.channels_last)
        elif name == "compile":
            model.denoiser.unet = torch.compile(unet)
        yield "bf16" if name == "bf16" else "fp32"
    finally:
        torch.set_num_threads(threads)
        unet.to(memory_format=torch.contiguous_format)
        model.denoiser.unet = unet


def _timed(fn, seconds: float) -> tuple[float, float]:
    """(first call's seconds, steady calls per second over at least ``seconds``)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return first, calls / (time.perf_counter() - start)


def sampler_rates(model: WorldModel, batch: int, seconds: float) -> dict[str, tuple]:
    config = model.denoiser.config
    context, size = config.context, (config.frame_height, config.frame_width)
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, context, 3, *size, generator=generator) * 2 - 1
    actions = torch.rand(batch, context, config.action_dim, generator=generator) * 2 - 1
    states = torch.rand(batch, context, model.state_dim, generator=generator) * 2 - 1
    results = {}
    for name in VARIANTS:
        with _variant(name, model) as precision:
            # The U-Net's input is built inside the denoiser (context stacked on channels);
            # channels-last weights make the convolutions pick the NHWC kernels.
            def run(precision=precision):
                with torch.no_grad(), autocast(torch.device("cpu"), precision):
                    model.step(frames, actions, states, generator=generator)

            results[name] = _timed(run, seconds)
        print(f"  sampler {name:<14} {results[name][1] * batch:8.1f} transitions/s", flush=True)
    return results


def fog_update_rates(model: WorldModel, repeats: int) -> dict[str, tuple]:
    data = TrainingSet.load("data/03_primary/training_set")
    surrogate = SurrogateDataset(str(ARTIFACTS / "surrogate")).load()
    raw = yaml.safe_load(Path("conf/base/parameters_policy.yml").read_text())["policy"]
    params = parse_policy_params({**raw, "device": "cpu"})
    model.requires_grad_(False)
    results = {}
    for name in VARIANTS:
        with _variant(name, model) as precision:
            fog = {**vars(params.fog), "iterations": repeats + 2, "surrogate_updates": 0}
            fog["snapshots"] = 0
            config = FoGConfig(**fog)
            actor, critic = build_actor_critic(params, surrogate, data)
            env = WorldModelEnv(
                model,
                data,
                config.num_envs,
                seed=0,
                max_steps=params.env.max_steps,
                precision=precision,
            )
            trainer = FoGTrainer(env, surrogate, actor, critic, config, seed=0, device="cpu")
            first, _ = _timed(trainer.train_iteration, 0)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                trainer.train_iteration()
                times.append(time.perf_counter() - start)
            results[name] = (first, 1 / sorted(times)[len(times) // 2])
        print(f"  FoG update {name:<11} {1 / results[name][1]:8.2f} s/update", flush=True)
    return results


def _table(title: str, unit: str, results: dict[str, tuple], scale: float) -> None:
    print(f"\n{title}")
    print(f"{'variant':<15}{unit:>16}{'vs default':>12}{'first call s':>14}")
    base = results["default"][1]
    for name, (first, rate) in results.items():
        print(f"{name:<15}{rate * scale:>16.2f}{rate / base:>11.2f}x{first:>14.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="FoG's default num_envs")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fog-repeats", type=int, default=2)
    parser.add_argument("--skip-fog", action="store_true")
    args = parser.parse_args()
    missing = [p for p in ("world_model", "surrogate") if not (ARTIFACTS / p).exists()]
    if missing:
        raise SystemExit(
            f"No trained {', '.join(missing)} in {ARTIFACTS}: run `dvc repro surrogate`."
        )
    torch.manual_seed(0)
    model = WorldModel.load(ARTIFACTS / "world_model").eval()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: "
        f"{cpu_has_native_bf16()}; {model.denoiser.config.sampling_steps} Euler steps"
    )
    sampler = sampler_rates(model, args.batch, args.seconds)
    _table(f"G's sampler, batch {args.batch}", "transitions/s", sampler, args.batch)
    if not args.skip_fog:
        fog = fog_update_rates(model, args.fog_repeats)
        _table("One FoG update (default N, H)", "updates/min", fog, 60)


if __name__ == "__main__":
    main()
