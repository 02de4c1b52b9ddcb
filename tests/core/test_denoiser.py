"""Denoiser math, sampler contract, checkpoints, EMA and frame conversions (tiny configs)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from fog_pipeline.core.checkpoint import load_model, load_tensors, save_model, save_tensors
from fog_pipeline.core.config import ConfigError, parse_config
from fog_pipeline.core.world_model import (
    EMA,
    Denoiser,
    DenoiserConfig,
    RewardModel,
    RewardModelConfig,
    to_model,
    to_uint8,
)

SIZE, CONTEXT, BATCH = 8, 2, 3
CONFIG = DenoiserConfig(
    frame_height=SIZE,
    frame_width=SIZE,
    context=CONTEXT,
    block_out_channels=(8, 16),
    norm_num_groups=4,
    action_embed_dim=32,
)
REWARD_CONFIG = RewardModelConfig(
    frame_height=SIZE, frame_width=SIZE, conv_channels=(8, 8), norm_num_groups=4, hidden=16
)
STATE_DIM = 4


@pytest.fixture
def model() -> Denoiser:
    torch.manual_seed(0)
    return Denoiser(CONFIG).eval()


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    frames = torch.rand(BATCH, CONTEXT, 3, SIZE, SIZE, generator=generator) * 2 - 1
    actions = torch.rand(BATCH, CONTEXT, 2, generator=generator) * 2 - 1
    return frames, actions


def test_preconditioning_at_sigma_data(model):
    sigma_data = CONFIG.sigma_data
    c_skip, c_out, c_in, c_noise = model.preconditioning(torch.tensor([sigma_data]))
    assert c_skip.item() == pytest.approx(0.5)
    assert c_out.item() == pytest.approx(sigma_data / math.sqrt(2))
    assert c_in.item() == pytest.approx(1 / (sigma_data * math.sqrt(2)))
    assert c_noise.item() == pytest.approx(0.25 * math.log(sigma_data))


def test_preconditioning_limits(model):
    c_skip, c_out, _, c_noise = model.preconditioning(torch.tensor([1e-6, 80.0]))
    assert c_skip[0].item() == pytest.approx(1.0) and c_out[0].item() == pytest.approx(0, abs=1e-5)
    # Large sigma: the network predicts the clean frame itself (scaled by sigma_data).
    assert c_skip[1].item() == pytest.approx(0, abs=1e-4)
    assert c_out[1].item() == pytest.approx(CONFIG.sigma_data, rel=1e-4)
    assert c_noise.tolist() == pytest.approx([0.25 * math.log(1e-6), 0.25 * math.log(80.0)])


def test_karras_sigmas(model):
    sigmas = model.sigmas(5)
    assert sigmas.shape == (6,)
    assert sigmas[0].item() == pytest.approx(CONFIG.sigma_max)
    assert sigmas[-2].item() == pytest.approx(CONFIG.sigma_min)
    assert sigmas[-1].item() == 0
    assert torch.all(sigmas[1:] < sigmas[:-1])
    assert len(model.sigmas()) == CONFIG.sampling_steps + 1
    assert model.sigmas(1).tolist() == pytest.approx([CONFIG.sigma_max, 0.0])


def test_loss_is_finite_and_reproducible(model):
    frames, actions = inputs()
    next_frame = frames[:, -1]
    first = model.loss(next_frame, frames, actions, generator=torch.Generator().manual_seed(3))
    again = model.loss(next_frame, frames, actions, generator=torch.Generator().manual_seed(3))
    assert first.ndim == 0 and torch.isfinite(first)
    assert first.item() == again.item()
    first.backward()
    assert all(p.grad is not None for p in model.action_embedding.parameters())


def test_sample_shape_range_and_randomness(model):
    frames, actions = inputs()
    with torch.no_grad():
        out = model.sample(frames, actions, generator=torch.Generator().manual_seed(0))
        same = model.sample(frames, actions, generator=torch.Generator().manual_seed(0))
        other = model.sample(frames, actions, generator=torch.Generator().manual_seed(1))
        noise = torch.randn(BATCH, 3, SIZE, SIZE)
        fixed = model.sample(frames, actions, noise=noise, steps=2)
        fixed_again = model.sample(frames, actions, noise=noise.clone(), steps=2)
    assert out.shape == (BATCH, 3, SIZE, SIZE)
    assert out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, same)
    assert not torch.equal(out, other)
    assert torch.equal(fixed, fixed_again)


def test_sample_one_step_is_denoiser_at_sigma_max(model):
    frames, actions = inputs()
    noise = torch.randn(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        sampled = model.sample(frames, actions, steps=1, noise=noise)
        direct = model(noise * CONFIG.sigma_max, CONFIG.sigma_max, frames, actions)
    torch.testing.assert_close(sampled, direct.clamp(-1, 1))


def test_gradients_flow_through_sampler_to_actions(model):
    frames, actions = inputs()
    actions.requires_grad_(True)
    out = model.sample(frames, actions, noise=torch.zeros(BATCH, 3, SIZE, SIZE))
    out.sum().backward()
    assert actions.grad is not None and torch.isfinite(actions.grad).all()
    assert actions.grad.abs().sum() > 0


def test_action_stats_normalise_inputs(model):
    frames, actions = inputs()
    noise = torch.randn(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        model.set_action_stats(torch.tensor([0.5, -0.5]), torch.tensor([2.0, 0.0]))
        assert model.action_std.tolist() == [2.0, pytest.approx(1e-3)]  # floored, stays finite
        model.set_action_stats(torch.tensor([0.5, -0.5]), torch.tensor([2.0, 4.0]))
        shifted = model.sample(
            frames, actions * torch.tensor([2.0, 4.0]) + torch.tensor([0.5, -0.5]), noise=noise
        )
        model.set_action_stats(torch.zeros(2), torch.ones(2))
        plain = model.sample(frames, actions, noise=noise)
    torch.testing.assert_close(shifted, plain)


def test_wrong_shapes_are_named(model):
    frames, actions = inputs()
    with pytest.raises(ValueError, match="context_frames"):
        model.sample(frames[:, :1], actions)
    with pytest.raises(ValueError, match="context_actions"):
        model.sample(frames, actions[..., :1])


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(DenoiserConfig, {"contxt": 4}, "world_model.denoiser")
    with pytest.raises(ConfigError, match="sampling_steps"):
        parse_config(DenoiserConfig, {"sampling_steps": 0}, "world_model.denoiser")
    with pytest.raises(ConfigError, match="divisible by norm_num_groups"):
        parse_config(DenoiserConfig, {"block_out_channels": [12, 16]}, "world_model.denoiser")
    with pytest.raises(ConfigError, match="frame size"):
        parse_config(DenoiserConfig, {"frame_height": 30}, "world_model.denoiser")
    config = parse_config(DenoiserConfig, {"block_out_channels": [16, 32]}, "world_model.denoiser")
    assert config.block_out_channels == (16, 32)


def test_attention_variant_runs():
    torch.manual_seed(0)
    model = Denoiser(dataclasses.replace(CONFIG, attention=True))
    frames, actions = inputs()
    assert model.param_count() > Denoiser(CONFIG).param_count()
    assert torch.isfinite(model.loss(frames[:, -1], frames, actions))


def test_works_under_bf16_autocast(model):
    frames, actions = inputs()
    reward_model = RewardModel(REWARD_CONFIG)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(frames[:, -1], frames, actions)
        with torch.no_grad():
            out = model.sample(frames, actions, generator=torch.Generator().manual_seed(0))
        reward_loss, _ = reward_model.loss(
            frames, None, torch.rand(BATCH), torch.rand(BATCH), torch.zeros(BATCH, dtype=torch.bool)
        )
    loss.backward()
    reward_loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(reward_loss)
    assert out.dtype == torch.float32 and out.shape == (BATCH, 3, SIZE, SIZE)
    assert out.min() >= -1 and out.max() <= 1


def test_reward_model_outputs_and_loss():
    torch.manual_seed(0)
    model = RewardModel(REWARD_CONFIG)
    assert sum(p.numel() for p in model.parameters()) < 300_000
    frames, _ = inputs()
    out = model(frames)
    assert out.reward.shape == out.progress.shape == out.success_logit.shape == (BATCH,)
    for label in (out.reward, out.progress):
        assert torch.all((label >= 0) & (label <= 1))
    total, parts = model.loss(
        frames, None, torch.rand(BATCH), torch.rand(BATCH), torch.zeros(BATCH, dtype=torch.bool)
    )
    assert torch.isfinite(total)
    assert set(parts) == {"reward", "progress", "success", "reward_mse", "progress_mse"}
    with pytest.raises(ValueError, match="frames must be"):
        model(frames[:, :1])


def test_reward_model_reads_the_observation_not_the_action():
    """Coverage, progress and success are functions of the scene: with the observation
    fixed, no action can move the prediction (the reward model has no action input), and
    the proprioceptive state, part of the observation, does move it."""
    torch.manual_seed(0)
    config = dataclasses.replace(REWARD_CONFIG, state_dim=STATE_DIM)
    model = RewardModel(config).eval()
    frames, _ = inputs()
    state = torch.rand(BATCH, STATE_DIM) * 2 - 1
    with pytest.raises(TypeError):
        model(frames, state, torch.zeros(BATCH, 2))  # there is no action argument
    with torch.no_grad():
        base, moved = model(frames, state), model(frames, state + 0.5)
    assert not torch.allclose(base.progress, moved.progress)
    with pytest.raises(ValueError, match="state must be"):
        model(frames)


def test_denoiser_is_conditioned_on_past_states():
    torch.manual_seed(0)
    model = Denoiser(dataclasses.replace(CONFIG, state_dim=STATE_DIM)).eval()
    frames, actions = inputs()
    states = torch.rand(BATCH, CONTEXT, STATE_DIM) * 2 - 1
    noise = torch.randn(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        base = model.sample(frames, actions, states, noise=noise)
        shifted = model.sample(frames, actions, states + 0.5, noise=noise)
    assert not torch.allclose(base, shifted)
    with pytest.raises(ValueError, match="context_states must be"):
        model.sample(frames, actions, noise=noise)


def test_default_configs_are_small():
    assert 0.8e6 < Denoiser(DenoiserConfig()).param_count() < 1.5e6
    assert sum(p.numel() for p in RewardModel(RewardModelConfig()).parameters()) < 300_000


def test_checkpoint_round_trip(tmp_path, model):
    torch.manual_seed(1)
    reward_model = RewardModel(REWARD_CONFIG).eval()
    model.set_action_stats(torch.tensor([0.1, -0.2]), torch.tensor([0.5, 0.7]))
    save_model(tmp_path / "denoiser", model, CONFIG)
    save_model(tmp_path / "reward", reward_model, REWARD_CONFIG)
    assert json.loads((tmp_path / "denoiser" / "config.json").read_text())["type"] == "Denoiser"

    loaded = load_model(tmp_path / "denoiser", Denoiser, DenoiserConfig)
    loaded_reward = load_model(tmp_path / "reward", RewardModel, RewardModelConfig)
    assert loaded.config == CONFIG and not loaded.training
    torch.testing.assert_close(loaded.action_std, model.action_std)
    frames, actions = inputs()
    noise = torch.randn(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(
            loaded.sample(frames, actions, noise=noise), model.sample(frames, actions, noise=noise)
        )
        got, want = loaded_reward(frames), reward_model(frames)
        for name in ("reward", "progress", "success_logit"):
            assert torch.equal(getattr(got, name), getattr(want, name))


def test_checkpoint_errors(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path / "nothing", Denoiser, DenoiserConfig)
    save_model(tmp_path / "denoiser", model, CONFIG)
    with pytest.raises(ValueError, match="'Denoiser', not a 'RewardModel'"):
        load_model(tmp_path / "denoiser", RewardModel, RewardModelConfig)
    (tmp_path / "denoiser" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_model(tmp_path / "denoiser", Denoiser, DenoiserConfig)


def test_save_tensors_handles_shared_and_strided(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    tensors = {"base": base, "view": base[:, 1], "transposed": base.t(), "count": torch.tensor(7)}
    save_tensors(tmp_path / "t.safetensors", tensors)
    loaded = load_tensors(tmp_path / "t.safetensors")
    for name, value in tensors.items():
        assert torch.equal(loaded[name], value)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_tensors(tmp_path / "missing.safetensors")


def test_ema_tracks_and_round_trips(tmp_path, model):
    ema = EMA(model, decay=0.9)
    assert ema.current_decay() == pytest.approx(0.1)  # warm-up: (1 + 0) / (10 + 0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
    model.action_std.fill_(3.0)
    before = next(ema.module.parameters()).clone()
    ema.update(model)
    after, target = next(ema.module.parameters()), next(model.parameters())
    torch.testing.assert_close(after, before + 0.9 * (target - before))
    assert torch.equal(ema.module.action_std, model.action_std)
    assert not any(p.requires_grad for p in ema.module.parameters())

    save_tensors(tmp_path / "ema.safetensors", ema.state_dict())
    restored = EMA(Denoiser(CONFIG), decay=0.9)
    restored.load_state_dict(load_tensors(tmp_path / "ema.safetensors"))
    assert restored.num_updates == 1
    fresh = Denoiser(CONFIG)
    restored.copy_to(fresh)
    for got, want in zip(
        fresh.state_dict().values(), ema.module.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want)
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_frame_conversions_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 5, 6, 4, 3), dtype=np.uint8)
    tensor = to_model(frames)
    assert tensor.shape == (2, 5, 3, 6, 4) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert tensor[0, 0, :, 1, 2].tolist() == pytest.approx(
        (frames[0, 0, 1, 2] / 127.5 - 1).tolist()
    )
    np.testing.assert_array_equal(to_uint8(tensor), frames)
    np.testing.assert_array_equal(to_uint8(to_model(torch.from_numpy(frames))), frames)
    read_only = frames.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(to_uint8(to_model(read_only)), frames)
    assert to_uint8(torch.full((3, 2, 2), 5.0)).max() == 255  # clipped, not wrapped
