"""Pieces shared by the project's models."""

from __future__ import annotations

import torch
from torch import nn

# A constant action dimension (std 0 in the data) must not divide by zero.
_MIN_ACTION_STD = 1e-3


class ActionNormalizedModule(nn.Module):
    """A module that normalises raw actions with statistics stored as buffers, so that a
    checkpoint carries them and needs no dataset at load time."""

    def _register_action_stats(self, action_dim: int) -> None:
        self.register_buffer("action_mean", torch.zeros(action_dim))
        self.register_buffer("action_std", torch.ones(action_dim))

    def set_action_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training actions' per-dimension statistics (saved with the weights)."""
        self.action_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.action_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(_MIN_ACTION_STD))

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    def param_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
