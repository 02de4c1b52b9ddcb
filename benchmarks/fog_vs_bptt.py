"""Cost of one policy update: FoG (surrogate gradients) vs full BPTT through the global model.

    python benchmarks/fog_vs_bptt.py [--device cpu|cuda] [--shapes 8x8 16x8 16x16]
        [--repeats 2]

Both modes run the same FoG loop (``core.policy.fog``) on the trained artifacts of the
default configuration (data/06_models/world_model, data/06_models/surrogate and the
training set: run `dvc repro surrogate` first) at equal N (environments), H (horizon) and
world model. Only the gradient path differs: FoG evaluates the surrogate's Jacobians at
G's trajectory; ``global`` backpropagates through every Euler step of G's U-Net and its
reward model. Per update it prints the wall time and the peak memory above the
pre-update level, and the BPTT / FoG ratios.

Memory: on CUDA, torch's peak allocated bytes above the pre-update level; on CPU, the
bytes autograd keeps for the backward pass (see ``PeakMemory``). Each measurement is
the median of ``--repeats`` updates after a warm-up update.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

from fog_pipeline.core.device import select_device
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.fog import FoGConfig, FoGTrainer
from fog_pipeline.core.policy.training import build_actor_critic, parse_policy_params
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.datasets.surrogate import SurrogateDataset


class PeakMemory:
    """Memory one update needs beyond what was allocated before it.

    On CUDA: torch's peak allocated bytes above the level at ``__enter__``. On CPU the
    allocator reuses freed heap, so resident-set numbers hide the difference; there it
    counts the bytes autograd saves for the backward pass (each storage once), which is
    what grows with N x H and what BPTT pays for every U-Net evaluation.
    """

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak = device, 0
        self._seen: set[tuple[int, int]] = set()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in self._seen:
            self._seen.add(key)
            self.peak += storage.nbytes()
        return tensor

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            self._hooks.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self._hooks.__exit__(*exc_info)


def measure(
    mode: str,
    num_envs: int,
    horizon: int,
    repeats: int,
    artifacts: tuple[WorldModel, RSSM, TrainingSet],
    device: torch.device,
) -> tuple[float, float]:
    """Median wall seconds and peak bytes of one update in ``mode``."""
    world_model, surrogate, data = artifacts
    params = parse_policy_params(
        yaml.safe_load(Path("conf/base/parameters_policy.yml").read_text())["policy"]
    )
    config = FoGConfig(
        iterations=repeats + 1,
        num_envs=num_envs,
        horizon=horizon,
        gradient_source=mode,
        surrogate_updates=0,  # the online surrogate step is the same in both modes
        snapshots=0,
    )
    actor, critic = build_actor_critic(params, surrogate, data)
    env = WorldModelEnv(world_model, data, num_envs, seed=0, device=device)
    trainer = FoGTrainer(
        env, surrogate, actor.to(device), critic.to(device), config, seed=0, device=device
    )
    trainer.train_iteration()  # warm-up: allocator and first-call costs
    times, peaks = [], []
    for _ in range(repeats):
        with PeakMemory(device) as memory:
            start = time.perf_counter()
            trainer.train_iteration()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peaks.append(memory.peak)
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", nargs="+", default=["8x8", "16x8", "16x16"], help="NxH")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = select_device(args.device)
    torch.manual_seed(0)
    world_model = WorldModel.load("data/06_models/world_model").to(device)
    world_model.requires_grad_(False)
    surrogate = SurrogateDataset("data/06_models/surrogate").load().to(device)
    data = TrainingSet.load("data/03_primary/training_set")
    artifacts = (world_model, surrogate, data)
    print(
        f"device {device}, {torch.get_num_threads()} threads, "
        f"{world_model.denoiser.config.sampling_steps} Euler "
        "steps per transition; one policy update (rollout + actor, critic and alpha steps)"
    )
    header = (
        f"{'N':>4} {'H':>4} | {'FoG s':>7} {'BPTT s':>8} {'time x':>7} | "
        f"{'FoG MiB':>8} {'BPTT MiB':>9} {'memory x':>9}"
    )
    print(header)
    print("-" * len(header))
    for shape in args.shapes:
        num_envs, horizon = (int(v) for v in shape.lower().split("x"))
        fog = measure("surrogate", num_envs, horizon, args.repeats, artifacts, device)
        bptt = measure("global", num_envs, horizon, args.repeats, artifacts, device)
        mib = 1024**2
        print(
            f"{num_envs:>4} {horizon:>4} | {fog[0]:>7.2f} {bptt[0]:>8.2f} "
            f"{bptt[0] / fog[0]:>6.1f}x | {fog[1] / mib:>8.1f} {bptt[1] / mib:>9.1f} "
            f"{bptt[1] / max(fog[1], 1):>8.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
