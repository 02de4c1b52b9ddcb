"""The shared checkpoint machinery (fingerprint, ResumableTrainer, run_training_loop) on a
toy trainer, and PPOTrainer's resume on a tiny world model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from tiny_world import random_training_set, tiny_rssm, tiny_world_model

from fog_pipeline.core.baselines.ppo import PPOConfig
from fog_pipeline.core.baselines.training import PPOTrainer
from fog_pipeline.core.training_state import ResumableTrainer, fingerprint, run_training_loop
from fog_pipeline.core.world_model.env import WorldModelEnv


@dataclass
class ToyConfig:
    steps: int = 8
    lr: float = 0.1
    checkpoint_every: int = 3
    log_every: int = 2


class Interrupt(Exception):
    pass


class ToyTrainer(ResumableTrainer):
    """A linear fit whose every step draws from both random streams."""

    label = "toy training"

    def __init__(self, config: ToyConfig, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.config, self.device = config, torch.device("cpu")
        self.model = torch.nn.Linear(3, 1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.fingerprint = fingerprint({"config": config, "seed": seed})
        self.loads = 0

    def _checkpoint_modules(self):
        return {"model": self.model.state_dict()}

    def _checkpoint_loaders(self):
        def load(state):
            self.loads += 1
            self.model.load_state_dict(state)

        return {"model": load}

    def _checkpoint_optimizers(self):
        return {"optim": self.optimizer}

    def train_step(self) -> dict[str, float]:
        x = torch.randn(4, 3, generator=self.generator)
        target = torch.as_tensor(self.rng.normal(size=(4, 1)), dtype=torch.float32)
        loss = (self.model(x) - target).square().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return {"loss": loss.item()}

    def fit(self, checkpoint_dir, on_metrics=None) -> None:
        self._resume_for_fit(checkpoint_dir)
        run_training_loop(
            self, self.train_step, checkpoint_dir, on_metrics, "toy", lambda m: {}, progress=False
        )


def test_fingerprint_hashes_configs_by_their_fields_in_any_key_order():
    config = ToyConfig()
    parts = {"config": config, "seed": 0, "data": {"b": 1, "a": (2, 3)}}
    # The formula every trainer used before it was shared: old checkpoints still resume.
    legacy = json.dumps(
        {**parts, "config": dataclasses.asdict(config)}, sort_keys=True, default=str
    )
    assert fingerprint(parts) == hashlib.sha256(legacy.encode()).hexdigest()[:16]
    assert fingerprint(dict(reversed(parts.items()))) == fingerprint(parts)
    assert fingerprint({**parts, "config": ToyConfig(lr=0.2)}) != fingerprint(parts)


def test_interrupted_toy_training_resumes_to_the_same_weights(tmp_path):
    straight = ToyTrainer(ToyConfig())
    straight.fit(tmp_path / "straight")

    def stop_at_4(step, metrics):
        if step == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        ToyTrainer(ToyConfig()).fit(tmp_path / "ckpt", stop_at_4)
    resumed = ToyTrainer(ToyConfig(), seed=0)
    assert resumed.try_resume(tmp_path / "ckpt") and resumed.step == 3
    resumed.fit(tmp_path / "ckpt")
    assert resumed.loads == 1, "fit() does not load the checkpoint the caller resumed"
    assert resumed.step == 8
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


def test_finished_or_foreign_checkpoints_start_afresh(tmp_path):
    ToyTrainer(ToyConfig()).fit(tmp_path / "ckpt")
    finished = ToyTrainer(ToyConfig())
    assert not finished.try_resume(tmp_path / "ckpt") and finished.step == 0
    longer = ToyTrainer(ToyConfig(steps=12))
    assert not longer.try_resume(tmp_path / "ckpt"), "another setup's checkpoint"
    longer.load_checkpoint(tmp_path / "ckpt")  # unconditionally
    assert longer.step == 8 and longer.loads == 1


# -- PPO -------------------------------------------------------------------------------
NUM_ENVS, ROLLOUT = 2, 2  # 4 transitions per rollout
BUDGET, SNAPSHOT_AT = 8, [4, 8]


@pytest.fixture(scope="module")
def tiny_world():
    data = random_training_set(episodes=3, length=10, val_fraction=0.34)
    return tiny_world_model(sampling_steps=1), data


def ppo_trainer(tiny_world, lr: float = 3e-4) -> PPOTrainer:
    model, data = tiny_world
    torch.manual_seed(0)
    surrogate = tiny_rssm(width=8)
    env = WorldModelEnv(model, data, NUM_ENVS, max_steps=3, seed=0)
    config = PPOConfig(n_steps=ROLLOUT, batch_size=2, n_epochs=1, hidden=(8,), learning_rate=lr)
    trainer = PPOTrainer(env, surrogate, config, seed=0, budget=BUDGET, snapshot_at=SNAPSHOT_AT)
    trainer.keep_snapshot(0)
    return trainer


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=0, msg=key)


def test_ppo_resumes_from_its_last_snapshot(tiny_world, tmp_path, one_torch_thread):
    """An interrupted PPO run resumes the last snapshot's weights and optimiser, keeps the
    snapshots taken before the interruption (equal to an uninterrupted run's), and ends at
    the same budget with the same snapshot points. The weights after the resume differ
    from an uninterrupted run's: the imagined environments restart from fresh contexts,
    the rollout collected before the checkpoint is not trained on again, and sb3's own
    random draws are not checkpointed (see core.baselines.training)."""
    straight = ppo_trainer(tiny_world)
    straight.fit(tmp_path / "straight")
    assert straight.step == straight.transitions == BUDGET
    assert sorted(straight.snapshots) == [0, *SNAPSHOT_AT]

    def stop_before_the_second_snapshot(rollout, metrics):
        if metrics["transitions"] >= SNAPSHOT_AT[1]:
            raise Interrupt

    checkpoint = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        ppo_trainer(tiny_world).fit(checkpoint, stop_before_the_second_snapshot)
    assert not ppo_trainer(tiny_world, lr=1e-3).try_resume(checkpoint), "another setup's"
    resumed = ppo_trainer(tiny_world)
    assert resumed.try_resume(checkpoint) and resumed.step == SNAPSHOT_AT[0]
    # The policy is the one the checkpoint's snapshot was taken from.
    assert_same(resumed.snapshots[SNAPSHOT_AT[0]], resumed.actor().state_dict())
    for transitions in (0, SNAPSHOT_AT[0]):
        assert_same(straight.snapshots[transitions], resumed.snapshots[transitions])
    resumed.fit(checkpoint)
    assert resumed.step == resumed.transitions == BUDGET
    assert sorted(resumed.snapshots) == [0, *SNAPSHOT_AT]
    assert json.loads((checkpoint / "state.json").read_text())["step"] == BUDGET

    assert not ppo_trainer(tiny_world).try_resume(checkpoint), "a finished run starts afresh"
