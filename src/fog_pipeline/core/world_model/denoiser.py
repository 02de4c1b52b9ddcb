"""The global world model: an EDM next-frame denoiser around a diffusers U-Net.

G predicts x_{t+1} from the last L frames x_{t-L+1..t} and actions a_{t-L+1..t}. The
inner network is ``diffusers.UNet2DModel``; EDM preconditioning (Karras et al. 2022)
wraps it:

    D(x; sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, c_noise(sigma))

Context frames are stacked on channels with the scaled noisy next frame; the noise level
enters as the U-Net's timestep and the normalised past actions and proprioceptive states
s_{t-L+1..t} (when the robot logs any), through an MLP, as its
``class_embed_type="identity"`` embedding (summed with the timestep embedding).
Sampling runs a few deterministic Euler steps of the probability-flow ODE on Karras'
sigma schedule; it is differentiable, so BPTT through the sampler is possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from diffusers import UNet2DModel
from pydantic import Field
from torch import nn

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.nn import ActionNormalizedModule


@dataclass
class DenoiserConfig:
    """Architecture and EDM settings of the next-frame denoiser (``world_model.denoiser``)."""

    __pydantic_config__ = STRICT_KEYS

    frame_height: Annotated[int, Field(ge=4)] = 32
    frame_width: Annotated[int, Field(ge=4)] = 32
    channels: Annotated[int, Field(ge=1)] = 3
    context: Annotated[int, Field(ge=1)] = 4  # L: frames and actions of context
    action_dim: Annotated[int, Field(ge=1)] = 2
    state_dim: Annotated[int, Field(ge=0)] = 0  # P: proprioception (0: camera only)
    # (32, 64, 64), one layer per block, no attention: ~1.1 M parameters, ~0.3 s per
    # batch-32 train step at 32x32 on 2 CPU cores (measured; see ECOSYSTEM-NOTES).
    block_out_channels: tuple[Annotated[int, Field(ge=1)], ...] = (32, 64, 64)
    layers_per_block: Annotated[int, Field(ge=1)] = 1
    norm_num_groups: Annotated[int, Field(ge=1)] = 8
    attention: bool = False  # self-attention in the lowest-resolution blocks
    # Width of the U-Net's conditioning embedding; the action MLP outputs this width.
    action_embed_dim: Annotated[int, Field(ge=1)] = 128
    # EDM: data scale, log-normal training sigmas, Karras sampling schedule.
    sigma_data: Annotated[float, Field(gt=0.0)] = 0.5
    p_mean: float = -0.4
    p_std: Annotated[float, Field(gt=0.0)] = 1.2
    sigma_min: Annotated[float, Field(gt=0.0)] = 2e-3
    sigma_max: Annotated[float, Field(gt=0.0)] = 5.0
    rho: Annotated[float, Field(gt=0.0)] = 7.0
    sampling_steps: Annotated[int, Field(ge=1, le=10)] = 3
    # c_noise = ln(sigma)/4 spans only a few units, which the U-Net's sinusoidal timestep
    # embedding barely resolves; it is fed multiplied by this factor.
    c_noise_scale: Annotated[float, Field(gt=0.0)] = 100.0

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(self.block_out_channels)
        if not self.block_out_channels:
            raise ValueError("block_out_channels needs at least one entry")
        if any(width % self.norm_num_groups for width in self.block_out_channels):
            raise ValueError(
                f"every block_out_channels entry {self.block_out_channels} must be divisible "
                f"by norm_num_groups ({self.norm_num_groups})"
            )
        factor = 2 ** (len(self.block_out_channels) - 1)
        if self.frame_height % factor or self.frame_width % factor:
            raise ValueError(
                f"frame size {self.frame_height}x{self.frame_width} must be divisible by "
                f"{factor} (the U-Net halves it {factor.bit_length() - 1} times)"
            )
        if self.sigma_min >= self.sigma_max:
            raise ValueError(f"sigma_min ({self.sigma_min}) must be below sigma_max")


class Denoiser(ActionNormalizedModule):
    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        blocks = len(config.block_out_channels)
        down, up = ["DownBlock2D"] * blocks, ["UpBlock2D"] * blocks
        if config.attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        self.unet = UNet2DModel(
            sample_size=(config.frame_height, config.frame_width),
            in_channels=config.channels * (config.context + 1),
            out_channels=config.channels,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups,
            add_attention=config.attention,
            time_embedding_dim=config.action_embed_dim,
            class_embed_type="identity",
        )
        width = config.action_embed_dim
        self.action_embedding = nn.Sequential(
            nn.Linear(config.context * (config.action_dim + config.state_dim), width),
            nn.SiLU(),
            nn.Linear(width, width),
        )
        self._register_action_stats(config.action_dim)

    def preconditioning(
        self, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """EDM's (c_skip, c_out, c_in, c_noise), each shaped like ``sigma``."""
        sigma_data = self.config.sigma_data
        total = (sigma.square() + sigma_data**2).sqrt()
        c_skip = sigma_data**2 / total.square()
        c_out = sigma * sigma_data / total
        c_in = 1.0 / total
        c_noise = sigma.log() / 4.0
        return c_skip, c_out, c_in, c_noise

    def _condition(
        self,
        context_frames: torch.Tensor,
        context_actions: torch.Tensor,
        context_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context frames stacked on channels, and the action (and state) embedding."""
        config = self.config
        frames_shape = (config.context, config.channels, config.frame_height, config.frame_width)
        if tuple(context_frames.shape[1:]) != frames_shape:
            raise ValueError(
                f"context_frames must be (B, {', '.join(map(str, frames_shape))}), "
                f"got {tuple(context_frames.shape)}"
            )
        if tuple(context_actions.shape[1:]) != (config.context, config.action_dim):
            raise ValueError(
                f"context_actions must be (B, {config.context}, {config.action_dim}), "
                f"got {tuple(context_actions.shape)}"
            )
        inputs = self.normalize_action(context_actions).flatten(1)
        if config.state_dim:
            expected = (context_frames.shape[0], config.context, config.state_dim)
            if context_states is None or tuple(context_states.shape) != expected:
                got = None if context_states is None else tuple(context_states.shape)
                raise ValueError(f"context_states must be {expected}, got {got}")
            inputs = torch.cat([inputs, context_states.flatten(1).to(inputs.dtype)], dim=1)
        return context_frames.flatten(1, 2), self.action_embedding(inputs)

    def _network(
        self, noisy: torch.Tensor, sigma: torch.Tensor, condition: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """The raw U-Net output F, before c_skip/c_out."""
        context, embedding = condition
        _, _, c_in, c_noise = self.preconditioning(sigma)
        inputs = torch.cat([context, c_in[:, None, None, None] * noisy], dim=1)
        # A float (B,) tensor: a Python scalar would be cast to long by diffusers.
        timestep = c_noise * self.config.c_noise_scale
        return self.unet(inputs, timestep, class_labels=embedding).sample

    def _denoise(
        self, noisy: torch.Tensor, sigma: torch.Tensor, condition: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        c_skip, c_out, _, _ = self.preconditioning(sigma)
        raw = self._network(noisy, sigma, condition)
        return c_skip[:, None, None, None] * noisy + c_out[:, None, None, None] * raw

    def forward(
        self,
        noisy_next: torch.Tensor,
        sigma: torch.Tensor | float,
        context_frames: torch.Tensor,
        context_actions: torch.Tensor,
        context_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Denoised estimate D(x; sigma) of the next frame (B, C, H, W).

        ``noisy_next`` (B, C, H, W); ``sigma`` (B,) or a scalar; ``context_frames``
        (B, L, C, H, W) in [-1, 1]; ``context_actions`` (B, L, A) raw (normalised here);
        ``context_states`` (B, L, P), required when ``config.state_dim`` > 0.
        """
        sigma = torch.as_tensor(sigma, dtype=noisy_next.dtype, device=noisy_next.device)
        sigma = sigma.expand(noisy_next.shape[0])
        condition = self._condition(context_frames, context_actions, context_states)
        return self._denoise(noisy_next, sigma, condition)

    def loss(
        self,
        next_frame: torch.Tensor,
        context_frames: torch.Tensor,
        context_actions: torch.Tensor,
        context_states: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """EDM loss: E[lambda(sigma) * |D(x + sigma*n; sigma) - x|^2], ln sigma ~ N(p_mean, p_std).

        Computed in the equivalent form |F - (x - c_skip*x_noisy) / c_out|^2 (lambda * c_out^2
        = 1): unit-scale targets at every sigma, no large weights under bf16. ``noise``: the
        draws of :meth:`loss_noise` for these rows (else drawn here from ``generator``).
        """
        normal, noise = self.loss_noise(next_frame, generator=generator) if noise is None else noise
        sigma = (self.config.p_mean + self.config.p_std * normal).exp().to(next_frame.dtype)
        noisy = next_frame + sigma[:, None, None, None] * noise
        c_skip, c_out, _, _ = self.preconditioning(sigma)
        target = (next_frame - c_skip[:, None, None, None] * noisy) / c_out[:, None, None, None]
        condition = self._condition(context_frames, context_actions, context_states)
        raw = self._network(noisy, sigma, condition)
        return (raw.float() - target).square().mean()

    @staticmethod
    def loss_noise(
        like: torch.Tensor, batch: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss's random draws for ``batch`` rows of frames like ``like`` (B, C, H, W):
        the normals of ln sigma, then the noise. Data-parallel processes each draw a whole
        global batch and keep their rows: together, the draws of a single process."""
        batch = like.shape[0] if batch is None else batch
        normal = torch.randn(batch, generator=generator, device=like.device)
        noise = torch.randn(
            (batch, *like.shape[1:]), generator=generator, device=like.device, dtype=like.dtype
        )
        return normal, noise

    def sigmas(self, steps: int | None = None) -> torch.Tensor:
        """Karras' schedule: ``steps`` sigmas from sigma_max down to sigma_min, then 0."""
        config = self.config
        steps = config.sampling_steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        ramp = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
        low, high = config.sigma_min ** (1 / config.rho), config.sigma_max ** (1 / config.rho)
        sigmas = (high + ramp * (low - high)) ** config.rho
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
        return sigmas.to(device=self.action_mean.device, dtype=torch.float32)

    def sample(
        self,
        context_frames: torch.Tensor,
        context_actions: torch.Tensor,
        context_states: torch.Tensor | None = None,
        steps: int | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Next frames (B, C, H, W) in [-1, 1]: Euler steps of the probability-flow ODE.

        Starts from ``noise * sigma_max``; ``noise`` (B, C, H, W) is drawn from ``generator``
        unless given (fixing it makes the sampler a deterministic function of the inputs).
        Gradients flow: wrap the call in ``torch.no_grad()`` when none are needed.
        """
        config = self.config
        condition = self._condition(context_frames, context_actions, context_states)
        batch = context_frames.shape[0]
        if noise is None:
            shape = (batch, config.channels, config.frame_height, config.frame_width)
            noise = torch.randn(
                shape, generator=generator, device=context_frames.device, dtype=context_frames.dtype
            )
        sigmas = self.sigmas(steps).to(noise.device)
        x = noise * sigmas[0]
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:], strict=True):
            denoised = self._denoise(x, sigma.expand(batch), condition)
            x = x + (sigma_next - sigma) / sigma * (x - denoised)
        return x.clamp(-1.0, 1.0)
