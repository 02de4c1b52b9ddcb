"""Imagination throughput of the global world model beside the machine's dense throughput.

    python benchmarks/imagination_throughput.py [--env base|gpu] [--device cpu|cuda]
        [--batch-sizes 1 8 32 128] [--steps 1 2 3 4] [--seconds 2]

For each batch size and number of Euler steps: world-model transitions per second (one
transition = sampling one next frame + scoring it with the reward model, under no_grad,
with the architecture of the chosen Kedro environment and random weights: speed does
not depend on the weights). It prints the model's FLOPs per transition (counted by
torch's FlopCounterMode), the GFLOP/s this achieves, and the same machine's measured
dense matmul and 3x3-conv GFLOP/s: the gap to the hardware limit.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.device import autocast, select_device, use_bf16
from fog_pipeline.core.world_model.denoiser import Denoiser, DenoiserConfig
from fog_pipeline.core.world_model.reward import RewardModel, RewardModelConfig
from fog_pipeline.diagnostics import load_project

FRAME_SIZE = {"base": 32, "smoke": 16, "gpu": 64}


def _params(env: str) -> dict:
    """The ``world_model`` parameters of a Kedro environment, merged by Kedro itself."""
    return load_project(None if env == "base" else env)[1]["world_model"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(fn, device: torch.device, seconds: float) -> float:
    """Calls per second of ``fn`` over at least ``seconds`` (after one warm-up call)."""
    fn()
    _sync(device)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    _sync(device)
    return calls / (time.perf_counter() - start)


def machine_gflops(device: torch.device, seconds: float, bf16: bool) -> dict[str, float]:
    dtype = torch.bfloat16 if bf16 else torch.float32
    n = 2048 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device, dtype)
    x = torch.randn(32, 64, 32, 32, device=device, dtype=dtype)
    with torch.no_grad():
        matmul = _rate(lambda: a @ b, device, seconds) * 2 * n**3
        conv_flops = 2 * 32 * 64 * 64 * 9 * 32 * 32
        convolution = _rate(lambda: conv(x), device, seconds) * conv_flops
    return {"matmul": matmul / 1e9, "conv3x3": convolution / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base", choices=sorted(FRAME_SIZE))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()

    device = select_device(args.device)
    params = _params(args.env)
    size = FRAME_SIZE[args.env]
    # Push-T's proprioception: pusher position and controller target (4 numbers).
    frame = {"frame_height": size, "frame_width": size, "state_dim": 4}
    denoiser = Denoiser(
        parse_config(DenoiserConfig, {**params["denoiser"], **frame, "action_dim": 2}, "d")
    )
    reward = RewardModel(
        parse_config(RewardModelConfig, {**params.get("reward_model", {}), **frame}, "r")
    )
    denoiser.to(device).eval()
    reward.to(device).eval()
    context = denoiser.config.context
    bf16 = use_bf16(device, args.precision)

    def transition(batch: int, steps: int):
        frames = torch.rand(batch, context, 3, size, size, device=device) * 2 - 1
        actions = torch.rand(batch, context, 2, device=device) * 2 - 1
        states = torch.rand(batch, context, 4, device=device) * 2 - 1

        def run():
            with torch.no_grad(), autocast(device, args.precision):
                frame = denoiser.sample(frames, actions, states, steps=steps)
                both = torch.cat([frames[:, -reward.config.frames + 1 :], frame[:, None]], 1)
                reward(both, states[:, -1])

        return run

    with FlopCounterMode(display=False) as counter:
        transition(1, 1)()
    flops_one_step = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        transition(1, 2)()
    flops_per_step = counter.get_total_flops() - flops_one_step  # one more denoiser call

    peak = machine_gflops(device, args.seconds, bf16)
    print(
        f"env={args.env} frames {size}x{size} context {context} device={device} "
        f"precision={'bf16' if bf16 else 'fp32'} threads={torch.get_num_threads()}"
    )
    print(
        f"denoiser {sum(p.numel() for p in denoiser.parameters()) / 1e6:.2f} M params, "
        f"{flops_per_step / 1e6:.1f} MFLOP per Euler step; reward model "
        f"{(flops_one_step - flops_per_step) / 1e6:.1f} MFLOP"
    )
    print(
        f"machine: dense matmul {peak['matmul']:.0f} GFLOP/s, "
        f"conv3x3 64ch {peak['conv3x3']:.0f} GFLOP/s"
    )
    print(f"{'batch':>6}{'steps':>6}{'trans/s':>10}{'GFLOP/s':>9}{'vs matmul':>11}{'vs conv':>9}")
    for steps in args.steps:
        flops = flops_one_step + (steps - 1) * flops_per_step
        for batch in args.batch_sizes:
            rate = _rate(transition(batch, steps), device, args.seconds) * batch
            achieved = rate * flops / 1e9
            print(
                f"{batch:>6}{steps:>6}{rate:>10.1f}{achieved:>9.1f}"
                f"{achieved / peak['matmul']:>10.1%}{achieved / peak['conv3x3']:>9.1%}"
            )


if __name__ == "__main__":
    main()
