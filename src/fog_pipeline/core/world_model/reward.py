"""Reward/success model: the forward reward r^fwd of an imagined transition.

The logged reward describes the frame *after* the action, so the model sees the R most
recent frames ending at the next frame (default x_t, x_{t+1}) and the action a_t. A
small CNN; the spatial map is pooled to a fixed grid and flattened (not averaged away),
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
from fog_pipeline.core.nn import ActionNormalizedModule


@dataclass
class RewardModelConfig:
    """Architecture and loss weights of the reward model (``world_model.reward``)."""

    __pydantic_config__ = STRICT_KEYS

    frame_height: Annotated[int, Field(ge=4)] = 32
    frame_width: Annotated[int, Field(ge=4)] = 32
    channels: Annotated[int, Field(ge=1)] = 3
    frames: Annotated[int, Field(ge=1)] = 2  # R: frames ending at the next frame
    action_dim: Annotated[int, Field(ge=1)] = 2
    # One stride-2 stage per entry, after a full-resolution stem of the first width.
    conv_channels: tuple[Annotated[int, Field(ge=1)], ...] = (32, 64, 64)
    norm_num_groups: Annotated[int, Field(ge=1)] = 8
    pool_size: Annotated[int, Field(ge=1)] = 4  # the feature map is pooled to this grid
    hidden: Annotated[int, Field(ge=1)] = 128
    # Success is (almost) never observed in our data: with no positives its BCE only
    # pushes the success logit down and fades, so it cannot swamp the reward term.
    success_weight: Annotated[float, Field(ge=0.0)] = 1.0

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


class RewardModel(ActionNormalizedModule):
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
        features = widths[-1] * config.pool_size**2 + config.action_dim
        self.head = nn.Sequential(
            nn.Linear(features, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 2)
        )
        self._register_action_stats(config.action_dim)

    def logits(
        self, frames: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward_logit, success_logit), each (B,)."""
        config = self.config
        frames_shape = (config.frames, config.channels, config.frame_height, config.frame_width)
        if tuple(frames.shape[1:]) != frames_shape:
            raise ValueError(
                f"frames must be (B, {', '.join(map(str, frames_shape))}), "
                f"got {tuple(frames.shape)}"
            )
        if tuple(action.shape[1:]) != (config.action_dim,):
            raise ValueError(f"action must be (B, {config.action_dim}), got {tuple(action.shape)}")
        features = self.encoder(frames.flatten(1, 2))
        action = self.normalize_action(action)
        out = self.head(torch.cat([features, action.to(features.dtype)], dim=1))
        return out[:, 0], out[:, 1]

    def forward(
        self, frames: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward in [0, 1], success_logit), each (B,).

        ``frames`` (B, R, C, H, W) in [-1, 1], ending at the next frame; ``action`` (B, A) raw.
        """
        reward_logit, success_logit = self.logits(frames, action)
        return torch.sigmoid(reward_logit), success_logit

    def loss(
        self,
        frames: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        success: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts (detached), plus the reward MSE for monitoring.

        The reward label is a fraction in [0, 1]: binary cross-entropy with that soft target
        keeps a useful gradient where a sigmoid + MSE would saturate.
        """
        reward_logit, success_logit = self.logits(frames, action)
        reward_logit, success_logit = reward_logit.float(), success_logit.float()
        reward, success = reward.float(), success.float()
        reward_term = F.binary_cross_entropy_with_logits(reward_logit, reward)
        success_term = F.binary_cross_entropy_with_logits(success_logit, success)
        total = reward_term + self.config.success_weight * success_term
        with torch.no_grad():
            mse = (torch.sigmoid(reward_logit) - reward).square().mean()
        parts = {
            "reward": reward_term.detach(),
            "success": success_term.detach(),
            "reward_mse": mse,
        }
        return total, parts
