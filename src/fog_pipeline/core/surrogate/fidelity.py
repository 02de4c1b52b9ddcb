"""Gradient fidelity: how well the surrogate's Jacobian matches the global model's.

FoG takes values from the global model G and gradients from the surrogate S, so what
matters is whether J_S (cheap, by autograd) points where J_G (expensive) does. Along a
direction v of the input (usually the action), compare

    J_S v   exactly, by double backward (or forward-mode AD, ``torch.func.jvp``), with
    J_G v ~ (f_G(x + eps v) - f_G(x - eps v)) / (2 eps)   central finite differences,

with G only evaluated (under ``no_grad``). All functions work on batches: ``x`` and
``v`` are (B, ...); the functions must treat samples independently (models in eval mode).

**Hold G's randomness fixed.** Finite differences need f_G to be a deterministic
function of x. For the world model, draw the sampler's starting noise once and pass it to
every call, ``Denoiser.sample(frames, actions, noise=noise)``; a fresh draw per call turns
the difference quotient into noise / (2 eps).

Comparing in the surrogate's latent space: f_S(a) = ``rssm.predict(s, a).z`` against
f_G(a) = ``rssm.encode_next(s, a, G(a)).z`` (the global model's next observation, encoded) is
exactly the pair FoG's swap combines (:func:`latent_transition_cosine`). h_{t+1} is the
same function of (s, a) in both, so only z is compared: including h would inflate the
cosine with a part that agrees by construction.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from fog_pipeline.core.surrogate.rssm import RSSM, LatentState

Fn = Callable[[torch.Tensor], torch.Tensor]
JvpMethod = Literal["forward", "double_backward"]


def jacobian_vector_product(
    f: Fn, x: torch.Tensor, v: torch.Tensor, method: JvpMethod = "double_backward"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x), J_f(x) v)``, exact.

    ``"double_backward"`` gets J v as the gradient of (J^T u) . v with respect to u: it
    needs only ordinary autograd, and on the RSSM (batch 64, 2 CPU threads) it took 5 ms
    against 12 ms for ``"forward"``, forward-mode AD (``torch.func.jvp``).
    """
    if x.shape != v.shape:
        raise ValueError(f"x {tuple(x.shape)} and v {tuple(v.shape)} must have the same shape")
    if method == "forward":
        with warnings.catch_warnings():
            # torch scripts its forward-AD decompositions on first use and warns about its
            # own use of the deprecated torch.jit.script: noise, not ours to act on.
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
            return torch.func.jvp(f, (x,), (v.to(x.dtype),))
    if method != "double_backward":
        raise ValueError(f"method must be 'forward' or 'double_backward', got {method!r}")
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = f(x)
        u = torch.zeros_like(y, requires_grad=True)
        (vjp,) = torch.autograd.grad(y, x, u, create_graph=True)
        (jv,) = torch.autograd.grad(vjp, u, v.to(x.dtype))
    return y.detach(), jv


