"""Exponential moving average of a model's weights; rollouts use the averaged copy."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` (``ema.module``) that trails its weights.

    Each ``update`` moves the copy's parameters towards the model's by ``1 - d`` with
    ``d = min(decay, (1 + n) / (10 + n))`` after n updates: early on the average follows
    the model closely instead of remembering its random initialisation for thousands of
    steps. Buffers (normalisation statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        for shadow, param in zip(self.module.parameters(), model.parameters(), strict=True):
            shadow.lerp_(param.detach().to(shadow.dtype), weight)
        for shadow, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            shadow.copy_(buffer)
        self.num_updates += 1

    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights into ``module`` (same architecture)."""
        module.load_state_dict(self.module.state_dict(), strict=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat tensors (safetensors-ready): the averaged weights under ``module.``."""
        state = {f"module.{name}": t for name, t in self.module.state_dict().items()}
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        prefix = "module."
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        self.module.load_state_dict(weights, strict=True)
        self.num_updates = int(state["num_updates"])
