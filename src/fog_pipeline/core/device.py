"""Device and precision selection, in one place.

CPU by default; CUDA when asked for and present; a clear error when asked for and absent.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch


def select_device(name: str = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"``/``"cuda:N"``, or ``"auto"`` (CUDA if present, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={name!r} was asked for but no CUDA GPU is visible to torch "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
            "Use device: cpu, or run the `gpu` environment on a GPU machine."
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Unsupported device {name!r}: use cpu, cuda, cuda:N or auto.")
    return device


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether ``precision`` ("auto", "fp32", "bf16") means bf16 autocast on ``device``."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: without them bf16 is emulated and slower than fp32."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: torch.device, precision: str):
    if use_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
