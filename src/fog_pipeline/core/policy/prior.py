"""The behaviour prior: the recorded actions as a starting point and an anchor for the actor.

A world model is trustworthy only near the data it was trained on; a policy optimised
inside it drifts to where the model errs in its favour (here: the block drifting towards
the goal on its own once the pusher fades in the imagined frames). The standard
countermeasure in offline model-based RL is to keep the policy close to the behaviour
that recorded the data:

- **pretraining**: the actor is first fitted to the recorded actions by maximum
  likelihood (behaviour cloning) on the surrogate's latent features of the real frames,
  the same features it acts on at deployment;
- **anchoring**: during FoG the actor's loss adds ``weight`` times the same likelihood
  term on a fresh batch of recorded steps (TD3+BC's recipe, with FoG's objective in
  place of the critic's value).

The likelihood is that of the actor's own squashed Gaussian: the recorded action is
mapped into the unit box, pulled slightly inside it (the squash never reaches the edge),
and scored under the pre-squash Gaussian; the squash's Jacobian does not depend on the
actor's parameters and is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import Field
from tqdm.auto import tqdm

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.policy.actor import Actor
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.world_model.frames import to_model

# Recorded actions at the box's edge are pulled this far inside before the inverse squash.
_EDGE = 0.97


@dataclass
class BehaviourPriorConfig:
    """``policy.prior``: behaviour cloning before FoG and the anchor during it."""

    __pydantic_config__ = STRICT_KEYS

    pretrain_steps: Annotated[int, Field(ge=0)] = 0  # 0: the actor starts untrained
    weight: Annotated[float, Field(ge=0)] = 0.0  # of the likelihood term in FoG's actor loss
    batch_size: Annotated[int, Field(ge=1)] = 256
    lr: Annotated[float, Field(gt=0)] = 1e-3

    @property
    def enabled(self) -> bool:
        return self.pretrain_steps > 0 or self.weight > 0


@dataclass
class Demonstrations:
    """Recorded steps as the actor sees them: latent features (N, F) and actions (N, A)."""

    features: torch.Tensor
    actions: torch.Tensor

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def sample(self, batch_size: int, generator: torch.Generator) -> Demonstrations:
        index = torch.randint(
            len(self), (batch_size,), generator=generator, device=generator.device
        ).to(self.features.device)
        return Demonstrations(self.features[index], self.actions[index])

    def to(self, device: torch.device | str) -> Demonstrations:
        return Demonstrations(self.features.to(device), self.actions.to(device))


@torch.no_grad()
def demonstrations(surrogate: RSSM, data: TrainingSet, split: str = "train") -> Demonstrations:
    """Filter the surrogate's posterior over every segment of ``split``: one feature per
    recorded step, paired with the action taken there."""
    rows = data.segments[data.segments["split"] == split]
    if rows.empty:
        raise ValueError(f"the training set has no {split!r} segment to clone behaviour from")
    device = next(surrogate.parameters()).device
    features, actions = [], []
    for offset, length in zip(rows["offset"], rows["length"], strict=True):
        span = slice(int(offset), int(offset) + int(length))
        frames = to_model(np.asarray(data.frames[span]))[None].to(device)
        taken = torch.as_tensor(np.array(data.actions[span]), device=device)[None]
        proprio = None
        if surrogate.config.proprio_dim:
            proprio = torch.as_tensor(np.array(data.state[span]), device=device)[None]
        posteriors, _ = surrogate.observe(frames, taken, sample=False, proprio=proprio)
        features.append(posteriors.feature()[0])
        actions.append(taken[0])
    return Demonstrations(torch.cat(features), torch.cat(actions))


def to_unit_box(actions: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Recorded actions in the robot's box [low, high] mapped to [-1, 1] (unclipped)."""
    return (actions - low) / (high - low) * 2.0 - 1.0


def behaviour_nll(actor: Actor, batch: Demonstrations) -> torch.Tensor:
    """Mean negative log-likelihood of the recorded actions under the actor (pre-squash)."""
    unit = to_unit_box(batch.actions, actor.action_low, actor.action_high).clamp(-_EDGE, _EDGE)
    target = torch.atanh(unit) if actor.config.squash == "tanh" else unit
    mean, std = actor.distribution(batch.features)
    return (0.5 * ((target - mean) / std).square() + std.log()).sum(-1).mean()


def fit_likelihood(
    parameters: Iterable[torch.nn.Parameter],
    nll: Callable[[Demonstrations], torch.Tensor],
    demos: Demonstrations,
    config: BehaviourPriorConfig,
    seed: int,
    desc: str = "behaviour cloning",
) -> list[float]:
    """Minimise ``nll`` on seeded batches of ``demos`` for ``config.pretrain_steps`` Adam
    steps over ``parameters``; returns the losses. A non-finite loss stops it, named."""
    if config.pretrain_steps == 0:
        return []
    generator = torch.Generator(demos.features.device).manual_seed(seed)
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    losses = []
    for _ in tqdm(range(config.pretrain_steps), desc=desc, unit="step"):
        loss = nll(demos.sample(config.batch_size, generator))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{desc}: loss {loss.item()} at step {len(losses)}; check the recorded "
                "actions for NaNs or lower policy.prior.lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def pretrain_actor(
    actor: Actor, demos: Demonstrations, config: BehaviourPriorConfig, seed: int
) -> list[float]:
    """Behaviour-clone ``actor`` for ``config.pretrain_steps``; returns the losses."""
    return fit_likelihood(
        actor.parameters(), lambda batch: behaviour_nll(actor, batch), demos, config, seed
    )
