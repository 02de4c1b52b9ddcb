"""Reward model: the labels of an imagined transition, read from what is observed.

The logged labels describe the scene *after* the action, so the model sees the R most
recent frames ending at the next frame (default x_t, x_{t+1}) and the proprioceptive
state observed with it. It never sees the action: coverage, task progress and success
are functions of the scene, and an action input is a shortcut a policy optimised in the
model can exploit (PPO's imagined reward rose from 0.18 to 0.91 through it with no
change on the robot). Three heads, each trained with binary cross-entropy against its
label in [0, 1]:

- ``reward``: the robot's reward label (on Push-T, coverage / 0.95 clipped to 1);
- ``progress``: the dense task-progress label, the reward the policy optimises;
- ``success``: the task-success label (a logit).

A small CNN; the spatial map is pooled to a fixed grid and flattened (not averaged away),
because coverage depends on where the block is, not only on what it looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from fog_pipeline.core.config import STRICT_KEYS


@dataclass
class RewardModelConfig:
    """Architecture and loss weights of the reward model (``world_model.reward``)."""

    __pydantic_config__ = STRICT_KEYS

    frame_height: Annotated[int, Field(ge=4)] = 32
    frame_width: Annotated[int, Field(ge=4)] = 32
    channels: Annotated[int, Field(ge=1)] = 3
    frames: Annotated[int, Field(ge=1)] = 2  # R: frames ending at the next frame
    state_dim: Annotated[int, Field(ge=0)] = 0  # P: proprioception (0: camera only)
    # One stride-2 stage per entry, after a full-resolution stem of the first width.
    conv_channels: tuple[Annotated[int, Field(ge=1)], ...] = (32, 64, 64)
    norm_num_groups: Annotated[int, Field(ge=1)] = 8
    pool_size: Annotated[int, Field(ge=1)] = 4  # the feature map is pooled to this grid
    hidden: Annotated[int, Field(ge=1)] = 128
    success_weight: Annotated[float, Field(ge=0.0)] = 1.0
    progress_weight: Annotated[float, Field(ge=0.0)] = 1.0

    def __post_init__(self) -> None:
        self.conv_channels = tuple(self.conv_channels)
        if not self.conv_channels:
            raise ValueError("conv_channels needs at least one entry")
        if any(width % self.norm_num_groups for width in self.conv_channels):
            raise ValueError(
                f"every conv_channels entry {self.conv_channels} must be divisible by "
                f"norm_num_groups ({self.norm_num_groups})"
            )


def _conv_block(inputs: int, outputs: int, stride: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel_size=3, stride=stride, padding=1),
        nn.GroupNorm(groups, outputs),
        nn.SiLU(),
    )


@dataclass
class RewardPrediction:
    """The reward model's outputs for a batch, each (B,)."""

    reward: torch.Tensor  # robot reward label in [0, 1]
    progress: torch.Tensor  # dense task progress in [0, 1]
    success_logit: torch.Tensor


class RewardModel(nn.Module):
    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        self.config = config
        widths, groups = config.conv_channels, config.norm_num_groups
        layers = [_conv_block(config.channels * config.frames, widths[0], 1, groups)]
        layers += [
            _conv_block(inputs, outputs, 2, groups)
            for inputs, outputs in zip((widths[0], *widths[:-1]), widths, strict=True)
        ]
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(config.pool_size), nn.Flatten())
        features = widths[-1] * config.pool_size**2 + config.state_dim
        self.head = nn.Sequential(
            nn.Linear(features, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 3)
        )

    def logits(self, frames: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3) logits of (reward, progress, success)."""
        config = self.config
        frames_shape = (config.frames, config.channels, config.frame_height, config.frame_width)
        if tuple(frames.shape[1:]) != frames_shape:
            raise ValueError(
                f"frames must be (B, {', '.join(map(str, frames_shape))}), "
                f"got {tuple(frames.shape)}"
            )
        features = self.encoder(frames.flatten(1, 2))
        if config.state_dim:
            if state is None or tuple(state.shape) != (frames.shape[0], config.state_dim):
                got = None if state is None else tuple(state.shape)
                raise ValueError(f"state must be (B, {config.state_dim}), got {got}")
            features = torch.cat([features, state.to(features.dtype)], dim=1)
        return self.head(features)

    def forward(self, frames: torch.Tensor, state: torch.Tensor | None = None) -> RewardPrediction:
        """The labels of the scene in ``frames`` (B, R, C, H, W) in [-1, 1], ending at the
        next frame, and ``state`` (B, P), the proprioception observed with it."""
        logits = self.logits(frames, state)
        return RewardPrediction(
            reward=torch.sigmoid(logits[:, 0]),
            progress=torch.sigmoid(logits[:, 1]),
            success_logit=logits[:, 2],
        )

    def loss(
        self,
        frames: torch.Tensor,
        state: torch.Tensor | None,
        reward: torch.Tensor,
        progress: torch.Tensor,
        success: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts (detached), plus the reward and progress MSE.

        The labels are fractions in [0, 1]: binary cross-entropy with those soft targets
        keeps a useful gradient where a sigmoid + MSE would saturate.
        """
        logits = self.logits(frames, state).float()
        targets = torch.stack([reward, progress, success.float()], dim=1).float()
        terms = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(0)
        config = self.config
        total = terms[0] + config.progress_weight * terms[1] + config.success_weight * terms[2]
        with torch.no_grad():
            errors = (torch.sigmoid(logits[:, :2]) - targets[:, :2]).square().mean(0)
        parts = {
            "reward": terms[0].detach(),
            "progress": terms[1].detach(),
            "success": terms[2].detach(),
            "reward_mse": errors[0],
            "progress_mse": errors[1],
        }
        return total, parts
