"""The critic: an ensemble of value networks V(s) on the surrogate's latent feature.

Targets bootstrap from the minimum over a slowly-moving (Polyak) copy of the ensemble,
which curbs over-estimation; the actor reads the mean of the live ensemble.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.policy.actor import mlp


@dataclass
class CriticConfig:
    """Architecture of the critic ensemble (``policy.critic``)."""

    __pydantic_config__ = STRICT_KEYS

    feature_dim: Annotated[int, Field(ge=1)] = 224
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = (256, 256)
    activation: Literal["silu", "tanh", "elu"] = "silu"
    layer_norm: bool = True
    ensemble: Annotated[int, Field(ge=1)] = 2

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)


class CriticEnsemble(nn.Module):
    def __init__(self, config: CriticConfig) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(
            mlp(config.feature_dim, config.hidden, 1, config.activation, config.layer_norm)
            for _ in range(config.ensemble)
        )

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """Values (E, ...) of every member for features (..., F)."""
        return torch.stack([member(feature).squeeze(-1) for member in self.members])

    def value(self, feature: torch.Tensor) -> torch.Tensor:
        """The actor's value: the ensemble mean."""
        return self(feature).mean(0)


class TargetCritic:
    """A Polyak-averaged copy of a critic ensemble; its minimum over members is the target."""

    def __init__(self, critic: CriticEnsemble, tau: float) -> None:
        self.tau = tau
        self.network = copy.deepcopy(critic).requires_grad_(False)

    @torch.no_grad()
    def value(self, feature: torch.Tensor) -> torch.Tensor:
        return self.network(feature).min(0).values

    @torch.no_grad()
    def update(self, critic: CriticEnsemble) -> None:
        for target, live in zip(self.network.parameters(), critic.parameters(), strict=True):
            target.lerp_(live, self.tau)
