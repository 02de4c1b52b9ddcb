"""The world model learns a toy world: a bright square moved by a continuous action.

Frames are 16x16; each action in [-1, 1]^2 moves the square by round(2 * a) pixels per
axis (clipped at the walls), so the next frame depends on the action, not only on the
past frames. Short CPU training runs (tens of seconds): the checks have wide margins.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fog_pipeline.core.world_model import (
    Denoiser,
    DenoiserConfig,
    RewardModel,
    RewardModelConfig,
    to_model,
)

pytestmark = pytest.mark.slow

SIZE, SQUARE, MAX_SHIFT = 16, 4, 2
MAX_POS = SIZE - SQUARE
CONTEXT = 2


def square_windows(count: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` independent windows of ``length`` steps: frames uint8, actions float32."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((count, length, SIZE, SIZE, 3), dtype=np.uint8)
    actions = rng.uniform(-1, 1, size=(count, length, 2)).astype(np.float32)
    pos = rng.integers(0, MAX_POS + 1, size=(count, 2))
    for t in range(length):
        for i, (x, y) in enumerate(pos):
            frames[i, t, y : y + SQUARE, x : x + SQUARE] = 255
        pos = np.clip(pos + np.round(MAX_SHIFT * actions[:, t]).astype(int), 0, MAX_POS)
    return frames, actions


def transitions(count: int, seed: int) -> dict[str, torch.Tensor]:
    """Windows of CONTEXT + 1 frames, split as the training loop does."""
    frames, actions = square_windows(count, CONTEXT + 1, seed)
    frames = to_model(frames)
    return {
        "context_frames": frames[:, :CONTEXT],
        "context_actions": torch.from_numpy(actions[:, :CONTEXT]),
        "next_frame": frames[:, CONTEXT],
    }


def centroid_x(frames: torch.Tensor) -> torch.Tensor:
    """Brightness-weighted column of the square, (B,)."""
    weight = frames.mean(dim=1).clamp_min(0)  # (B, H, W): the square 1, the background 0
    columns = torch.arange(SIZE, dtype=frames.dtype)
    return (weight.sum(dim=1) * columns).sum(dim=1) / weight.sum(dim=(1, 2)).clamp_min(1e-6)


def batches(data: dict[str, torch.Tensor], size: int, steps: int, generator: torch.Generator):
    count = next(value for value in data.values() if value is not None).shape[0]
    for _ in range(steps):
        index = torch.randint(0, count, (size,), generator=generator)
        yield {name: None if value is None else value[index] for name, value in data.items()}


def test_denoiser_learns_action_conditioned_next_frame():
    torch.manual_seed(0)
    config = DenoiserConfig(
        frame_height=SIZE,
        frame_width=SIZE,
        context=CONTEXT,
        block_out_channels=(16, 32),
        norm_num_groups=4,
        action_embed_dim=64,
    )
    model = Denoiser(config)
    train, held_out = transitions(4096, seed=0), transitions(256, seed=1)

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(model.loss(**held_out, generator=torch.Generator().manual_seed(1)))

    before = held_out_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for batch in batches(train, 32, 400, generator):
        loss = model.loss(**batch, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out_loss()
    assert after < 0.3 * before, (before, after)

    with torch.no_grad():
        sampled = model.sample(
            held_out["context_frames"],
            held_out["context_actions"],
            generator=torch.Generator().manual_seed(2),
        )
    target, last = held_out["next_frame"], held_out["context_frames"][:, -1]
    model_mse = float((sampled - target).square().mean())
    copy_mse = float((last - target).square().mean())
    assert model_mse < 0.6 * copy_mse, (model_mse, copy_mse)
    # The square goes where the action sends it: a blurred copy of the last frame would
    # also beat copy-last's MSE, but not its position error.
    model_shift_error = float((centroid_x(sampled) - centroid_x(target)).abs().mean())
    copy_shift_error = float((centroid_x(last) - centroid_x(target)).abs().mean())
    assert model_shift_error < 0.75 * copy_shift_error, (model_shift_error, copy_shift_error)


def test_reward_model_learns_reward_of_next_frame():
    torch.manual_seed(0)
    config = RewardModelConfig(
        frame_height=SIZE,
        frame_width=SIZE,
        frames=2,
        conv_channels=(16, 32),
        norm_num_groups=4,
        pool_size=4,
        hidden=64,
    )
    model = RewardModel(config)

    def data(count: int, seed: int) -> dict[str, torch.Tensor]:
        frames, actions = square_windows(count, 2, seed)
        frames = to_model(frames)
        reward = (centroid_x(frames[:, 1]) - (SQUARE - 1) / 2) / MAX_POS
        return {
            "frames": frames,
            "state": None,
            # Labels that only the next frame shows: how far right the square went.
            "reward": reward,
            "progress": reward.square(),
            "success": torch.zeros(count, dtype=torch.bool),  # no positives
        }

    train, held_out = data(4096, seed=0), data(512, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for batch in batches(train, 64, 300, generator):
        loss, parts = model.loss(**batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.isfinite(value) for value in parts.values())

    with torch.no_grad():
        out = model(held_out["frames"])
    reward, success_logit = out.reward, out.success_logit
    model_mse = float((reward - held_out["reward"]).square().mean())
    mean_mse = float(held_out["reward"].var(unbiased=False))
    assert model_mse < 0.05 * mean_mse, (model_mse, mean_mse)
    assert torch.all(torch.sigmoid(success_logit) < 0.5)
