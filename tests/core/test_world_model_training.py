"""World-model training mechanics: resume, NaN guard, the next-state model, and the
batched environment (with proprioception, as on Push-T)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_world import STATE_DIM, tiny_world_model

from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.episodes.training_set import build_training_set
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.core.world_model.reward import RewardModelConfig
from fog_pipeline.core.world_model.training import (
    NonFiniteLossError,
    WorldModelTrainer,
    WorldModelTrainingConfig,
)

CPU = torch.device("cpu")


def integrated_actions(actions: np.ndarray) -> np.ndarray:
    """A proprioceptive state that follows the commands, like Push-T's pusher target:
    state[t] is read before actions[t] is executed."""
    moved = np.cumsum(actions * 0.1, axis=0)[:-1]
    return np.clip(np.concatenate([np.zeros_like(actions[:1]), moved]), -1, 1).astype(np.float32)


@pytest.fixture
def tiny_data(make_episode):
    segments = []
    for i in range(6):
        e = make_episode(20, seed=i)
        state = integrated_actions(e.actions)
        segments.append(
            Segment(f"ep{i}", 0, e.frames, e.actions, e.rewards, e.success, state, e.rewards)
        )
    meta = {
        "fps": 10.0,
        "action_low": [-1.0, -1.0],
        "action_high": [1.0, 1.0],
        "state_names": ["x", "y"],
    }
    return build_training_set(segments, val_fraction=0.34, seed=0, meta=meta)


def tiny_model(seed: int = 0, state_dim: int = STATE_DIM) -> WorldModel:
    return tiny_world_model(seed=seed, state_dim=state_dim)


def trainer(data, steps=12, **overrides) -> WorldModelTrainer:
    config = WorldModelTrainingConfig(
        steps=steps, batch_size=4, warmup_steps=2, checkpoint_every=4, log_every=2, **overrides
    )
    return WorldModelTrainer(tiny_model(), data, config, seed=0, device=CPU)


def _weights(model: WorldModel) -> dict[str, torch.Tensor]:
    return {
        **{f"d.{k}": v for k, v in model.denoiser.state_dict().items()},
        **{f"r.{k}": v for k, v in model.reward_model.state_dict().items()},
        **{f"s.{k}": v for k, v in model.state_model.state_dict().items()},
    }


class Interrupt(Exception):
    pass


def test_interrupted_training_resumes_to_the_same_weights(tiny_data, tmp_path):
    reference = trainer(tiny_data).fit(tmp_path / "uninterrupted")

    def kill_at_step_6(step, metrics):
        if step == 6:
            raise Interrupt

    checkpoint = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        trainer(tiny_data).fit(checkpoint, kill_at_step_6)
    resumed = trainer(tiny_data)
    assert resumed.try_resume(checkpoint) and resumed.step == 4
    logged = []
    final = resumed.fit(checkpoint, lambda step, metrics: logged.append(step))
    assert logged == [6, 8, 10, 12]
    for key, value in _weights(reference).items():
        torch.testing.assert_close(_weights(final)[key], value, rtol=0, atol=0, msg=key)


def test_only_unfinished_runs_of_the_same_setup_resume(tiny_data, tmp_path):
    run = trainer(tiny_data, steps=4)
    run.step = 2
    run.save_checkpoint(tmp_path / "ckpt")
    assert not trainer(tiny_data, steps=4, lr=1e-3).try_resume(tmp_path / "ckpt")
    assert trainer(tiny_data, steps=4).try_resume(tmp_path / "ckpt")
    trainer(tiny_data, steps=4).fit(tmp_path / "ckpt")
    finished = trainer(tiny_data, steps=4)
    assert not finished.try_resume(tmp_path / "ckpt"), "a finished run is not resumed"
    assert finished.step == 0


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(tiny_data, tmp_path, monkeypatch):
    run = trainer(tiny_data, steps=8)
    calls = {"n": 0}
    original = run.model.denoiser.loss

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = original(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(run.model.denoiser, "loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="denoiser_loss at world-model step 5"):
        run.fit(tmp_path / "ckpt")
    fresh = trainer(tiny_data, steps=8)
    assert fresh.try_resume(tmp_path / "ckpt") and fresh.step == 4


def test_state_model_learns_the_next_state(tiny_data):
    """G predicts the next proprioceptive state; training lowers its error well below
    holding the last state."""
    run = trainer(tiny_data, steps=100, reward_lr=3e-3)
    context = run.context
    starts = tiny_data.window_starts("val", context + 1)
    windows = tiny_data.windows(starts, context + 1)
    states = torch.as_tensor(windows["state"])
    actions = torch.as_tensor(windows["actions"])

    def error() -> float:
        with torch.no_grad():
            predicted = run.model.state_model(states[:, :context], actions[:, :context])
        return float((predicted - states[:, context]).square().sum(-1).mean())

    hold = float((states[:, context - 1] - states[:, context]).square().sum(-1).mean())
    before = error()
    run.fit(None)
    assert error() < 0.3 * min(before, hold)


def test_world_model_bundle_round_trips_with_state(tiny_data, tmp_path):
    model = tiny_model().eval()
    model.save(tmp_path / "wm")
    loaded = WorldModel.load(tmp_path / "wm")
    assert loaded.state_dim == STATE_DIM and loaded.state_model is not None
    frames = torch.rand(3, 2, 3, 8, 8) * 2 - 1
    actions, states = torch.rand(3, 2, 2), torch.rand(3, 2, STATE_DIM)
    noise = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        got, want = (
            loaded.step(frames, actions, states, noise),
            model.step(frames, actions, states, noise),
        )
    for name in ("frame", "state", "reward", "progress", "success_logit"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    with pytest.raises(ValueError, match="agree on state_dim"):
        WorldModel.create(
            model.denoiser.config, RewardModelConfig(frame_height=8, frame_width=8), [0.0], [1.0]
        )


def test_one_sampler_setting_for_everything_the_policy_touches(tiny_data):
    """The policy's environments step G with its own sampler setting, the one the
    fidelity report measures: there is no per-consumer override."""
    import inspect

    assert "sampling_steps" not in inspect.signature(WorldModelEnv).parameters
    model = tiny_model().eval()
    env = WorldModelEnv(model, tiny_data, num_envs=2, seed=0)
    env.reset()
    frames, states = env.frames.clone(), env.states.clone()
    actions = torch.zeros(2, 2)
    context_actions = torch.cat([env.past_actions, actions[:, None]], dim=1)
    generator = torch.Generator().manual_seed(7)
    env.generator = torch.Generator().manual_seed(7)
    out = env.step(actions)
    with torch.no_grad():
        noise = torch.randn(2, 3, 8, 8, generator=generator)
        expected = model.denoiser.sample(
            frames, context_actions, states, steps=model.denoiser.config.sampling_steps, noise=noise
        )
    torch.testing.assert_close(out.frame, expected)


def test_env_reset_step_and_partial_reset(tiny_data):
    env = WorldModelEnv(tiny_model(), tiny_data, num_envs=5, max_steps=3, seed=1)
    first = env.reset()
    assert first.shape == (5, 3, 8, 8) and first.min() >= -1 and first.max() <= 1
    assert env.state.shape == (5, STATE_DIM)
    out = env.step(torch.full((5, 2), 5.0))  # clipped to the robot's bounds
    assert out.frame.shape == (5, 3, 8, 8) and out.state.shape == (5, STATE_DIM)
    torch.testing.assert_close(env.state, out.state)
    assert out.reward.shape == (5,) and torch.all((out.reward >= 0) & (out.reward <= 1))
    torch.testing.assert_close(env.past_actions[:, -1], torch.ones(5, 2))
    torch.testing.assert_close(env.observation, out.frame)
    env.step(torch.zeros(5, 2))
    assert torch.all(env.step(torch.zeros(5, 2)).truncated)
    before = env.frames.clone()
    mask = torch.tensor([True, False, False, False, True])
    env.reset(mask)
    assert torch.equal(env.frames[~mask], before[~mask])
    assert env.steps.tolist() == [0, 3, 3, 3, 0]


def test_env_is_seedable(tiny_data):
    def rollout(seed):
        env = WorldModelEnv(tiny_model(), tiny_data, num_envs=3, seed=seed)
        env.reset()
        return torch.stack([env.step(torch.zeros(3, 2)).frame for _ in range(2)])

    assert torch.equal(rollout(3), rollout(3))
    assert not torch.equal(rollout(3), rollout(4))


def test_env_step_can_be_differentiated(tiny_data):
    env = WorldModelEnv(tiny_model(), tiny_data, num_envs=2, seed=0)
    env.reset()
    actions = torch.zeros(2, 2, requires_grad=True)
    out = env.step(actions, differentiable=True)
    out.reward.sum().backward()
    assert actions.grad is not None and torch.all(torch.isfinite(actions.grad))
    assert np.abs(actions.grad.numpy()).sum() > 0
