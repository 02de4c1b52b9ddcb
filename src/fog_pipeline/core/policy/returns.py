"""The decoupled value/gradient swap for tensors and TD(lambda) targets."""

from __future__ import annotations

import torch


def decoupled(value: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """The value of ``value`` with the gradient of ``gradient``: g + stop_grad(v - g).

    FoG applies it to rewards (value from the global reward model, gradient from the
    surrogate's reward head); latent states use ``surrogate.rssm.straight_through``.
    """
    return gradient + (value - gradient).detach()


def td_lambda(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """TD(lambda) targets G_t for t < H, computed backwards.

    ``rewards`` (H, N): r_t; ``values`` (H+1, N): V(s_0) .. V(s_H); ``dones`` (H, N): the
    episode ended with step t (no bootstrap past it). With c_t = gamma * (1 - done_t):
    G_{H-1} = r_{H-1} + c_{H-1} V(s_H) and
    G_t = r_t + c_t ((1 - lambda) V(s_{t+1}) + lambda G_{t+1}).
    """
    horizon = rewards.shape[0]
    if values.shape[0] != horizon + 1 or dones.shape != rewards.shape:
        raise ValueError(
            f"need rewards (H, N), values (H+1, N), dones (H, N); got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)}, {tuple(dones.shape)}"
        )
    discounts = gamma * (1.0 - dones.to(rewards.dtype))
    targets = torch.empty_like(rewards)
    following = values[horizon]
    for t in reversed(range(horizon)):
        following = rewards[t] + discounts[t] * ((1 - lam) * values[t + 1] + lam * following)
        targets[t] = following
    return targets
