"""Tiny world models, policy bundles and random training sets for the tests that need a
model but not a trained one (8x8 frames by default, 2 actions, a 2-channel state)."""

from __future__ import annotations

import numpy as np
import torch

from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.training_set import TrainingSet, build_training_set
from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.policy.bundle import DeployedPolicy, PolicyInfo
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig
from fog_pipeline.core.world_model.denoiser import DenoiserConfig
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.core.world_model.reward import RewardModelConfig
from fog_pipeline.core.world_model.state import StateModelConfig

SIZE, STATE_DIM = 8, 2
META = {
    "fps": 10.0,
    "action_low": [-1.0, -1.0],
    "action_high": [1.0, 1.0],
    "state_names": ["x", "y"],
}


def random_training_set(episodes: int, length: int, val_fraction: float) -> TrainingSet:
    """Uniform random frames, actions, rewards and states; no successes."""
    rng = np.random.default_rng(0)
    segments = []
    for i in range(episodes):
        frames = rng.integers(0, 255, size=(length, SIZE, SIZE, 3), dtype=np.uint8)
        actions = rng.uniform(-1, 1, size=(length, 2)).astype(np.float32)
        rewards = rng.uniform(0, 1, size=length).astype(np.float32)
        state = rng.uniform(-1, 1, size=(length, STATE_DIM)).astype(np.float32)
        success = np.zeros(length, dtype=bool)
        segments.append(Segment(f"ep{i}", 0, frames, actions, rewards, success, state, rewards))
    return build_training_set(segments, val_fraction=val_fraction, seed=0, meta=META)


def tiny_world_model(
    seed: int = 0,
    state_dim: int = STATE_DIM,
    reward_channels: tuple[int, ...] = (4,),
    sampling_steps: int | None = None,
) -> WorldModel:
    """An untrained G of a few thousand parameters, the same for the same arguments."""
    torch.manual_seed(seed)
    size = {"frame_height": SIZE, "frame_width": SIZE}
    steps = {} if sampling_steps is None else {"sampling_steps": sampling_steps}
    denoiser = DenoiserConfig(
        **size,
        action_dim=2,
        state_dim=state_dim,
        context=2,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        action_embed_dim=8,
        **steps,
    )
    reward = RewardModelConfig(
        **size, state_dim=state_dim, conv_channels=reward_channels, norm_num_groups=4, hidden=8
    )
    state = (
        StateModelConfig(state_dim=state_dim, action_dim=2, context=2, hidden=16)
        if state_dim
        else None
    )
    return WorldModel.create(denoiser, reward, [0.0, 0.0], [0.5, 0.5], state)


def tiny_rssm(size: int = SIZE, proprio_dim: int = STATE_DIM, width: int = 16) -> RSSM:
    """An untrained RSSM on ``size`` x ``size`` frames (``width``: deter and hidden)."""
    config = RSSMConfig(
        frame_height=size,
        frame_width=size,
        proprio_dim=proprio_dim,
        deter=width,
        stoch=4,
        hidden=width,
        cnn_depth=4,
        cnn_layers=2,
    )
    return RSSM(config)


def tiny_bundle(
    low,
    high,
    state_names: tuple[str, ...] = (),
    seed: int = 0,
    size: int = SIZE,
    transitions: int = 0,
) -> DeployedPolicy:
    """An untrained FoG bundle (RSSM filter + actor) acting in [low, high]."""
    torch.manual_seed(seed)
    surrogate = tiny_rssm(size, len(state_names))
    actor = Actor(ActorConfig(feature_dim=20, action_dim=2, hidden=(16,)))
    actor.set_action_bounds(torch.as_tensor(low), torch.as_tensor(high))
    info = PolicyInfo("fog", transitions, (size, size, 3), tuple(state_names))
    return DeployedPolicy(surrogate, actor, info)
