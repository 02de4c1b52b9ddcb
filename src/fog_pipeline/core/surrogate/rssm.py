"""The local surrogate S: a small latent recurrent state-space model (RSSM).

Time indexing follows the recorded data: ``frames[t]`` is seen at step t, ``actions[t]``
is taken after it, ``rewards[t]`` is the label logged after ``actions[t]`` (it describes
``frames[t+1]``). The latent state is s_t = (h_t, z_t):

    h_{t+1} = f(h_t, z_t, a_t)          layer-normalised GRU on an MLP of [z_t, a_t]
    q(z_t | h_t, e_t),  e_t = [enc(x_t), p_t]  posterior (encoder on the frame, and the
                                        robot's proprioception p_t where it logs any)
    p(z_t | h_t)                        prior

with h_0 = 0. The stochastic latent z is a diagonal Gaussian (mean, softplus std +
``min_std``). Gaussian rather than categorical because FoG differentiates the surrogate:
the prior mean is a smooth function of (s_t, a_t) whose Jacobian is exact, while a
categorical latent only offers straight-through gradients, a biased surrogate of a
surrogate. Training uses reparameterised posterior samples; everything FoG calls is
deterministic and uses means:

* ``predict(s_t, a_t)`` = (h_{t+1}, prior mean of z_{t+1}): the differentiable one-step
  model whose Jacobian FoG uses;
* ``encode_next(s_t, a_t, x_{t+1})`` = (h_{t+1}, posterior mean of z_{t+1}): the latent
  of the global model's frame, whose value FoG uses. Both share h_{t+1} exactly, so the
  straight-through swap only changes z.

Heads: the reward head reads the *predicted next state*, R_S(s_t, a_t) =
sigmoid(head(feature(predict(s_t, a_t)))), because the label describes x_{t+1}: its
gradient with respect to the action goes through the learned dynamics, and training
evaluates exactly the function FoG differentiates. It is trained with binary
cross-entropy against the soft label, like the global reward model. The continuation
head (1 - terminal, on the same predicted next state) sees a detached feature in the
loss and starts near "always continues": our data has almost no terminals, so it can
neither shape the latent nor add much loss. A conv decoder reconstructs x_t from
[h_t, z_t] (summed squared error) so that the latent keeps the frame's information, and
a linear head reconstructs p_t (summed squared error, weighted ``proprio_weight``), so
that it keeps the robot's own configuration too.

KL: balanced as in DreamerV2 (``kl_balance`` of the gradient trains the prior towards
the stop-gradient posterior, the rest regularises the posterior towards the
stop-gradient prior) with free nats, see :func:`kl_loss`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.nn import ActionNormalizedModule

# The continuation head starts at P(continue) = sigmoid(4.6) ~ 0.99.
_CONT_BIAS_INIT = 4.6


@dataclass
class RSSMConfig:
    """Architecture and loss weights of the surrogate (``surrogate.model``).

    Defaults: ~1.0 M parameters at 32x32 (deter 192, stoch 32, 4-stage conv
    encoder/decoder of depth 16 -> 128 channels at 2x2).
    """

    __pydantic_config__ = STRICT_KEYS

    frame_height: Annotated[int, Field(ge=4)] = 32
    frame_width: Annotated[int, Field(ge=4)] = 32
    channels: Annotated[int, Field(ge=1)] = 3
    action_dim: Annotated[int, Field(ge=1)] = 2
    proprio_dim: Annotated[int, Field(ge=0)] = 0  # P: proprioception (0: camera only)
    deter: Annotated[int, Field(ge=1)] = 192  # size of h
    stoch: Annotated[int, Field(ge=1)] = 32  # size of z
    hidden: Annotated[int, Field(ge=1)] = 192  # width of every MLP
    cnn_depth: Annotated[int, Field(ge=1)] = 16  # channels of the first conv stage
    # Stride-2 stages of the encoder (and decoder); channels double at each.
    cnn_layers: Annotated[int, Field(ge=1, le=6)] = 4
    min_std: Annotated[float, Field(gt=0.0)] = 0.1
    free_nats: Annotated[float, Field(ge=0.0)] = 1.0
    # True: clamp each sample's KL (summed over z) at free_nats (DreamerV3). False: clamp
    # the batch mean (DreamerV2's default), which lets single samples exceed the budget.
    free_nats_per_sample: bool = True
    kl_balance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8  # share that trains the prior
    kl_scale: Annotated[float, Field(ge=0.0)] = 1.0
    recon_weight: Annotated[float, Field(ge=0.0)] = 1.0
    # Extra reconstruction weight on pixels that changed since the previous frame:
    # w = 1 + recon_change_weight * |x_t - x_{t-1}| (mean over channels, in [0, 2]). The
    # pusher covers a few pixels of a 32x32 frame; unweighted, the latent barely encodes
    # where it is, and a policy acting on the latent cannot aim it at the block.
    recon_change_weight: Annotated[float, Field(ge=0.0)] = 0.0
    # Proprioception has P numbers against the frame's thousands of pixels: its summed
    # squared error (in normalised units) is scaled up to matter in the loss.
    proprio_weight: Annotated[float, Field(ge=0.0)] = 100.0
    reward_weight: Annotated[float, Field(ge=0.0)] = 1.0
    cont_weight: Annotated[float, Field(ge=0.0)] = 1.0
    # Train the recurrence on reparameterised posterior samples (else on posterior means).
    sample_posterior: bool = True
    # Let the reward loss shape the dynamics (else the reward head sees a detached state).
    reward_grad_to_dynamics: bool = True

    def __post_init__(self) -> None:
        factor = 2**self.cnn_layers
        if self.frame_height % factor or self.frame_width % factor:
            raise ValueError(
                f"frame size {self.frame_height}x{self.frame_width} must be divisible by "
                f"{factor} (the encoder halves it cnn_layers={self.cnn_layers} times)"
            )


@dataclass(frozen=True)
class LatentState:
    """s = (h, z), each with any leading shape ((B,) or (B, T)).

    ``mean``/``std`` are the distribution z came from, where there was one (None after
    arithmetic such as :func:`straight_through`).
    """

    h: torch.Tensor  # (..., deter)
    z: torch.Tensor  # (..., stoch)
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    def feature(self) -> torch.Tensor:
        """[h, z], (..., deter + stoch): what the heads and the policy read."""
        return torch.cat([self.h, self.z], dim=-1)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> LatentState:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return LatentState(**{k: None if v is None else fn(v) for k, v in fields.items()})

    def detach(self) -> LatentState:
        return self.map(torch.Tensor.detach)

    def to(self, device: torch.device | str) -> LatentState:
        return self.map(lambda x: x.to(device))

    def at(self, t: int) -> LatentState:
        """Step ``t`` of a (B, T, ...) sequence of states."""
        return self.map(lambda x: x[:, t])

    @staticmethod
    def stack(states: Sequence[LatentState], dim: int = 1) -> LatentState:
        fields = {}
        for name in ("h", "z", "mean", "std"):
            values = [getattr(s, name) for s in states]
            fields[name] = None if any(v is None for v in values) else torch.stack(values, dim)
        return LatentState(**fields)


def straight_through(value: LatentState, gradient: LatentState) -> LatentState:
    """FoG's swap: the value of ``value``, the gradient of ``gradient``.

    ``gradient + stop_grad(value - gradient)`` on h and z; with ``value`` from
    :meth:`RSSM.encode_next` on the global model's frame and ``gradient`` from
    :meth:`RSSM.predict`, the next state is exactly the global model's and its Jacobian
    the surrogate's.
    """
    return LatentState(
        h=gradient.h + (value.h - gradient.h).detach(),
        z=gradient.z + (value.z - gradient.z).detach(),
    )


def gaussian_kl(
    mean1: torch.Tensor, std1: torch.Tensor, mean2: torch.Tensor, std2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, std1) || N(mean2, std2)) of diagonal Gaussians, summed over the last dim."""
    var_ratio = (std1 / std2).square()
    term = (mean1 - mean2).square() / std2.square()
    return 0.5 * (var_ratio + term - 1.0 - var_ratio.log()).sum(-1)