@torch.no_grad()
def finite_difference(f: Fn, x: torch.Tensor, v: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Central difference (f(x + eps v) - f(x - eps v)) / (2 eps) ~ J_f(x) v."""
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return (f(x + eps * v) - f(x - eps * v)) / (2.0 * eps)


def directional_derivatives(
    f_surrogate: Fn,
    f_global: Fn,
    x: torch.Tensor,
    v: torch.Tensor,
    eps: float = 1e-3,
    method: JvpMethod = "double_backward",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(J_S v, J_G v)``: exact for the surrogate, central differences for the global model."""
    _, surrogate = jacobian_vector_product(f_surrogate, x, v, method)
    return surrogate.detach(), finite_difference(f_global, x, v, eps)


def directional_cosine(
    f_surrogate: Fn,
    f_global: Fn,
    x: torch.Tensor,
    v: torch.Tensor,
    eps: float = 1e-3,
    method: JvpMethod = "double_backward",
) -> torch.Tensor:
    """Per-sample cosine (B,) between J_S v and J_G v over the output dims.

    Outputs are (B, ...) and flattened per sample. A zero derivative gives cosine 0. For
    scalar outputs (B,) a per-sample cosine is only a sign: use :func:`scalar_fidelity`.
    """
    surrogate, global_ = directional_derivatives(f_surrogate, f_global, x, v, eps, method)
    if surrogate.dim() < 2:
        raise ValueError(
            "directional_cosine needs (B, ...) outputs with dims to compare over; "
            "use scalar_fidelity for (B,) outputs"
        )
    return F.cosine_similarity(surrogate.flatten(1), global_.flatten(1), dim=1, eps=1e-12)


def scalar_fidelity(
    f_surrogate: Fn,
    f_global: Fn,
    x: torch.Tensor,
    v: torch.Tensor,
    eps: float = 1e-3,
    method: JvpMethod = "double_backward",
) -> dict[str, float]:
    """Agreement of the directional derivatives of scalar outputs (B,) over the batch.

    ``sign_agreement``: fraction of samples whose derivatives have the same sign;
    ``cosine``: cosine between the (B,) vectors of derivatives; ``scale_ratio``:
    |J_S v| / |J_G v| over the batch (1 = same magnitude).
    """
    surrogate, global_ = directional_derivatives(f_surrogate, f_global, x, v, eps, method)
    if surrogate.dim() != 1:
        raise ValueError(f"scalar_fidelity needs (B,) outputs, got {tuple(surrogate.shape)}")
    surrogate, global_ = surrogate.double(), global_.double()
    norm_global = global_.norm()
    return {
        "sign_agreement": float((torch.sign(surrogate) == torch.sign(global_)).double().mean()),
        "cosine": float(F.cosine_similarity(surrogate, global_, dim=0, eps=1e-12)),
        "scale_ratio": float(surrogate.norm() / norm_global) if norm_global > 0 else float("nan"),
    }


def gradient_cosine(
    f_surrogate: Fn, f_global: Fn, x: torch.Tensor, eps: float = 1e-3
) -> torch.Tensor:
    """Per-sample cosine (B,) between the full gradients of scalar outputs (B,) w.r.t. x.

    The surrogate's gradient by backprop; the global one by central differences along
    each of the D = x[0].numel() input coordinates (2 D evaluations of f_global: meant
    for small inputs such as actions).
    """
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        out = f_surrogate(leaf)
        if out.dim() != 1:
            raise ValueError(f"gradient_cosine needs (B,) outputs, got {tuple(out.shape)}")
        (surrogate,) = torch.autograd.grad(out.sum(), leaf)
    batch, dims = x.shape[0], x[0].numel()
    global_ = torch.empty(batch, dims, dtype=x.dtype, device=x.device)
    for d in range(dims):
        basis = torch.zeros(batch, dims, dtype=x.dtype, device=x.device)
        basis[:, d] = 1.0
        global_[:, d] = finite_difference(f_global, x, basis.reshape(x.shape), eps)
    return F.cosine_similarity(surrogate.flatten(1), global_, dim=1, eps=1e-12)


def latent_transition_cosine(
    model: RSSM,
    state: LatentState,
    action: torch.Tensor,
    next_observation_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]],
    direction: torch.Tensor,
    eps: float = 1e-3,
) -> torch.Tensor:
    """Per-sample cosine (B,) of d z_{t+1} / d a along ``direction``: surrogate vs global.

    Surrogate: ``model.predict(state, a).z``. Global: ``model.encode_next(state, a,
    *next_observation_fn(a)).z``, with ``next_observation_fn`` the global model's next
    frame (B, C, H, W) and proprioception (B, P) (or None) for actions (B, A); it must be
    deterministic in a (fix the sampler's noise).
    """
    state = state.detach()

    def surrogate(a: torch.Tensor) -> torch.Tensor:
        return model.predict(state, a).z

    def global_(a: torch.Tensor) -> torch.Tensor:
        return model.encode_next(state, a, *next_observation_fn(a)).z

    return directional_cosine(surrogate, global_, action, direction, eps)
