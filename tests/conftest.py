"""Shared fixtures. Tests never touch the project's data/ folder: they work in tmp_path."""

from __future__ import annotations

import os

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
if "PYTEST_XDIST_WORKER" in os.environ:
    # Parallel workers share the cores: one thread each (also for the `kedro`/`dvc`
    # subprocesses they start), or OpenMP threads wait on each other and every op slows.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fog_pipeline.core.episodes.schema import SCHEMA_VERSION, Episode  # noqa: E402


def synthetic_episode(length: int = 30, seed: int = 0, fps: float = 10.0) -> Episode:
    """A schema-valid episode whose frames all differ (a bright dot moving on noise)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, size=(length, 8, 8, 3), dtype=np.uint8)
    frames[np.arange(length), np.arange(length) % 8, 0, :] = 255
    return Episode(
        frames=frames,
        actions=rng.uniform(-1, 1, size=(length, 2)).astype(np.float32),
        rewards=rng.uniform(0, 1, size=length).astype(np.float32),
        success=np.zeros(length, dtype=bool),
        timestamps=np.arange(length, dtype=np.float64) / fps,
        attrs={
            "schema_version": SCHEMA_VERSION,
            "fps": fps,
            "backend": "synthetic",
            "task": "test",
            "seed": seed,
            "action_low": np.array([-1.0, -1.0], dtype=np.float32),
            "action_high": np.array([1.0, 1.0], dtype=np.float32),
        },
    )


@pytest.fixture
def make_episode():
    return synthetic_episode


class LatentBox(gym.Env):
    """Any env with a 6-wide latent observation and a 2-D action box: PPO needs one to
    build (it is never stepped)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(6, np.float32), {}

    def step(self, action):
        return np.zeros(6, np.float32), 0.0, True, False, {}


@pytest.fixture
def latent_box():
    return LatentBox


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP
    threads waiting on each other slow every op down by orders of magnitude. Spawned
    training processes inherit the setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