def kl_loss(
    post_mean: torch.Tensor,
    post_std: torch.Tensor,
    prior_mean: torch.Tensor,
    prior_std: torch.Tensor,
    free_nats: float,
    balance: float,
    per_sample: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced KL with free nats: ``(loss, mean KL)``; shapes (..., stoch).

    ``loss = balance * max(free, KL(sg(q) || p)) + (1 - balance) * max(free, KL(q || sg(p)))``.
    Both terms have the value of KL(q || p); the stop-gradients only split the gradient:
    ``balance`` of it moves the prior, the rest the posterior. The value is therefore
    ``max(free_nats, KL)``: its floor is ``free_nats`` and, below it, the KL term gives no
    gradient at all (the latent may carry ``free_nats`` nats of information for free).

    ``per_sample=True`` clamps every sample's KL (summed over z) before averaging: a
    sample under the budget contributes nothing while the others are still pulled
    together. ``per_sample=False`` clamps the batch mean: no gradient as long as the
    *average* is under the budget, however far single samples are above it.
    """
    post_stop, post_std_stop = post_mean.detach(), post_std.detach()
    dyn = gaussian_kl(post_stop, post_std_stop, prior_mean, prior_std)
    rep = gaussian_kl(post_mean, post_std, prior_mean.detach(), prior_std.detach())
    if per_sample:
        dyn, rep = dyn.clamp_min(free_nats).mean(), rep.clamp_min(free_nats).mean()
    else:
        dyn, rep = dyn.mean().clamp_min(free_nats), rep.mean().clamp_min(free_nats)
    loss = balance * dyn + (1.0 - balance) * rep
    with torch.no_grad():
        value = gaussian_kl(post_mean, post_std, prior_mean, prior_std).mean()
    return loss, value


def _mlp(inputs: int, hidden: int, outputs: int, layers: int) -> nn.Sequential:
    """``layers`` x (Linear, LayerNorm, SiLU), then a linear output."""
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Linear(inputs, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        inputs = hidden
    modules.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*modules)


class _ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (N, C, H, W) map, at each pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _NormGRUCell(nn.Module):
    """A GRU cell with one fused, layer-normalised projection of [input, h].

    The update gate is biased towards keeping h (``sigmoid(u - 1)``), which keeps long
    recurrences stable early in training. All operations support forward-mode AD.
    """

    def __init__(self, inputs: int, size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs + size, 3 * size, bias=False)
        self.norm = nn.LayerNorm(3 * size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, candidate, update = self.norm(self.linear(torch.cat([x, h], -1))).chunk(3, -1)
        candidate = torch.tanh(torch.sigmoid(reset) * candidate)
        update = torch.sigmoid(update - 1.0)
        return update * candidate + (1.0 - update) * h


class _Encoder(nn.Module):
    def __init__(self, config: RSSMConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        inputs = config.channels
        for i in range(config.cnn_layers):
            outputs = config.cnn_depth * 2**i
            layers += [nn.Conv2d(inputs, outputs, 4, 2, 1), _ChannelNorm(outputs), nn.SiLU()]
            inputs = outputs
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.grid = (
            config.frame_height >> config.cnn_layers,
            config.frame_width >> config.cnn_layers,
        )
        self.channels = inputs
        self.out_dim = inputs * self.grid[0] * self.grid[1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) -> (..., out_dim)."""
        lead = frames.shape[:-3]
        return self.net(frames.reshape(-1, *frames.shape[-3:])).reshape(*lead, self.out_dim)


class _Decoder(nn.Module):
    def __init__(self, config: RSSMConfig, features: int, encoder: _Encoder) -> None:
        super().__init__()
        self.grid, self.channels = encoder.grid, encoder.channels
        self.linear = nn.Linear(features, encoder.out_dim)
        layers: list[nn.Module] = []
        inputs = encoder.channels
        for i in reversed(range(config.cnn_layers)):
            last = i == 0
            outputs = config.channels if last else config.cnn_depth * 2 ** (i - 1)
            layers.append(nn.ConvTranspose2d(inputs, outputs, 4, 2, 1))
            if not last:
                layers += [_ChannelNorm(outputs), nn.SiLU()]
            inputs = outputs
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., features) -> (..., C, H, W)."""
        lead = features.shape[:-1]
        x = self.linear(features.reshape(-1, features.shape[-1]))
        x = self.net(x.reshape(-1, self.channels, *self.grid))
        return x.reshape(*lead, *x.shape[1:])


class RSSM(ActionNormalizedModule):
    """The surrogate S. Frames are float (..., C, H, W) in [-1, 1]; actions raw (normalised
    inside with the buffers set by :meth:`set_action_stats`)."""

    def __init__(self, config: RSSMConfig) -> None:
        super().__init__()
        self.config = config
        features = config.deter + config.stoch
        self.encoder = _Encoder(config)
        self.decoder = _Decoder(config, features, self.encoder)
        self.transition_in = nn.Sequential(
            nn.Linear(config.stoch + config.action_dim, config.hidden),
            nn.LayerNorm(config.hidden),
            nn.SiLU(),
        )
        self.cell = _NormGRUCell(config.hidden, config.deter)
        self.prior_net = _mlp(config.deter, config.hidden, 2 * config.stoch, layers=1)
        self.posterior_net = _mlp(
            config.deter + self.encoder.out_dim + config.proprio_dim,
            config.hidden,
            2 * config.stoch,
            layers=1,
        )
        self.proprio_head = nn.Linear(features, config.proprio_dim) if config.proprio_dim else None
        self.reward_head = _mlp(features, config.hidden, 1, layers=2)
        self.cont_head = _mlp(features, config.hidden, 1, layers=1)
        with torch.no_grad():
            self.cont_head[-1].bias.fill_(_CONT_BIAS_INIT)
        self._register_action_stats(config.action_dim)

    # -- building blocks ---------------------------------------------------------------
    def _stats(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = raw.chunk(2, dim=-1)
        return mean, F.softplus(std) + self.config.min_std

    def _prior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._stats(self.prior_net(h))

    def _posterior(self, h: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._stats(self.posterior_net(torch.cat([h, embed], dim=-1)))

    def _transition(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """h_{t+1} = f(h_t, z_t, a_t)."""
        if action.shape[-1] != self.config.action_dim:
            raise ValueError(
                f"actions must end in action_dim={self.config.action_dim}, "
                f"got {tuple(action.shape)}"
            )
        action = self.normalize_action(action)
        return self.cell(self.transition_in(torch.cat([z, action.to(z.dtype)], dim=-1)), h)

    def _check_frames(self, frames: torch.Tensor, lead: int) -> None:
        config = self.config
        shape = (config.channels, config.frame_height, config.frame_width)
        if frames.dim() != lead + 3 or tuple(frames.shape[-3:]) != shape:
            dims = ", ".join(["B", "T"][:lead] + [str(s) for s in shape])
            raise ValueError(
                f"frames must be float ({dims}) in [-1, 1], got {tuple(frames.shape)} "
                f"{frames.dtype} (convert uint8 data with world_model.frames.to_model)"
            )

    def embed(self, frames: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Observation features e of frames (..., C, H, W) and proprioception (..., P)."""
        embed = self.encoder(frames)
        if not self.config.proprio_dim:
            return embed
        expected = (*frames.shape[:-3], self.config.proprio_dim)
        if proprio is None or tuple(proprio.shape) != expected:
            got = None if proprio is None else tuple(proprio.shape)
            raise ValueError(f"proprio must be {expected} (the robot's state), got {got}")
        return torch.cat([embed, proprio.to(embed.dtype)], dim=-1)

    # -- states ------------------------------------------------------------------------
    def initial(self, batch: int, device: torch.device | str | None = None) -> LatentState:
        """s_0 before any frame: h_0 = 0 and z = the prior mean at h_0."""
        device = self.action_mean.device if device is None else device
        h = torch.zeros(batch, self.config.deter, device=device)
        mean, std = self._prior(h)
        return LatentState(h, mean, mean, std)

    def posterior(
        self, h: torch.Tensor, frame: torch.Tensor, proprio: torch.Tensor | None = None
    ) -> LatentState:
        """(h, posterior mean of z given the frame (B, C, H, W) and proprioception (B, P))."""
        self._check_frames(frame, lead=1)
        mean, std = self._posterior(h, self.embed(frame, proprio))
        return LatentState(h, mean, mean, std)

    def predict(self, state: LatentState, action: torch.Tensor) -> LatentState:
        """ŝ_{t+1} = (h_{t+1}, prior mean of z_{t+1}): deterministic, differentiable in
        (state, action). ``action`` (B, A) raw."""
        h = self._transition(state.h, state.z, action)
        mean, std = self._prior(h)
        return LatentState(h, mean, mean, std)

    def encode_next(
        self,
        state: LatentState,
        action: torch.Tensor,
        next_frame: torch.Tensor,
        next_proprio: torch.Tensor | None = None,
    ) -> LatentState:
        """s_{t+1} = (h_{t+1}, posterior mean of z_{t+1} given ``next_frame`` (B, C, H, W)
        and ``next_proprio`` (B, P))."""
        return self.posterior(self._transition(state.h, state.z, action), next_frame, next_proprio)

    def imagine(self, state: LatentState, actions: torch.Tensor) -> LatentState:
        """Open-loop prior rollout: the K states after ``state`` under ``actions`` (B, K, A),
        each (B, K, ...)."""
        states = []
        for k in range(actions.shape[1]):
            state = self.predict(state, actions[:, k])
            states.append(state)
        return LatentState.stack(states, dim=1)

    def observe(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        state: LatentState | None = None,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
        proprio: torch.Tensor | None = None,
    ) -> tuple[LatentState, LatentState]:
        """Filter a sequence: ``(posteriors, priors)``, each with (B, T, ...) fields.

        ``frames`` (B, T, C, H, W); ``proprio`` (B, T, P) when ``config.proprio_dim`` > 0;
        ``actions`` (B, T, A) or (B, T-1, A) (the last action
        leads outside the window, so it may be left out). The posterior at t uses x_t and
        h_t; the step from t to t+1 uses its z and a_t. ``state``: its h is h_0 at
        ``frames[:, 0]`` (its z is not used); default :meth:`initial`. Posterior z are
        reparameterised samples when ``sample`` (default: in train mode with
        ``config.sample_posterior``), else means; prior z are means.
        """
        posteriors, priors, _ = self._observe(frames, actions, state, sample, generator, proprio)
        return posteriors, priors

    def _observe(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        state: LatentState | None,
        sample: bool | None,
        generator: torch.Generator | None,
        proprio: torch.Tensor | None = None,
    ) -> tuple[LatentState, LatentState, torch.Tensor | None]:
        """As :meth:`observe`, plus h after the last action when there is one per frame."""
        self._check_frames(frames, lead=2)
        batch, steps = frames.shape[:2]
        if (
            actions.dim() != 3
            or actions.shape[0] != batch
            or actions.shape[1]
            not in (
                steps,
                steps - 1,
            )
        ):
            raise ValueError(
                f"actions must be (B, T, A) or (B, T-1, A) for frames {tuple(frames.shape)}, "
                f"got {tuple(actions.shape)}"
            )
        if sample is None:
            sample = self.training and self.config.sample_posterior
        h = self.initial(batch, frames.device).h if state is None else state.h
        embeds = self.embed(frames, proprio)
        noise = None
        if sample:
            shape = (batch, steps, self.config.stoch)
            noise = torch.randn(shape, generator=generator, device=frames.device)
        posteriors, priors = [], []
        for t in range(steps):
            prior_mean, prior_std = self._prior(h)
            post_mean, post_std = self._posterior(h, embeds[:, t])
            z = post_mean if noise is None else post_mean + post_std * noise[:, t]
            posteriors.append(LatentState(h, z, post_mean, post_std))
            priors.append(LatentState(h, prior_mean, prior_mean, prior_std))
            h = self._transition(h, z, actions[:, t]) if t < actions.shape[1] else None
        return LatentState.stack(posteriors), LatentState.stack(priors), h

    # -- heads -------------------------------------------------------------------------
    def reward_logit_of_next(self, next_state: LatentState) -> torch.Tensor:
        return self.reward_head(next_state.feature()).squeeze(-1)

    def reward(self, state: LatentState, action: torch.Tensor) -> torch.Tensor:
        """R_S(s_t, a_t) in [0, 1], (B,): the reward label of the transition, read from
        the predicted next state."""
        return self.predict_step(state, action)[1]

    def predict_step(
        self, state: LatentState, action: torch.Tensor
    ) -> tuple[LatentState, torch.Tensor]:
        """``(predict(state, action), reward(state, action))`` sharing one transition."""
        next_state = self.predict(state, action)
        return next_state, torch.sigmoid(self.reward_logit_of_next(next_state))

    def swapped_step(
        self,
        state: LatentState,
        action: torch.Tensor,
        next_frame: torch.Tensor,
        next_proprio: torch.Tensor | None = None,
    ) -> tuple[LatentState, torch.Tensor]:
        """FoG's next state and reward for the global model's next observation.

        The state has the value of :meth:`encode_next` (G's frame, encoded) and the
        gradient of :meth:`predict` (:func:`straight_through`); the reward head reads that
        swapped state, so the reward gradient is the head's at the true next state, chained
        through the surrogate's dynamics (DMO recomputes the reward on the true next state
        the same way), rather than the head's at the surrogate's own prediction.
        """
        with torch.no_grad():
            forward = self.encode_next(state, action, next_frame, next_proprio)
        swapped = straight_through(forward, self.predict(state, action))
        return swapped, torch.sigmoid(self.reward_logit_of_next(swapped))

    def continuation(self, state: LatentState) -> torch.Tensor:
        """Logit (...,) that ``state`` is not terminal. Trained on predicted next states:
        ``continuation(predict(s_t, a_t))`` predicts ``continues[t]``."""
        return self.cont_head(state.feature()).squeeze(-1)

    def decode(self, state: LatentState) -> torch.Tensor:
        """The frame (..., C, H, W) reconstructed from [h, z] (unbounded; ~[-1, 1])."""
        return self.decoder(state.feature())

    def decode_proprio(self, state: LatentState) -> torch.Tensor:
        """The proprioception (..., P) reconstructed from [h, z] (P = 0: empty)."""
        feature = state.feature()
        if self.proprio_head is None:
            return feature.new_zeros(*feature.shape[:-1], 0)
        return self.proprio_head(feature)

    # -- training ----------------------------------------------------------------------
    def loss(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        continues: torch.Tensor | None = None,
        state: LatentState | None = None,
        generator: torch.Generator | None = None,
        proprio: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts (detached scalars) on a batch of sequences.

        ``frames`` (B, T, C, H, W) float in [-1, 1]; ``proprio`` (B, T, P) when
        ``config.proprio_dim`` > 0; ``actions`` (B, T', A) with T' = T or
        T - 1; ``rewards`` and ``continues`` (B, T') (``continues`` defaults to ones).
        Reconstruction (squared error summed over pixels, mean over B, T) and KL act on
        the T frames; reward and continuation on the T' transitions, read from the
        predicted next state (h_{t+1}, prior mean), as :meth:`reward` computes them.
        """
        config = self.config
        posts, priors, h_last = self._observe(frames, actions, state, None, generator, proprio)
        transitions = actions.shape[1]
        if tuple(rewards.shape) != tuple(actions.shape[:2]):
            raise ValueError(
                f"rewards must be (B, T') like the actions {tuple(actions.shape[:2])}, "
                f"got {tuple(rewards.shape)}"
            )
        if continues is None:
            continues = torch.ones_like(rewards)
        elif tuple(continues.shape) != tuple(rewards.shape):
            raise ValueError(
                f"continues must be shaped like rewards {tuple(rewards.shape)}, "
                f"got {tuple(continues.shape)}"
            )

        error = (self.decode(posts) - frames).square()
        if config.recon_change_weight > 0 and frames.shape[1] > 1:
            change = (frames[:, 1:] - frames[:, :-1]).abs().mean(-3, keepdim=True)
            weight = 1.0 + config.recon_change_weight * change
            error = torch.cat([error[:, :1], error[:, 1:] * weight], dim=1)
        recon = error.sum((-3, -2, -1)).mean()
        proprio_recon = torch.zeros((), device=frames.device)
        if self.proprio_head is not None:
            proprio_recon = (self.decode_proprio(posts) - proprio).square().sum(-1).mean()
        kl_term, kl_value = kl_loss(
            posts.mean,
            posts.std,
            priors.mean,
            priors.std,
            config.free_nats,
            config.kl_balance,
            config.free_nats_per_sample,
        )

        # The predicted next states (h_{t+1}, prior mean of z_{t+1}) for t < T'.
        next_h, next_z = priors.h[:, 1:], priors.z[:, 1:]
        if h_last is not None:
            last_mean, _ = self._prior(h_last)
            next_h = torch.cat([next_h, h_last[:, None]], dim=1)
            next_z = torch.cat([next_z, last_mean[:, None]], dim=1)
        next_states = LatentState(next_h[:, :transitions], next_z[:, :transitions])
        reward_input = next_states if config.reward_grad_to_dynamics else next_states.detach()
        reward_logit = self.reward_logit_of_next(reward_input)
        reward_term = F.binary_cross_entropy_with_logits(reward_logit, rewards.float())
        cont_logit = self.continuation(next_states.detach())
        cont_term = F.binary_cross_entropy_with_logits(cont_logit, continues.float())

        total = (
            config.recon_weight * recon
            + config.proprio_weight * proprio_recon
            + config.kl_scale * kl_term
            + config.reward_weight * reward_term
            + config.cont_weight * cont_term
        )
        with torch.no_grad():
            reward_mse = (torch.sigmoid(reward_logit) - rewards).square().mean()
            parts = {
                "recon": recon.detach(),
                "proprio_recon": proprio_recon.detach(),
                "kl": kl_value,
                "kl_loss": kl_term.detach(),
                "reward_bce": reward_term.detach(),
                "reward_mse": reward_mse,
                "cont_bce": cont_term.detach(),
                "prior_std": priors.std.mean(),
                "post_std": posts.std.mean(),
            }
        return total, parts

    @torch.no_grad()
    def open_loop_mse(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        context: int = 1,
        proprio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-horizon-step frame MSE (K,) of open-loop predictions.

        Filters the first ``context`` frames, then :meth:`imagine` under the remaining
        actions and decodes; ``frames`` (B, T, C, H, W), ``actions`` (B, >= T-1, A).
        """
        if not 1 <= context < frames.shape[1]:
            raise ValueError(f"context must be in [1, T-1], got {context} for T={frames.shape[1]}")
        posts, _ = self.observe(
            frames[:, :context],
            actions[:, : context - 1],
            sample=False,
            proprio=None if proprio is None else proprio[:, :context],
        )
        start = posts.at(context - 1)
        imagined = self.imagine(start, actions[:, context - 1 : frames.shape[1] - 1])
        error = (self.decode(imagined) - frames[:, context:]).square()
        return error.mean(dim=(0, 2, 3, 4))
