"""Next proprioceptive state: the part of G that predicts what the robot will report.

s_{t+1} = s_t + MLP(s_{t-L+1..t}, a_{t-L+1..t}): a residual MLP on the last L states and
actions. Proprioception is the robot's own configuration under its own controller; on
Push-T the pusher is a kinematic body driven by a PD controller towards a target the
actions move, so the block never pushes back and past states and commands determine the
next state. A real arm that is stopped by contacts would need the frames as well; the
frames are then an extra input here, not a different design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.nn import ActionNormalizedModule


@dataclass
class StateModelConfig:
    """``world_model.state_model``: sizes come from the training set."""

    __pydantic_config__ = STRICT_KEYS

    state_dim: Annotated[int, Field(ge=1)] = 4
    action_dim: Annotated[int, Field(ge=1)] = 2
    context: Annotated[int, Field(ge=1)] = 4  # L, the denoiser's context
    hidden: Annotated[int, Field(ge=1)] = 256
    layers: Annotated[int, Field(ge=1)] = 2


class StateModel(ActionNormalizedModule):
    def __init__(self, config: StateModelConfig) -> None:
        super().__init__()
        self.config = config
        inputs = config.context * (config.state_dim + config.action_dim)
        modules: list[nn.Module] = []
        for _ in range(config.layers):
            modules += [nn.Linear(inputs, config.hidden), nn.SiLU()]
            inputs = config.hidden
        modules.append(nn.Linear(inputs, config.state_dim))
        self.net = nn.Sequential(*modules)
        self._register_action_stats(config.action_dim)

    def forward(self, context_states: torch.Tensor, context_actions: torch.Tensor) -> torch.Tensor:
        """s_{t+1} (B, P) from ``context_states`` (B, L, P) and raw ``context_actions``
        (B, L, A), the last of which is a_t."""
        config = self.config
        batch = context_states.shape[0]
        if tuple(context_states.shape[1:]) != (config.context, config.state_dim):
            raise ValueError(
                f"context_states must be (B, {config.context}, {config.state_dim}), "
                f"got {tuple(context_states.shape)}"
            )
        if tuple(context_actions.shape) != (batch, config.context, config.action_dim):
            raise ValueError(
                f"context_actions must be ({batch}, {config.context}, {config.action_dim}), "
                f"got {tuple(context_actions.shape)}"
            )
        actions = self.normalize_action(context_actions).to(context_states.dtype)
        inputs = torch.cat([context_states.flatten(1), actions.flatten(1)], dim=1)
        return context_states[:, -1] + self.net(inputs)

    def loss(
        self, context_states: torch.Tensor, context_actions: torch.Tensor, next_state: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared error of the predicted next state (summed over P)."""
        predicted = self(context_states, context_actions).float()
        return (predicted - next_state.float()).square().sum(-1).mean()
