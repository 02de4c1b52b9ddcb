"""FoG on a toy world with a known optimum: a point mass that must reach the origin.

The "global model" moves the mass by 0.2 * a per step and pays exp(-|p|^2); the
"surrogate" believes the step is 0.16 * a + 0.01 (wrong but close). FoG takes its values
from the global model and its gradients from the surrogate's Jacobians, and must still
learn to drive the mass home within seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.policy.critic import CriticConfig, CriticEnsemble
from fog_pipeline.core.policy.fog import FoGConfig, FoGTrainer
from fog_pipeline.core.policy.prior import BehaviourPriorConfig, Demonstrations
from fog_pipeline.core.surrogate.rssm import LatentState

GAIN, SURROGATE_GAIN, SURROGATE_BIAS = 0.2, 0.16, 0.01


def reward_of(position: torch.Tensor) -> torch.Tensor:
    return torch.exp(-position.square().sum(-1))


@dataclass
class ToyStep:
    frame: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    state: torch.Tensor  # no proprioception on the toy: (N, 0)


class PointMassWorld:
    """The batched environment contract of WorldModelEnv, with exact point-mass physics."""

    context = 2

    def __init__(self, num_envs: int, seed: int, max_steps: int = 20) -> None:
        self.num_envs, self.max_steps = num_envs, max_steps
        self.generator = torch.Generator().manual_seed(seed)
        self.frames = torch.zeros(num_envs, self.context, 2)
        self.past_actions = torch.zeros(num_envs, self.context - 1, 2)
        self.states = torch.zeros(num_envs, self.context, 0)
        self.steps = torch.zeros(num_envs, dtype=torch.long)
        self.transitions = 0

    @property
    def observation(self) -> torch.Tensor:
        return self.frames[:, -1]

    @property
    def state(self) -> torch.Tensor:
        return self.states[:, -1]

    def reset(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.ones(self.num_envs, dtype=torch.bool) if mask is None else mask
        start = torch.rand(self.num_envs, 2, generator=self.generator) * 4 - 2
        self.frames = self.frames.detach().clone()
        self.frames[mask] = start[mask, None].expand(-1, self.context, -1)
        self.steps = torch.where(mask, 0, self.steps)
        return self.observation

    def step(self, actions: torch.Tensor, differentiable: bool = False) -> ToyStep:
        actions = actions.clamp(-1, 1)
        if not differentiable:
            actions = actions.detach()
        position = self.observation + GAIN * actions
        self.frames = torch.cat([self.frames[:, 1:], position[:, None]], dim=1)
        self.steps = self.steps + 1
        self.transitions += self.num_envs
        never = torch.zeros(self.num_envs, dtype=torch.bool)
        return ToyStep(
            position, reward_of(position), never, self.steps >= self.max_steps, self.state
        )


class PointMassSurrogate(nn.Module):
    """The RSSM's interface on the toy: the latent is the position (h), z is empty."""

    config = SimpleNamespace(proprio_dim=0)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("gain", torch.tensor(SURROGATE_GAIN))

    def observe(self, frames, actions, sample=False, proprio=None):
        states = LatentState(h=frames, z=frames[..., :0])
        return states, states

    def encode_next(self, state, action, frame, proprio=None):
        return LatentState(h=frame, z=frame[..., :0])

    def swapped_step(self, state, action, frame, proprio=None):
        predicted = state.h + self.gain * action.clamp(-1, 1) + SURROGATE_BIAS
        position = predicted + (frame - predicted).detach()
        return LatentState(h=position, z=position[..., :0]), reward_of(position)


def make_trainer(
    seed: int = 0, prior: BehaviourPriorConfig | None = None, demos=None, **overrides
) -> tuple[FoGTrainer, PointMassWorld]:
    config = FoGConfig(
        **{
            "iterations": 60,
            "num_envs": 32,
            "horizon": 8,
            "surrogate_updates": 0,
            "snapshots": 0,
            "alpha_init": 0.01,
            **overrides,
        }
    )
    torch.manual_seed(seed)
    env = PointMassWorld(config.num_envs, seed)
    actor = Actor(ActorConfig(feature_dim=2, action_dim=2, hidden=(32, 32)))
    critic = CriticEnsemble(CriticConfig(feature_dim=2, hidden=(32, 32)))
    trainer = FoGTrainer(
        env,
        PointMassSurrogate(),
        actor,
        critic,
        config,
        seed=seed,
        prior=prior,
        demonstrations=demos,
    )
    return trainer, env


