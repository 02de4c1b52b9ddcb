"""The deployable bundle (FoG's and PPO's) and the PPO-to-bundle conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_world import tiny_bundle

import fog_pipeline
from fog_pipeline.core.baselines.ppo import PPOConfig, ppo_actor
from fog_pipeline.core.io import old_path
from fog_pipeline.core.policy.bundle import DeployedPolicy, PolicyInfo

SIZE = 8


def bundle(seed: int = 0, state_names: tuple[str, ...] = ()) -> DeployedPolicy:
    return tiny_bundle([-2.0, 0.0], [2.0, 1.0], state_names, seed, SIZE, transitions=123)


def test_bundle_acts_on_frame_and_proprioception(tmp_path):
    names = ("agent_x", "agent_y")
    policy = bundle(state_names=names)
    policy.save(tmp_path / "policy")
    loaded = fog_pipeline.load_policy(tmp_path / "policy")
    assert loaded.info.state_names == names
    frame = frames(1)[0]
    actions = []
    for state in ([0.1, -0.2], [0.9, 0.9]):
        loaded.reset()
        actions.append(loaded.act(frame, np.array(state, dtype=np.float32)))
    assert not np.array_equal(*actions), "the state must reach the latent"
    policy.reset()
    np.testing.assert_array_equal(policy.act(frame, np.array([0.9, 0.9])), actions[1])
    with pytest.raises(ValueError, match="needs the robot's state"):
        loaded.act(frame)
    with pytest.raises(ValueError, match="2 finite floats"):
        loaded.act(frame, np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="trained without proprioception"):
        bundle().act(frame, np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="do not match"):
        DeployedPolicy(bundle().surrogate, bundle().actor, PolicyInfo("fog", 0, (8, 8, 3), names))


def frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(count)]


def test_bundle_round_trip_acts_identically_and_respects_bounds(tmp_path):
    policy = bundle()
    policy.save(tmp_path / "policy")
    loaded = fog_pipeline.load_policy(tmp_path / "policy")
    assert loaded.info == policy.info
    for candidate in (policy, loaded):
        candidate.reset()
    for frame in frames(5):
        action, again = policy.act(frame), loaded.act(frame)
        np.testing.assert_array_equal(action, again)
        assert -2.0 <= action[0] <= 2.0 and 0.0 <= action[1] <= 1.0
    # The filter carries state: the same frame acts differently mid-episode than first.
    policy.reset()
    first = policy.act(frames(1)[0])
    policy.act(frames(2)[1])
    assert not np.array_equal(policy.act(frames(1)[0]), first)


def test_load_policy_recovers_a_bundle_left_mid_swap(tmp_path):
    """A crash between atomic_dir's two renames leaves only the .old copy: the direct
    loader (no Kedro dataset in between) must put it back, not report a missing bundle."""
    policy, path = bundle(), tmp_path / "policy"
    policy.save(path)
    path.rename(old_path(path))
    loaded = fog_pipeline.load_policy(path)
    assert path.is_dir() and not old_path(path).exists()
    policy.reset()
    loaded.reset()
    np.testing.assert_array_equal(policy.act(frames(1)[0]), loaded.act(frames(1)[0]))


def test_bundle_refuses_frames_it_was_not_trained_on(tmp_path):
    policy = bundle()
    with pytest.raises(ValueError, match=r"uint8 \(8, 8, 3\)"):
        policy.act(np.zeros((16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        policy.act(np.zeros((SIZE, SIZE, 3), dtype=np.float32))
    with pytest.raises(FileNotFoundError, match="kedro run --pipeline=policy"):
        fog_pipeline.load_policy(tmp_path / "nothing")


def test_ppo_actor_reproduces_sb3_deterministic_actions(latent_box):
    from stable_baselines3 import PPO

    config = PPOConfig(hidden=(8, 8))
    model = PPO(
        "MlpPolicy",
        latent_box(),
        n_steps=4,
        batch_size=4,
        policy_kwargs={
            "net_arch": {"pi": list(config.hidden), "vf": list(config.hidden)},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": config.log_std_init,
        },
        seed=0,
    )
    with torch.no_grad():  # move the weights away from the orthogonal init
        for parameter in model.policy.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    actor = ppo_actor(model, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    observations = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32) * 3
    expected, _ = model.predict(observations, deterministic=True)
    with torch.no_grad():
        got = actor.mode(torch.as_tensor(observations)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.any(np.abs(expected) == 1.0), "some actions should hit the clip"
    torch.testing.assert_close(actor.log_std, model.policy.log_std)
