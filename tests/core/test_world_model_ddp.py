"""Data-parallel world-model training (``processes`` > 1) with two gloo processes on the
CPU: it trains like one process with the same global batch, resumes, and reports a
process's error in the parent. Tiny models, 8 steps; every 2-process run spawns two
fresh interpreters (a few seconds each)."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_world import random_training_set, tiny_world_model

from fog_pipeline.core.config import ConfigError, parse_config
from fog_pipeline.core.distributed import assert_identical, run_processes
from fog_pipeline.core.world_model.model import WorldModel
from fog_pipeline.core.world_model.training import (
    NonFiniteLossError,
    WorldModelTrainer,
    WorldModelTrainingConfig,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
CPU = torch.device("cpu")
# Two processes against one: the same global batch and random streams, so the runs
# differ only by floating-point summation order (per-rank means, then the average).
ATOL = 1e-5


@pytest.fixture(scope="module")
def data():
    return random_training_set(episodes=6, length=16, val_fraction=0.34)


def tiny_model() -> WorldModel:
    # Two channels per GroupNorm group: with one, the conv bias before it has no gradient
    # at all, and Adam turns the rounding noise of that zero into full-size steps of a
    # weight that changes nothing, which a weight comparison would flag.
    return tiny_world_model(reward_channels=(8,))


def trainer(data, processes: int, **overrides) -> WorldModelTrainer:
    config = WorldModelTrainingConfig(
        steps=8,
        batch_size=4,
        warmup_steps=2,
        checkpoint_every=4,
        log_every=2,
        precision="fp32",
        processes=processes,
        **overrides,
    )
    return WorldModelTrainer(tiny_model(), data, config, seed=0, device=CPU)


def weights(run: WorldModelTrainer) -> dict[str, torch.Tensor]:
    modules = {
        "denoiser": run.model.denoiser,
        "reward": run.model.reward_model,
        "state": run.model.state_model,
        "ema": run.ema.module,
    }
    return {
        f"{name}.{key}": value
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }


@pytest.fixture(scope="module")
def two_processes(data, tmp_path_factory):
    """An uninterrupted 2-process run: the trainer, its logged metrics, its checkpoint."""
    checkpoint = tmp_path_factory.mktemp("ddp") / "checkpoint"
    run, logged = trainer(data, 2), []
    run.fit(checkpoint, lambda step, metrics: logged.append((step, metrics)))
    return run, logged, checkpoint


def test_two_processes_train_like_one_with_the_same_global_batch(data, two_processes):
    """Each rank trains on its half of every global batch (windows and loss noise, drawn
    from the shared random streams); averaged gradients make the two halves one step of
    the whole batch. The run compares its ranks' weights and EMA bitwise (an all-gather)
    before it returns; here it must also match one process to ATOL in fp32."""
    two, logged_two, checkpoint = two_processes
    logged_one = []
    one = trainer(data, 1)
    one.fit(None, lambda step, metrics: logged_one.append((step, metrics)))
    assert two.step == one.step == 8
    for key, value in weights(one).items():
        torch.testing.assert_close(weights(two)[key], value, rtol=0, atol=ATOL, msg=key)
    # Metrics reach the parent's callback, averaged over the ranks: the global batch's.
    assert [step for step, _ in logged_two] == [step for step, _ in logged_one] == [2, 4, 6, 8]
    for (_, want), (_, got) in zip(logged_one, logged_two, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=ATOL), key
    # Rank 0 wrote the one checkpoint, in the single-process format.
    assert sorted(p.name for p in checkpoint.iterdir()) == ["state.json", "state.safetensors"]
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 8


class Interrupt(Exception):
    pass


def test_interrupted_two_process_run_resumes_to_the_same_weights(data, two_processes, tmp_path):
    reference, _, _ = two_processes

    def kill_at_step_6(step, metrics):
        if step == 6:
            raise Interrupt

    checkpoint = tmp_path / "checkpoint"
    with pytest.raises(Interrupt):
        trainer(data, 2).fit(checkpoint, kill_at_step_6)
    assert trainer(data, 1).try_resume(checkpoint), "any process count resumes it"
    resumed = trainer(data, 2)
    assert resumed.try_resume(checkpoint) and resumed.step == 4
    logged = []
    resumed.fit(checkpoint, lambda step, metrics: logged.append(step))
    assert logged == [6, 8]
    for key, value in weights(reference).items():
        torch.testing.assert_close(weights(resumed)[key], value, rtol=0, atol=0, msg=key)


def test_a_process_error_is_raised_in_the_parent_with_its_traceback(data, tmp_path):
    # A first step this large breaks the weights: every rank sees the averaged NaN loss.
    with pytest.raises(NonFiniteLossError, match="at world-model step 1") as caught:
        trainer(data, 2, lr=1e10).fit(tmp_path / "checkpoint")
    note = "\n".join(caught.value.__notes__)
    assert "Raised in data-parallel training process" in note and "train_step" in note
    assert not (tmp_path / "checkpoint").exists(), "no checkpoint of the broken weights"


def _diverging(rank: int, device: torch.device, channel) -> None:
    assert_identical([torch.full((3,), float(rank))], "test tensors")


def test_ranks_that_end_with_different_weights_are_an_error():
    with pytest.raises(RuntimeError, match="ended with different test tensors"):
        run_processes(_diverging, 2, CPU)


def test_batch_size_must_split_evenly_between_the_processes():
    with pytest.raises(ConfigError, match=r"batch_size \(6\) is the global batch"):
        parse_config(
            WorldModelTrainingConfig, {"batch_size": 6, "processes": 4}, "world_model.training"
        )
    assert parse_config(WorldModelTrainingConfig, {"batch_size": 8, "processes": 4}, "w")