def test_fog_learns_the_point_mass_with_a_wrong_but_close_surrogate():
    trainer, env = make_trainer()
    rewards = [trainer.train_iteration()["imagined_reward"] for _ in range(60)]
    before, after = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    # Random actions hover around the start's reward (~0.2 on average); driving straight
    # home reaches ~1 within 10 steps. FoG must close most of that gap.
    assert after > before + 0.25, (before, after)
    # And the learned policy points home: the mean action at (1, 1) is towards -(1, 1).
    action = trainer.actor.mode(torch.tensor([[1.0, 1.0]]))
    assert torch.all(action < -0.5), action
    assert env.transitions == 60 * 32 * 8 == trainer.transitions


def test_behaviour_anchor_holds_the_actor_to_the_recorded_actions():
    """Demonstrations that push away from home: a strong anchor wins over the objective,
    a weak one does not (without it the actor points home, as tested above)."""
    features = torch.rand(512, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    away = Demonstrations(features, torch.full((512, 2), 0.9))
    home = torch.tensor([[1.0, 1.0]])
    strong, _ = make_trainer(prior=BehaviourPriorConfig(weight=10.0), demos=away)
    weak, _ = make_trainer(prior=BehaviourPriorConfig(weight=1e-3), demos=away)
    for _ in range(40):
        metrics = strong.train_iteration()
        weak.train_iteration()
    assert math.isfinite(metrics["behaviour_nll"])
    assert torch.all(strong.actor.mode(home) > 0.5)
    assert torch.all(weak.actor.mode(home) < -0.3)
    with pytest.raises(ValueError, match="needs demonstrations"):
        make_trainer(prior=BehaviourPriorConfig(weight=1.0))


def test_global_gradient_source_learns_too_and_gives_the_same_values():
    fog, _ = make_trainer(gradient_source="surrogate")
    bptt, _ = make_trainer(gradient_source="global")
    # Same seed, same first rollout: the values are the global model's in both modes.
    first_fog, first_bptt = fog.rollout(), bptt.rollout()
    torch.testing.assert_close(first_fog["objective"], first_bptt["objective"])
    rewards = [bptt.train_iteration()["imagined_reward"] for _ in range(40)]
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.2


def test_fog_gradient_is_the_surrogate_chain_at_the_global_trajectory():
    """One step, H=1: d reward / d action = the reward's gradient at the true (global)
    next state, chained through the surrogate's Jacobian of the dynamics (DMO's choice),
    not the reward's gradient at the surrogate's own predicted state."""
    trainer, env = make_trainer(horizon=1, num_envs=4)
    env.reset()
    trainer.state = trainer._context_states()
    start = trainer.state.h.clone()
    action = torch.full((4, 2), 0.3, requires_grad=True)
    _, _, reward = trainer._transition(trainer.state, action)
    # Value: the global model's reward at the globally moved position.
    torch.testing.assert_close(reward, reward_of(start + GAIN * 0.3))
    reward.sum().backward()
    reached = start + GAIN * 0.3
    expected = -2 * reached * reward_of(reached)[:, None] * SURROGATE_GAIN
    torch.testing.assert_close(action.grad, expected)
    predicted = start + SURROGATE_GAIN * 0.3 + SURROGATE_BIAS
    at_prediction = -2 * predicted * reward_of(predicted)[:, None] * SURROGATE_GAIN
    assert not torch.allclose(action.grad, at_prediction)


class RecordingSurrogateTrainer:
    """Stands in for SurrogateTrainer: records the replay batches it is given."""

    def __init__(self) -> None:
        self.batches: list[dict[str, torch.Tensor]] = []
        self.generator, self.step, self.optimizer = torch.Generator(), 0, None

    def train_step(self, batch):
        self.batches.append(batch)
        return {"loss": 0.0}


@pytest.mark.parametrize(("max_steps", "stored"), [(8, 32), (16, 32), (5, 0)])
def test_online_surrogate_updates_run_when_episodes_end_with_the_horizon(max_steps, stored):
    """With imagined episodes as long as the horizon (the default configuration) every
    environment restarts on the last step; its sequence holds one episode and is valid
    training data. A restart before the last step splits the sequence: it is not stored."""
    trainer, _ = make_trainer(horizon=8, surrogate_updates=1)
    trainer.env.max_steps = max_steps
    trainer.surrogate_trainer = RecordingSurrogateTrainer()
    rollout = trainer.rollout()
    assert int((~rollout["split"]).sum()) == stored
    # The toy's 2-D "frames" are no camera images: store them as the sequences go.
    kept = ~rollout["split"]
    if stored:
        trainer.replay.add(
            {
                "frames": rollout["frames"][kept],
                "actions": rollout["actions"][kept],
                "rewards": rollout["rewards"].T[kept],
            }
        )
    assert len(trainer.replay) == stored


def test_success_is_absorbing():
    """A predicted success ends the episode with the return of staying at the top reward,
    so reaching the goal early is worth more than hovering near it."""
    trainer, env = make_trainer(horizon=1, num_envs=4)
    original = env.step

    def succeed(actions, differentiable=False):
        out = original(actions, differentiable)
        out.terminated = torch.ones(env.num_envs, dtype=torch.bool)
        return out

    env.step = succeed
    rollout = trainer.rollout()
    gamma = trainer.config.gamma
    assert torch.all(rollout["critic_rewards"][0] > gamma / (1 - gamma))


def test_anchor_only_ablation_moves_the_actor_by_the_anchor_alone():
    features = torch.rand(512, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    away = Demonstrations(features, torch.full((512, 2), 0.9))
    home = torch.tensor([[1.0, 1.0]])
    ablation, _ = make_trainer(
        prior=BehaviourPriorConfig(weight=1e-3), demos=away, reinforcement_weight=0.0
    )
    for _ in range(40):
        ablation.train_iteration()
    # The same weak anchor that loses to FoG's objective (above) wins without it.
    assert torch.all(ablation.actor.mode(home) > 0.0)
    with pytest.raises(ValueError, match="needs an anchor"):
        make_trainer(reinforcement_weight=0.0)


def test_demonstration_features_are_refreshed_at_checkpoints():
    """With online surrogate updates the anchor's latent features go stale; they are
    recomputed at every checkpoint (so a resumed run reads the same ones)."""
    features = torch.zeros(16, 2)
    calls = []

    def refresh():
        calls.append(len(calls))
        return Demonstrations(features + len(calls), torch.zeros(16, 2))

    trainer, _ = make_trainer(
        prior=BehaviourPriorConfig(weight=1.0),
        demos=Demonstrations(features, torch.zeros(16, 2)),
        surrogate_updates=1,
        checkpoint_every=2,
    )
    trainer.refresh_demonstrations = refresh
    trainer.surrogate_trainer = RecordingSurrogateTrainer()
    trainer._surrogate_update = lambda rollout: {}  # the toy's frames are no images
    for _ in range(4):
        trainer.train_iteration()
    assert calls == [0, 1]
    assert torch.equal(trainer.demonstrations.features, features + 2)


@pytest.mark.parametrize(("log_std", "direction"), [(-4.0, 1), (0.9, -1)])
def test_entropy_temperature_moves_towards_the_target(log_std, direction):
    trainer, _ = make_trainer(alpha_lr=0.05)
    net = trainer.actor.net[-1]
    with torch.no_grad():  # pin the policy's spread far below / above the target entropy
        net.weight[2:].zero_()
        span = trainer.actor.config.max_log_std - trainer.actor.config.min_log_std
        unit = 2 * (log_std - trainer.actor.config.min_log_std) / span - 1
        net.bias[2:].fill_(math.atanh(unit))
    before = trainer.alpha
    metrics = trainer.train_iteration()
    assert (metrics["entropy"] < trainer.target_entropy) == (direction > 0)
    assert (trainer.alpha - before) * direction > 0


def test_resume_continues_bit_identically(tmp_path):
    straight, _ = make_trainer(iterations=6, checkpoint_every=2, snapshots=2)
    straight.fit(tmp_path / "straight")
    interrupted, _ = make_trainer(iterations=6, checkpoint_every=2, snapshots=2)
    for _ in range(3):
        interrupted.train_iteration()
    interrupted.save_checkpoint(tmp_path / "resumed")
    resumed, _ = make_trainer(iterations=6, checkpoint_every=2, snapshots=2)
    assert resumed.try_resume(tmp_path / "resumed") and resumed.step == 3
    resumed.fit(tmp_path / "resumed")
    for name, value in straight.actor.state_dict().items():
        torch.testing.assert_close(resumed.actor.state_dict()[name], value, rtol=0, atol=0)
    assert sorted(resumed.snapshots) == sorted(straight.snapshots) == [3 * 256, 6 * 256]


def test_non_finite_objective_stops_with_a_clear_error():
    trainer, _ = make_trainer()
    with torch.no_grad():
        trainer.actor.net[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="policy iteration 0"):
        trainer.train_iteration()


def test_config_rejects_more_snapshots_than_iterations():
    with pytest.raises(ValueError, match="snapshots"):
        FoGConfig(iterations=2, snapshots=3)
