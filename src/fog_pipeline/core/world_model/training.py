"""Training of the global world model (denoiser, state and reward models) on cleaned windows.

All models learn from the same windows of L+1 steps: the denoiser with one optimiser,
the reward model and the next-state model (when the robot logs proprioception) with
another. Training is
resumable: every ``checkpoint_every`` steps the whole state (weights, EMA, optimisers,
random streams, step) is written atomically, as safetensors + JSON, to the checkpoint
directory; a rerun with the same configuration and data continues from there, and ends
with the same weights as an uninterrupted run.

With ``processes`` > 1, ``fit`` trains data-parallel in that many spawned processes (see
:mod:`fog_pipeline.core.distributed`). ``batch_size`` stays the global batch: every step
draws it from the shared random streams exactly as one process would, and rank r trains
on its r-th slice of the rows and of the loss noise; gradients are averaged over the
ranks before clipping, so all ranks take the same step and keep the same weights and
EMA. The result equals a single-process run up to floating-point reduction order, and a
checkpoint resumes with any number of processes. Rank 0 alone checkpoints and reports.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.device import autocast
from fog_pipeline.core.distributed import (
    Channel,
    assert_identical,
    average,
    average_metrics,
    run_processes,
)
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.training_state import ResumableTrainer, fingerprint, run_training_loop
from fog_pipeline.core.world_model.ema import EMA
from fog_pipeline.core.world_model.frames import to_model
from fog_pipeline.core.world_model.model import WorldModel

log = logging.getLogger(__name__)

MetricsCallback = Callable[[int, dict[str, float]], None]


@dataclass
class WorldModelTrainingConfig:
    __pydantic_config__ = STRICT_KEYS

    steps: Annotated[int, Field(ge=1)] = 2500
    batch_size: Annotated[int, Field(ge=1)] = 32
    lr: Annotated[float, Field(gt=0)] = 3e-4
    warmup_steps: Annotated[int, Field(ge=0)] = 100
    weight_decay: Annotated[float, Field(ge=0)] = 1e-2
    grad_clip: Annotated[float, Field(gt=0)] = 1.0
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.999
    reward_lr: Annotated[float, Field(gt=0)] = 1e-3
    checkpoint_every: Annotated[int, Field(ge=1)] = 250
    log_every: Annotated[int, Field(ge=1)] = 25
    # bf16 autocast pays off only on CPUs with native bf16 (AVX-512 BF16/AMX) and on GPUs;
    # "auto" picks it there and fp32 elsewhere.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Data-parallel processes: one per GPU on CUDA (from the configured one on), else CPU
    # processes sharing the cores. batch_size is the global batch, split evenly.
    processes: Annotated[int, Field(ge=1)] = 1

    def __post_init__(self) -> None:
        if self.batch_size % self.processes:
            raise ValueError(
                f"batch_size ({self.batch_size}) is the global batch and must split evenly "
                f"between the {self.processes} processes"
            )


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; the last checkpoint is intact."""


def _lr_factor(step: int, config: WorldModelTrainingConfig) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0)))


def batch_from_windows(windows: dict[str, np.ndarray], context: int, reward_frames: int, device):
    """Split windows of context+1 steps into denoiser, state- and reward-model inputs.

    The labels logged after a_t (index ``context - 1``) describe frame and state t+1."""
    frames = to_model(windows["frames"]).to(device)  # (B, L+1, 3, H, W)
    actions = torch.as_tensor(windows["actions"], device=device)
    states = torch.as_tensor(windows["state"], device=device)  # (B, L+1, P), P may be 0
    labels = {
        name: torch.as_tensor(np.asarray(windows[key][:, context - 1]), device=device)
        for name, key in (("reward", "rewards"), ("progress", "progress"), ("success", "success"))
    }
    return {
        "context_frames": frames[:, :context],
        "context_actions": actions[:, :context],
        "context_states": states[:, :context],
        "next_frame": frames[:, context],
        "next_state": states[:, context],
        "reward_frames": frames[:, context + 1 - reward_frames :],
        "reward": labels["reward"].float(),
        "progress": labels["progress"].float(),
        "success": labels["success"].float(),
    }


