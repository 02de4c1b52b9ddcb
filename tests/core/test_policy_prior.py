"""The behaviour prior: cloning recorded actions, anchoring FoG to them, PPO's cloning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fog_pipeline.core.baselines.ppo import behaviour_clone_ppo
from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.training_set import build_training_set
from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.policy.prior import (
    BehaviourPriorConfig,
    Demonstrations,
    behaviour_nll,
    demonstrations,
    pretrain_actor,
)
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LOW, HIGH = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])


def demonstrator(features: torch.Tensor) -> torch.Tensor:
    """A smooth state-dependent behaviour inside the (non-unit) action box."""
    unit = torch.tanh(features @ torch.tensor([[0.8, -0.5], [0.3, 0.9]]))
    return LOW + (unit + 1) / 2 * (HIGH - LOW)


def actor() -> Actor:
    torch.manual_seed(0)
    model = Actor(ActorConfig(feature_dim=2, action_dim=2, hidden=(32, 32)))
    model.set_action_bounds(LOW, HIGH)
    return model


def test_behaviour_cloning_recovers_the_demonstrator_in_the_robots_units():
    features = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    demos = Demonstrations(features, demonstrator(features))
    model = actor()
    losses = pretrain_actor(model, demos, BehaviourPriorConfig(pretrain_steps=400), seed=0)
    assert len(losses) == 400 and np.mean(losses[-20:]) < np.mean(losses[:20]) - 1.0
    probe = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        error = (model.mode(probe) - demonstrator(probe)).abs().mean(0)
    # Errors in robot units: the box is 4 wide in x and 1 wide in y.
    assert error[0] < 0.15 and error[1] < 0.04, error
    assert pretrain_actor(actor(), demos, BehaviourPriorConfig(), seed=0) == []


def test_likelihood_is_the_squashed_gaussians_and_tolerates_the_box_edge():
    model = actor()
    features = torch.zeros(3, 2)
    at_edge = Demonstrations(features, torch.stack([LOW, HIGH, (LOW + HIGH) / 2]))
    mean, std = model.distribution(features)
    unit = torch.tensor([[-0.97, -0.97], [0.97, 0.97], [0.0, 0.0]])
    expected = (0.5 * ((torch.atanh(unit) - mean) / std).square() + std.log()).sum(-1).mean()
    torch.testing.assert_close(behaviour_nll(model, at_edge), expected)


def test_demonstrations_are_one_latent_feature_per_recorded_training_step(make_episode):
    segments = [
        Segment(f"ep{i}", 0, e.frames, e.actions, e.rewards, e.success)
        for i, e in enumerate(make_episode(10 + i, seed=i) for i in range(4))
    ]
    meta = {"fps": 10.0, "action_low": [-1.0, -1.0], "action_high": [1.0, 1.0]}
    data = build_training_set(segments, val_fraction=0.25, seed=0, meta=meta)
    config = RSSMConfig(frame_height=8, frame_width=8, deter=8, stoch=4, hidden=8, cnn_layers=2)
    demos = demonstrations(RSSM(config).eval(), data)
    train = data.segments[data.segments["split"] == "train"]
    assert len(demos) == train["length"].sum() < len(data)
    assert demos.features.shape == (len(demos), 12)
    first = int(train["offset"].iloc[0])
    np.testing.assert_array_equal(demos.actions[0].numpy(), data.actions[first])
    with pytest.raises(ValueError, match="no 'nowhere' segment"):
        demonstrations(RSSM(config), data, split="nowhere")


def test_ppo_behaviour_cloning_fits_sb3s_policy_to_the_recorded_actions(latent_box):
    from stable_baselines3 import PPO

    model = PPO(
        "MlpPolicy",
        latent_box(),
        n_steps=4,
        batch_size=4,
        policy_kwargs={"net_arch": {"pi": [16, 16], "vf": [16, 16]}},
        seed=0,
    )
    features = torch.randn(2000, 6, generator=torch.Generator().manual_seed(0))
    actions = demonstrator(features[:, :2])
    before, _ = model.predict(features.numpy(), deterministic=True)
    prior = BehaviourPriorConfig(pretrain_steps=300, lr=3e-3)
    behaviour_clone_ppo(model, Demonstrations(features, actions), LOW, HIGH, prior, seed=0)
    after, _ = model.predict(features.numpy(), deterministic=True)
    unit = ((actions - LOW) / (HIGH - LOW) * 2 - 1).numpy()
    assert np.abs(after - unit).mean() < 0.5 * np.abs(before - unit).mean()
