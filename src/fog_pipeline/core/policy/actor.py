"""The actor: a Gaussian policy on the surrogate's latent feature, squashed to the action box.

FoG's actor is tanh-squashed (SAC/SAPO style): u = tanh(mean + std * eps), reparameterised,
with the log-density corrected for the squash. The PPO baseline's actor (a clipped
Gaussian with tanh hidden layers, as stable-baselines3 builds it) is stored in the same
class with ``squash="clip"``, so both deploy through one bundle format. Actions leave in
the robot's box: a = low + (u + 1) / 2 * (high - low); entropies are measured in the
normalised box [-1, 1]^A, so the target entropy does not depend on the robot's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from fog_pipeline.core.config import STRICT_KEYS

_ACTIVATIONS = {"silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


@dataclass
class ActorConfig:
    """Architecture of the actor (``policy.actor``); sizes of input and action come from
    the surrogate and the training set."""

    __pydantic_config__ = STRICT_KEYS

    feature_dim: Annotated[int, Field(ge=1)] = 224
    action_dim: Annotated[int, Field(ge=1)] = 2
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = (256, 256)
    activation: Literal["silu", "tanh", "elu"] = "silu"
    layer_norm: bool = True
    squash: Literal["tanh", "clip"] = "tanh"
    min_log_std: float = -5.0
    max_log_std: float = 1.0
    # State-independent log-std (PPO); FoG's actor predicts it from the state.
    state_dependent_std: bool = True

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if self.min_log_std >= self.max_log_std:
            raise ValueError(f"min_log_std ({self.min_log_std}) must be below max_log_std")


def mlp(
    inputs: int, hidden: tuple[int, ...], outputs: int, activation: str, layer_norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if layer_norm:
            layers.append(nn.LayerNorm(size))
        layers.append(_ACTIVATIONS[activation]())
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


class Actor(nn.Module):
    def __init__(self, config: ActorConfig) -> None:
        super().__init__()
        self.config = config
        heads = 2 * config.action_dim if config.state_dependent_std else config.action_dim
        self.net = mlp(
            config.feature_dim, config.hidden, heads, config.activation, config.layer_norm
        )
        if not config.state_dependent_std:
            self.log_std = nn.Parameter(torch.zeros(config.action_dim))
        self.register_buffer("action_low", -torch.ones(config.action_dim))
        self.register_buffer("action_high", torch.ones(config.action_dim))

    def set_action_bounds(self, low: torch.Tensor, high: torch.Tensor) -> None:
        if torch.any(torch.as_tensor(high) <= torch.as_tensor(low)):
            raise ValueError(f"action bounds must have low < high, got {low} and {high}")
        self.action_low.copy_(torch.as_tensor(low))
        self.action_high.copy_(torch.as_tensor(high))

    def to_robot(self, unit: torch.Tensor) -> torch.Tensor:
        """Map normalised actions in [-1, 1] to the robot's box."""
        return self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)

    def distribution(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-squash Gaussian ``(mean, std)`` of the action given latent features."""
        config = self.config
        out = self.net(feature)
        if config.state_dependent_std:
            mean, log_std = out.chunk(2, dim=-1)
            # A smooth squash of log-std into its range keeps gradients everywhere.
            span = config.max_log_std - config.min_log_std
            log_std = config.min_log_std + 0.5 * span * (torch.tanh(log_std) + 1.0)
        else:
            mean = out
            log_std = self.log_std.clamp(config.min_log_std, config.max_log_std).expand_as(mean)
        return mean, log_std.exp()

    def sample(
        self, feature: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in the robot's box and its log-density (in [-1, 1]^A)."""
        mean, std = self.distribution(feature)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        pre = mean + std * noise
        log_prob = (-0.5 * noise.square() - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        if self.config.squash == "tanh":
            unit = torch.tanh(pre)
            # log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x)), stable for large |x|.
            correction = 2.0 * (math.log(2.0) - pre - nn.functional.softplus(-2.0 * pre))
            log_prob = log_prob - correction.sum(-1)
        else:
            unit = pre.clamp(-1.0, 1.0)
        return self.to_robot(unit), log_prob

    def mode(self, feature: torch.Tensor) -> torch.Tensor:
        """The deterministic action (the squashed mean) in the robot's box."""
        mean, _ = self.distribution(feature)
        unit = torch.tanh(mean) if self.config.squash == "tanh" else mean.clamp(-1.0, 1.0)
        return self.to_robot(unit)
