"""One seed for Python, NumPy and torch."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # torch-free consumers (e.g. a cleaning-only install)
        return
    torch.manual_seed(seed)
