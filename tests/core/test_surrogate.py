"""The surrogate RSSM, its KL, trainer, replay buffer and gradient-fidelity estimator.

Tiny models only: the whole file runs in seconds on two CPU cores.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.config import ConfigError, parse_config
from fog_pipeline.core.surrogate import (
    RSSM,
    LatentState,
    NonFiniteLossError,
    RSSMConfig,
    SequenceReplay,
    SurrogateTrainer,
    SurrogateTrainingConfig,
    directional_cosine,
    gaussian_kl,
    gradient_cosine,
    jacobian_vector_product,
    kl_loss,
    latent_transition_cosine,
    scalar_fidelity,
    straight_through,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIZE, BATCH, T, A = 8, 3, 5, 2
CONFIG = RSSMConfig(
    frame_height=SIZE,
    frame_width=SIZE,
    action_dim=A,
    deter=16,
    stoch=4,
    hidden=16,
    cnn_depth=4,
    cnn_layers=2,
)


def tiny(seed: int = 0, **overrides) -> RSSM:
    torch.manual_seed(seed)
    config = dataclasses.replace(CONFIG, **overrides)
    return RSSM(config)


def sequence(seed: int = 0, batch: int = BATCH, steps: int = T):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.rand(batch, steps, 3, SIZE, SIZE, generator=gen) * 2 - 1
    actions = torch.rand(batch, steps, A, generator=gen) * 2 - 1
    rewards = torch.rand(batch, steps, generator=gen)
    return frames, actions, rewards


# -- config and shapes -----------------------------------------------------------------
def test_config_validates():
    with pytest.raises(ConfigError, match="surrogate.model.stoch"):
        parse_config(RSSMConfig, {"stoch": 0}, "surrogate.model")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(RSSMConfig, {"stochastic": 3}, "surrogate.model")
    with pytest.raises((ConfigError, ValueError), match="divisible"):
        parse_config(RSSMConfig, {"frame_height": 20, "cnn_layers": 3}, "surrogate.model")


def test_shapes_of_every_entry_point():
    model = tiny().eval()
    frames, actions, rewards = sequence()
    deter, stoch = CONFIG.deter, CONFIG.stoch

    posts, priors = model.observe(frames, actions)
    for states in (posts, priors):
        assert states.h.shape == (BATCH, T, deter)
        assert states.z.shape == states.mean.shape == states.std.shape == (BATCH, T, stoch)
        assert (states.std >= CONFIG.min_std).all()
    # The last action leads outside the window: it may be left out, nothing changes.
    posts_short, _ = model.observe(frames, actions[:, :-1])
    torch.testing.assert_close(posts_short.z, posts.z)
    # Eval mode: posterior z is the mean; priors share the posteriors' h.
    torch.testing.assert_close(posts.z, posts.mean)
    torch.testing.assert_close(priors.h, posts.h)

    state = posts.at(-1)
    assert state.feature().shape == (BATCH, deter + stoch)
    predicted = model.predict(state, actions[:, -1])
    encoded = model.encode_next(state, actions[:, -1], frames[:, 0])
    assert predicted.h.shape == encoded.h.shape == (BATCH, deter)
    assert predicted.z.shape == encoded.z.shape == (BATCH, stoch)
    torch.testing.assert_close(predicted.h, encoded.h)  # the swap only changes z
    torch.testing.assert_close(model.predict(state, actions[:, -1]).z, predicted.z)

    reward = model.reward(state, actions[:, -1])
    assert reward.shape == (BATCH,) and ((reward >= 0) & (reward <= 1)).all()
    next_state, same_reward = model.predict_step(state, actions[:, -1])
    torch.testing.assert_close(same_reward, reward)
    assert model.continuation(state).shape == (BATCH,)
    assert torch.sigmoid(model.continuation(state)).min() > 0.9  # starts at "continues"
    assert model.decode(state).shape == (BATCH, 3, SIZE, SIZE)
    assert model.decode(posts).shape == (BATCH, T, 3, SIZE, SIZE)

    imagined = model.imagine(state, actions)
    assert imagined.h.shape == (BATCH, T, deter) and imagined.z.shape == (BATCH, T, stoch)
    torch.testing.assert_close(imagined.at(0).z, model.predict(state, actions[:, 0]).z)
    assert model.open_loop_mse(frames, actions, context=2).shape == (T - 2,)
    assert model.initial(BATCH).h.abs().sum() == 0


def test_observe_rejects_bad_shapes():
    model = tiny()
    frames, actions, _ = sequence()
    with pytest.raises(ValueError, match="actions must be"):
        model.observe(frames, actions[:, :2])
    with pytest.raises(ValueError, match="frames must be"):
        model.observe(frames.movedim(2, -1), actions)


def test_training_mode_samples_posteriors_reproducibly():
    model = tiny().train()
    frames, actions, _ = sequence()
    one, _ = model.observe(frames, actions, generator=torch.Generator().manual_seed(1))
    two, _ = model.observe(frames, actions, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(one.z, two.z)
    assert not torch.allclose(one.z, one.mean)


def test_loss_parts_and_gradients():
    model = tiny().train()
    frames, actions, rewards = sequence()
    total, parts = model.loss(frames, actions, rewards)
    assert set(parts) >= {"recon", "kl", "kl_loss", "reward_bce", "cont_bce", "reward_mse"}
    assert math.isfinite(total.item())
    total.backward()
    assert model.reward_head[0].weight.grad.abs().sum() > 0
    assert model.cell.linear.weight.grad.abs().sum() > 0
    # With T-1 actions the transitions (and their rewards) are one fewer.
    total_short, _ = model.loss(frames, actions[:, :-1], rewards[:, :-1])
    assert math.isfinite(total_short.item())
    with pytest.raises(ValueError, match="rewards must be"):
        model.loss(frames, actions, rewards[:, :-1])


def test_change_weighted_reconstruction_weighs_only_the_pixels_that_moved():
    plain, weighted = tiny().eval(), tiny(recon_change_weight=5.0).eval()
    frames, actions, rewards = sequence()
    still = frames[:, :1].expand_as(frames).contiguous()
    # Nothing moves: every weight is 1 and the loss is the plain one (up to the order
    # of the sums, which differs between CPU kernels).
    assert torch.allclose(
        plain.loss(still, actions, rewards)[1]["recon"],
        weighted.loss(still, actions, rewards)[1]["recon"],
        rtol=1e-6,
    )

    # One pixel changes between frames 1 and 2 by 1.0 in every channel: its squared error
    # in frame 2 counts 1 + 5 * 1.0 = 6 times, everything else once.
    moved = still.clone()
    moved[:, 2:, :, 3, 4] += 1.0
    posts, _ = plain.observe(moved, actions, sample=False)
    error = (plain.decode(posts) - moved).square()
    error[:, 2, :, 3, 4] *= 6.0
    expected = error.sum((-3, -2, -1)).mean()
    got = weighted.loss(moved, actions, rewards)[1]["recon"]
    assert torch.allclose(got, expected, rtol=1e-5)
    assert got > plain.loss(moved, actions, rewards)[1]["recon"]


def test_continuation_head_cannot_shape_the_latent():
    model = tiny(recon_weight=0.0, kl_scale=0.0, reward_weight=0.0).train()
    frames, actions, rewards = sequence()
    total, _ = model.loss(frames, actions, rewards, continues=torch.zeros_like(rewards))
    total.backward()
    assert model.cont_head[0].weight.grad.abs().sum() > 0
    assert model.cell.linear.weight.grad is None or model.cell.linear.weight.grad.abs().sum() == 0


def test_straight_through_takes_value_and_gradient_apart():
    grad_z = torch.randn(2, 3, requires_grad=True)
    gradient = LatentState(torch.zeros(2, 4), grad_z * 2)
    value = LatentState(torch.ones(2, 4), torch.full((2, 3), 7.0))
    swapped = straight_through(value, gradient)
    torch.testing.assert_close(swapped.z, value.z)
    torch.testing.assert_close(swapped.h, value.h)
    swapped.z.sum().backward()
    torch.testing.assert_close(grad_z.grad, torch.full((2, 3), 2.0))


# -- KL with balancing and free nats ---------------------------------------------------
def _gaussians(gap: float, batch: int = 4, dims: int = 3):
    post_mean = torch.full((batch, dims), gap, requires_grad=True)
    prior_mean = torch.zeros(batch, dims, requires_grad=True)
    std = torch.ones(batch, dims)
    return post_mean, std, prior_mean, std  # KL per sample = dims * gap^2 / 2


def test_kl_below_free_nats_is_a_flat_floor():
    post_mean, post_std, prior_mean, prior_std = _gaussians(gap=0.1)  # KL = 0.015
    loss, kl = kl_loss(post_mean, post_std, prior_mean, prior_std, free_nats=1.0, balance=0.8)
    assert kl.item() == pytest.approx(0.015, rel=1e-4)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert post_mean.grad.abs().sum() == 0 and prior_mean.grad.abs().sum() == 0


def test_kl_above_free_nats_tracks_kl_and_splits_the_gradient():
    post_mean, post_std, prior_mean, prior_std = _gaussians(gap=2.0)  # KL = 6
    loss, kl = kl_loss(post_mean, post_std, prior_mean, prior_std, free_nats=1.0, balance=0.8)
    assert loss.item() == pytest.approx(kl.item()) == pytest.approx(6.0)
    loss.backward()
    # d KL / d post_mean = gap = 2 per element, averaged over 4 samples: 0.5 each.
    torch.testing.assert_close(prior_mean.grad, torch.full_like(prior_mean, -0.8 * 0.5))
    torch.testing.assert_close(post_mean.grad, torch.full_like(post_mean, 0.2 * 0.5))


def test_free_nats_per_sample_versus_batch():
    post_mean = torch.tensor([[0.0], [2.0]], requires_grad=True)  # KLs 0 and 2
    prior_mean, std = torch.zeros(2, 1), torch.ones(2, 1)
    per_sample, kl = kl_loss(post_mean, std, prior_mean, std, 1.5, 0.8, per_sample=True)
    batch, _ = kl_loss(post_mean, std, prior_mean, std, 1.5, 0.8, per_sample=False)
    assert kl.item() == pytest.approx(1.0)
    assert per_sample.item() == pytest.approx((1.5 + 2.0) / 2)  # each sample clamped
    assert batch.item() == pytest.approx(1.5)  # the mean (1.0) is under the budget
    (grad,) = torch.autograd.grad(batch, post_mean)
    assert grad.abs().sum() == 0  # batch mode: the sample above 1.5 goes unpunished
    (grad,) = torch.autograd.grad(per_sample, post_mean)
    assert grad[0] == 0 and grad[1] > 0


# -- learning a toy sequence -----------------------------------------------------------
def moving_bar(batch: int, steps: int, gen: torch.Generator):
    """A bright column that the action moves one pixel left or right (deterministic)."""
    moves = torch.randint(0, 2, (batch, steps), generator=gen) * 2 - 1
    column = torch.randint(0, SIZE, (batch,), generator=gen)
    frames = -torch.ones(batch, steps, 3, SIZE, SIZE)
    rewards = torch.empty(batch, steps)
    for t in range(steps):
        frames[torch.arange(batch), t, :, :, column] = 1.0  # a full column: a strong signal
        column = (column + moves[:, t]).clamp(0, SIZE - 1)
        rewards[:, t] = column / (SIZE - 1)  # describes the next frame
    actions = torch.stack([moves.float(), torch.zeros(batch, steps)], dim=-1)
    return {"frames": frames, "actions": actions, "rewards": rewards}


def test_prior_learns_to_predict_the_posterior_on_a_toy_sequence():
    torch.manual_seed(0)
    config = RSSMConfig(
        frame_height=SIZE, frame_width=SIZE, deter=32, stoch=4, hidden=32, cnn_depth=8, cnn_layers=2
    )
    model = RSSM(config)
    trainer = SurrogateTrainer(model, SurrogateTrainingConfig(lr=3e-3), seed=0)
    held_out = moving_bar(32, 6, torch.Generator().manual_seed(99))

    def measure():
        with torch.no_grad():
            posts, priors = model.eval().observe(held_out["frames"], held_out["actions"])
            kl = gaussian_kl(posts.mean, posts.std, priors.mean, priors.std).mean(0)  # (T,)
            gap = (posts.mean[:, 1:] - priors.mean[:, 1:]).square().sum(-1).mean()
            spread = posts.mean[:, 1:].var(dim=(0, 1)).sum()  # how informative z is
            errors = model.open_loop_mse(held_out["frames"], held_out["actions"], context=1)
        return trainer.evaluate(held_out), kl, float(gap / spread), errors

    before, _, _, errors_before = measure()
    gen = torch.Generator().manual_seed(0)
    for _ in range(250):
        trainer.train_step(moving_bar(16, 6, gen))
    after, kl, relative_gap, errors_after = measure()

    # (Thresholds hold with margin for seeds 0-4; this test uses seed 0.)
    assert after["recon"] < 0.05 * before["recon"]
    assert after["reward_mse"] < 0.1 * before["reward_mse"]
    # At t = 0 the prior knows nothing of where the bar is; afterwards it predicts the
    # posterior from the past and the actions alone, and z is not collapsed.
    assert kl[1:].mean() < 0.3 * kl[0]
    assert relative_gap < 0.35
    assert errors_after.max() < 0.4 * errors_before.min()  # open-loop frames stay right


# -- gradient fidelity -----------------------------------------------------------------
def _linear(matrix: torch.Tensor):
    return lambda x: x @ matrix.T


def test_fidelity_of_identical_linear_maps_is_one():
    gen = torch.Generator().manual_seed(0)
    matrix = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    cos = directional_cosine(_linear(matrix), _linear(matrix), x, v)
    torch.testing.assert_close(cos, torch.ones(4, dtype=torch.float64))
    cos = directional_cosine(_linear(matrix), _linear(-matrix), x, v)
    torch.testing.assert_close(cos, -torch.ones(4, dtype=torch.float64))


def test_fidelity_of_orthogonal_maps_is_zero():
    x, v = torch.randn(4, 2), torch.randn(4, 2)
    first = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # output along e1
    second = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # output along e2
    cos = directional_cosine(_linear(first), _linear(second), x, v)
    torch.testing.assert_close(cos, torch.zeros(4), atol=1e-6, rtol=0)


def test_fidelity_of_a_smooth_function_with_itself_by_finite_differences():
    def smooth(x):
        return torch.stack([torch.sin(3 * x).sum(-1), (x**3).prod(-1), torch.tanh(x[:, 0])], -1)

    gen = torch.Generator().manual_seed(1)
    x, v = torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen)
    cos = directional_cosine(smooth, smooth, x, v, eps=1e-3)
    assert cos.min() > 0.999
    exact = jacobian_vector_product(smooth, x, v)[1]
    twice = jacobian_vector_product(smooth, x, v, method="forward")[1]
    torch.testing.assert_close(exact, twice)


def test_scalar_and_gradient_fidelity():
    def scalar(x):
        return torch.sin(x).sum(-1) + x[:, 0] ** 2

    gen = torch.Generator().manual_seed(2)
    x, v = torch.randn(16, 2, generator=gen), torch.randn(16, 2, generator=gen)
    same = scalar_fidelity(scalar, scalar, x, v)
    assert same["sign_agreement"] == 1.0
    assert same["cosine"] == pytest.approx(1.0, abs=1e-4)
    assert same["scale_ratio"] == pytest.approx(1.0, abs=1e-3)
    flipped = scalar_fidelity(scalar, lambda x: -scalar(x), x, v)
    assert flipped["sign_agreement"] == 0.0 and flipped["cosine"] == pytest.approx(-1.0, abs=1e-4)
    assert gradient_cosine(scalar, scalar, x).min() > 0.999
    assert gradient_cosine(scalar, lambda x: -scalar(x), x).max() < -0.999


def test_latent_transition_fidelity_against_the_surrogates_own_decoder():
    """With G := the surrogate's own decoder of its prediction, the encoded frame follows
    predict wherever the autoencoder is good; the estimator runs end to end on the model."""
    model = tiny().eval()
    frames, actions, _ = sequence()
    posts, _ = model.observe(frames, actions)
    state = posts.at(-1)

    def next_observation(action):  # a deterministic stand-in for WorldModel.step(..., noise=...)
        return model.decode(model.predict(state, action)), None

    cos = latent_transition_cosine(
        model, state, actions[:, 0], next_observation, torch.randn(BATCH, A)
    )
    assert cos.shape == (BATCH,) and torch.isfinite(cos).all()
    assert ((cos >= -1 - 1e-5) & (cos <= 1 + 1e-5)).all()


# -- checkpoints and training mechanics ------------------------------------------------
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = tiny()
    model.set_action_stats(torch.tensor([0.1, -0.2]), torch.tensor([0.5, 0.0]))
    save_model(tmp_path / "surrogate", model, model.config)
    loaded = load_model(tmp_path / "surrogate", RSSM, RSSMConfig)
    model.eval()
    frames, actions, _ = sequence()
    torch.testing.assert_close(loaded.action_std, model.action_std)
    posts, priors = model.observe(frames, actions)
    posts2, priors2 = loaded.observe(frames, actions)
    torch.testing.assert_close(posts2.z, posts.z)
    torch.testing.assert_close(priors2.mean, priors.mean)
    state = posts.at(-1)
    torch.testing.assert_close(
        loaded.reward(state, actions[:, 0]), model.reward(state, actions[:, 0])
    )
    torch.testing.assert_close(loaded.decode(state), model.decode(state))


def test_trainer_accepts_data_and_model_layouts_alike():
    frames, actions, rewards = sequence(batch=2)
    pixels = ((frames + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    as_float = pixels.float() / 127.5 - 1.0
    results = []
    for batch_frames in (pixels.movedim(2, -1).numpy(), as_float):
        trainer = SurrogateTrainer(tiny(), SurrogateTrainingConfig(), seed=3)
        batch = {"frames": batch_frames, "actions": actions.numpy(), "rewards": rewards}
        results.append(trainer.train_step(batch)["loss"])
    assert results[0] == pytest.approx(results[1], rel=1e-5)


def test_nan_guard_raises_and_leaves_weights_alone():
    model = tiny()
    trainer = SurrogateTrainer(model, SurrogateTrainingConfig(), seed=0)
    frames, actions, rewards = sequence()
    frames[0, 1, 0, 0, 0] = float("nan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="surrogate step 0"):
        trainer.train_step({"frames": frames, "actions": actions, "rewards": rewards})
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert trainer.step == 0


def test_resume_matches_an_uninterrupted_run(tmp_path):
    config = SurrogateTrainingConfig(steps=4)
    batches = [
        {k: v for k, v in zip(("frames", "actions", "rewards"), sequence(seed=i), strict=True)}
        for i in range(4)
    ]
    straight = SurrogateTrainer(tiny(), config, seed=5)
    for batch in batches:
        straight.train_step(batch)

    first = SurrogateTrainer(tiny(), config, seed=5)
    for batch in batches[:2]:
        first.train_step(batch)
    first.save_checkpoint(tmp_path / "ckpt")
    resumed = SurrogateTrainer(tiny(seed=1), config, seed=5)  # other initial weights
    assert resumed.try_resume(tmp_path / "ckpt") and resumed.step == 2
    for batch in batches[2:]:
        resumed.train_step(batch)
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value)

    other = SurrogateTrainer(tiny(), SurrogateTrainingConfig(steps=4, lr=1e-3), seed=5)
    assert not other.try_resume(tmp_path / "ckpt")  # another configuration: start afresh


# -- replay buffer ---------------------------------------------------------------------
def _sequences(start: int, count: int, steps: int = 3) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + count)
    return {
        "frames": np.broadcast_to(
            (ids % 256).astype(np.uint8)[:, None, None, None, None], (count, steps, 2, 2, 3)
        ).copy(),
        "actions": np.repeat(ids[:, None, None], steps, 1).repeat(A, 2).astype(np.float32),
        "rewards": np.repeat(ids[:, None], steps, 1).astype(np.float32),
    }


def _stored_ids(replay: SequenceReplay) -> set[int]:
    return {int(x) for x in replay.storage["rewards"][: len(replay), 0]}


def test_replay_wraps_around_and_keeps_the_newest():
    replay = SequenceReplay(capacity=5, seed=0)
    replay.add(_sequences(0, 3))
    assert len(replay) == 3 and _stored_ids(replay) == {0, 1, 2}
    replay.add(_sequences(3, 4))
    assert len(replay) == 5 and _stored_ids(replay) == {2, 3, 4, 5, 6}
    replay.add(_sequences(7, 12))  # more than the capacity at once
    assert len(replay) == 5 and _stored_ids(replay) == {14, 15, 16, 17, 18}
    assert replay.added == 19
    assert (replay.storage["continues"] == 1).all()  # absent continues mean "continues"
    assert replay.storage["frames"].dtype == torch.uint8


def test_replay_sampling_is_seeded_and_consistent():
    def filled(seed):
        replay = SequenceReplay(capacity=50, seed=seed)
        replay.add(_sequences(0, 30))
        return replay

    one, two = filled(7).sample(16), filled(7).sample(16)
    for key in one:
        torch.testing.assert_close(one[key], two[key])
    assert not torch.equal(one["rewards"], filled(8).sample(16)["rewards"])
    # Every entry of a sampled row belongs to the same stored sequence.
    ids = one["rewards"][:, 0]
    torch.testing.assert_close(one["actions"][:, 0, 0], ids)
    assert one["frames"].shape == (16, 3, 2, 2, 3)
    assert set(ids.long().tolist()) <= set(range(30))


def test_replay_rejects_mismatched_batches():
    replay = SequenceReplay(capacity=4)
    with pytest.raises(ValueError, match="empty"):
        replay.sample(2)
    replay.add(_sequences(0, 2))
    with pytest.raises(ValueError, match="'frames' must be"):
        replay.add(_sequences(2, 2, steps=4))
    with pytest.raises(KeyError, match="lacks"):
        replay.add({"frames": np.zeros((1, 3, 2, 2, 3), np.uint8)})


class Interrupt(Exception):
    pass


def test_fit_on_sequences_resumes_like_an_uninterrupted_run(tmp_path):
    gen = torch.Generator().manual_seed(4)
    sequences = {  # frames hold one step more than the actions (the rollout layout)
        "frames": (torch.rand(6, 7, SIZE, SIZE, 3, generator=gen) * 255).to(torch.uint8).numpy(),
        "actions": torch.rand(6, 6, A, generator=gen).numpy(),
        "rewards": torch.rand(6, 6, generator=gen).numpy(),
    }
    config = SurrogateTrainingConfig(
        steps=4, batch_size=2, sequence_length=3, checkpoint_every=2, log_every=1
    )
    batch = SurrogateTrainer(tiny(), config, seed=0, data=sequences).sample_batch()
    assert batch["frames"].shape == (2, 4, SIZE, SIZE, 3) and batch["actions"].shape == (2, 3, A)

    straight = SurrogateTrainer(tiny(), config, seed=0, data=sequences)
    straight.fit(tmp_path / "straight")

    def stop_at_three(step, metrics):
        assert math.isfinite(metrics["loss"])
        if step == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        SurrogateTrainer(tiny(), config, seed=0, data=sequences).fit(
            tmp_path / "run", on_metrics=stop_at_three
        )
    resumed = SurrogateTrainer(tiny(seed=2), config, seed=0, data=sequences)
    resumed.fit(tmp_path / "run")
    assert resumed.step == 4 and not resumed.model.training
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value)


def test_batches_from_a_training_set(make_episode):
    from fog_pipeline.core.episodes.cleaning import Segment
    from fog_pipeline.core.episodes.training_set import build_training_set

    segments = []
    for i in range(3):
        episode = make_episode(12, seed=i)
        success = episode.success.copy()
        success[-1] = True
        segments.append(
            Segment(f"ep{i}", 0, episode.frames, episode.actions, episode.rewards, success)
        )
    meta = {"fps": 10.0, "action_low": [-1.0, -1.0], "action_high": [1.0, 1.0]}
    data = build_training_set(segments, val_fraction=0.0, seed=0, meta=meta)
    config = SurrogateTrainingConfig(batch_size=64, sequence_length=4)
    trainer = SurrogateTrainer(tiny(), config, seed=0, data=data)
    batch = trainer.sample_batch()
    assert batch["frames"].shape == (64, 4, SIZE, SIZE, 3) and batch["frames"].dtype == np.uint8
    assert batch["actions"].shape == (64, 4, A) and batch["rewards"].shape == (64, 4)
    assert set(np.unique(batch["continues"])) == {0.0, 1.0}  # success ends an episode
    assert math.isfinite(trainer.train_step(batch)["loss"])
    with pytest.raises(ValueError, match="sequence_length"):
        SurrogateTrainer(
            tiny(), SurrogateTrainingConfig(sequence_length=13), seed=0, data=data
        ).sample_batch()