class WorldModelTrainer(ResumableTrainer):
    """Owns the models, optimisers and random streams of one training run."""

    label = "world-model training"

    def __init__(
        self,
        model: WorldModel,
        training_set: TrainingSet,
        config: WorldModelTrainingConfig,
        seed: int,
        device: torch.device,
    ):
        self.model, self.data, self.config, self.device = model, training_set, config, device
        self.context = model.denoiser.config.context
        self.reward_frames = model.reward_model.config.frames
        self.window = self.context + 1
        self.starts = training_set.window_starts("train", self.window)
        if len(self.starts) == 0:
            raise ValueError(
                f"No training window of {self.window} steps: segments are shorter than the "
                "world model's context + 1. Lower world_model.denoiser.context or raise "
                "episodes.cleaning.min_segment_length."
            )
        self.ema = EMA(model.denoiser, decay=config.ema_decay)
        self.optimizer = torch.optim.AdamW(
            model.denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.reward_optimizer = torch.optim.AdamW(self.head_parameters(), lr=config.reward_lr)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device).manual_seed(seed)
        self.step = 0
        state_model = model.state_model
        self.fingerprint = fingerprint(
            {
                "denoiser": model.denoiser.config,
                "reward": model.reward_model.config,
                "state": None if state_model is None else state_model.config,
                # The process count does not change the run (see the module's doc).
                "training": {k: v for k, v in asdict(config).items() if k != "processes"},
                "data": training_set.meta,
                "n": len(training_set),
                "seed": seed,
            }
        )
        # One rank of a data-parallel group (inside ``fit``'s processes), or the only one.
        rank, self.world_size = (
            (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        )
        rows = config.batch_size // self.world_size
        self.rows = slice(rank * rows, (rank + 1) * rows)

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """The reward model's and the state model's parameters: one optimiser."""
        heads = [self.model.reward_model, self.model.state_model]
        return [p for module in heads if module is not None for p in module.parameters()]

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"denoiser": self.model.denoiser, "reward": self.model.reward_model}
        if self.model.state_model is not None:
            modules["state"] = self.model.state_model
        return modules

    # -- checkpointing -----------------------------------------------------------------
    def _checkpoint_modules(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            **{name: module.state_dict() for name, module in self._modules().items()},
            "ema": self.ema.state_dict(),
        }

    def _checkpoint_loaders(self) -> dict[str, Callable]:
        return {
            **{name: module.load_state_dict for name, module in self._modules().items()},
            "ema": self.ema.load_state_dict,
        }

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim": self.optimizer, "reward_optim": self.reward_optimizer}

    # -- training ----------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        starts = self.rng.choice(self.starts, size=self.config.batch_size)[self.rows]
        batch = batch_from_windows(
            self.data.windows(starts, self.window), self.context, self.reward_frames, self.device
        )
        draws = self.model.denoiser.loss_noise(
            batch["next_frame"], self.config.batch_size, self.generator
        )
        factor = _lr_factor(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor
        with autocast(self.device, self.config.precision):
            with_state = self.model.state_dim > 0
            loss = self.model.denoiser.loss(
                batch["next_frame"],
                batch["context_frames"],
                batch["context_actions"],
                batch["context_states"] if with_state else None,
                noise=tuple(draw[self.rows] for draw in draws),
            )
            next_state = batch["next_state"] if with_state else None
            reward_loss, reward_parts = self.model.reward_model.loss(
                batch["reward_frames"],
                next_state,
                batch["reward"],
                batch["progress"],
                batch["success"],
            )
            metrics = {"denoiser_loss": loss.item()}
            if self.model.state_model is not None:
                state_loss = self.model.state_model.loss(
                    batch["context_states"], batch["context_actions"], batch["next_state"]
                )
                metrics["state_mse"] = state_loss.item()
                reward_loss = reward_loss + state_loss
        metrics["reward_loss"] = reward_loss.item()
        metrics.update(
            reward_bce=float(reward_parts["reward"]),
            progress_bce=float(reward_parts["progress"]),
            success_bce=float(reward_parts["success"]),
            reward_mse=float(reward_parts["reward_mse"]),
            progress_mse=float(reward_parts["progress_mse"]),
        )
        if self.world_size > 1:
            # The global batch's means, the same on every rank: all stop together on NaN.
            metrics = average_metrics(metrics, self.device)
        bad = [name for name, value in metrics.items() if not math.isfinite(value)]
        if bad:
            raise NonFiniteLossError(
                f"Non-finite {', '.join(bad)} at world-model step {self.step}. The last "
                "checkpoint is intact; lower world_model.training.lr (or reward_lr) and rerun."
            )
        for optimizer, value, params in (
            (self.optimizer, loss, list(self.model.denoiser.parameters())),
            (self.reward_optimizer, reward_loss, self.head_parameters()),
        ):
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if self.world_size > 1:
                average([p.grad for p in params if p.grad is not None])
            metrics_key = "grad_norm" if optimizer is self.optimizer else "reward_grad_norm"
            metrics[metrics_key] = float(
                torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            )
            optimizer.step()
        self.ema.update(self.model.denoiser)
        metrics["lr"] = self.config.lr * factor
        self.step += 1
        return metrics

    def fit(self, checkpoint_dir: Path | None, on_metrics: MetricsCallback | None = None):
        """Train to ``config.steps``, resuming from and checkpointing to ``checkpoint_dir``."""
        self._resume_for_fit(checkpoint_dir)
        if self.config.processes == 1:
            self._train(checkpoint_dir, on_metrics)
        else:
            self._train_in_processes(checkpoint_dir, on_metrics)
        self.ema.copy_to(self.model.denoiser)
        return self.model.eval()

    def _train(
        self, checkpoint_dir: Path | None, on_metrics: MetricsCallback | None, progress=True
    ) -> None:
        for module in self.model.modules():
            module.train()
        run_training_loop(
            self,
            self.train_step,
            checkpoint_dir,
            on_metrics,
            "world model",
            lambda m: {"loss": f"{m['denoiser_loss']:.4f}"},
            progress,
        )

    def _train_in_processes(
        self, checkpoint_dir: Path | None, on_metrics: MetricsCallback | None
    ) -> None:
        """Train in ``config.processes`` processes that start from this trainer's state
        and hand theirs back at the end."""
        with tempfile.TemporaryDirectory(prefix="fog-world-model-") as tmp:
            handoff = Path(tmp)
            self.save_checkpoint(handoff / "start")
            # The architecture travels pickled, on the CPU (a CUDA tensor would unpickle onto
            # this GPU in every process); the state travels on disk.
            model = copy.deepcopy(self.model).to(torch.device("cpu"))
            run_processes(
                _train_process,
                self.config.processes,
                self.device,
                args=(model, self.data, self.config, self.seed, checkpoint_dir, handoff),
                on_message=None if on_metrics is None else lambda item: on_metrics(*item),
            )
            self.load_checkpoint(handoff / "end")


def _train_process(
    rank: int,
    device: torch.device,
    channel: Channel,
    model: WorldModel,
    data: TrainingSet,
    config: WorldModelTrainingConfig,
    seed: int,
    checkpoint_dir: Path | None,
    handoff: Path,
) -> None:
    """One rank of ``WorldModelTrainer.fit``: rank 0 alone reports, checkpoints and
    hands the final state back."""
    trainer = WorldModelTrainer(model.to(device), data, config, seed, device)
    trainer.load_checkpoint(handoff / "start")
    lead = rank == 0
    trainer._train(
        checkpoint_dir if lead else None,
        (lambda step, metrics: channel.send((step, metrics))) if lead else None,
        progress=lead,
    )
    modules = [*trainer._modules().values(), trainer.ema.module]
    assert_identical([t for m in modules for t in m.state_dict().values()], "world-model weights")
    if lead:
        trainer.save_checkpoint(handoff / "end")
