"""Training of the surrogate: one optimiser step on a batch of sequences, from anywhere.

:meth:`SurrogateTrainer.train_step` takes a batch of sequences and nothing else, so the
same step serves offline distillation (windows of the cleaned data, rollouts of the
global model) and FoG's online updates from a :class:`SequenceReplay` of the global
model's own transitions. :meth:`SurrogateTrainer.fit` is the offline loop over a
:class:`TrainingSet`, resumable like the world model's: every ``checkpoint_every``
steps the whole state (weights, optimiser, random streams, step) is written
atomically as safetensors + JSON, and a rerun with the same configuration, data and
seed continues from there.

Batches are dicts of (B, T, ...) tensors or arrays: ``frames`` uint8 (B, T, H, W, 3) in
the data layout, or float (B, T, 3, H, W) in [-1, 1] in the model layout; ``actions``
(B, T', A) with T' = T or T - 1; ``rewards`` (B, T'); optional ``continues`` (B, T')
(1 - terminal; ones when absent); ``proprio`` (B, T, P), the robot's proprioception,
when the surrogate has ``proprio_dim`` > 0. The surrogate's reward is the reward the
policy optimises: the dense task-progress label.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.surrogate.rssm import RSSM
from fog_pipeline.core.training_state import ResumableTrainer, fingerprint, run_training_loop
from fog_pipeline.core.world_model.frames import to_model

# One error type for every training loop: a caller catches world-model and surrogate
# divergence alike.
from fog_pipeline.core.world_model.training import NonFiniteLossError

log = logging.getLogger(__name__)

MetricsCallback = Callable[[int, dict[str, float]], None]
Batch = Mapping[str, torch.Tensor | np.ndarray]

REQUIRED_KEYS = ("frames", "actions", "rewards")


@dataclass
class SurrogateTrainingConfig:
    """Optimisation of the surrogate (``surrogate.training``)."""

    __pydantic_config__ = STRICT_KEYS

    steps: Annotated[int, Field(ge=1)] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 16
    sequence_length: Annotated[int, Field(ge=2)] = 16  # T of the windows fit() draws
    lr: Annotated[float, Field(gt=0)] = 3e-4
    adam_eps: Annotated[float, Field(gt=0)] = 1e-5
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    warmup_steps: Annotated[int, Field(ge=0)] = 0  # linear warm-up; constant lr after
    # The reconstruction term sums squared error over pixels (hundreds early on): the
    # clip bounds outliers, not every step.
    grad_clip: Annotated[float, Field(gt=0)] = 100.0
    checkpoint_every: Annotated[int, Field(ge=1)] = 250
    log_every: Annotated[int, Field(ge=1)] = 25


def prepare_batch(batch: Batch, device: torch.device | str) -> dict[str, torch.Tensor]:
    """Tensors on ``device``: frames float (B, T, 3, H, W) in [-1, 1], the rest float32."""
    missing = [key for key in REQUIRED_KEYS if key not in batch]
    if missing:
        raise KeyError(f"surrogate batch lacks {missing}; it has {sorted(batch)}")
    frames = _tensor(batch["frames"])
    if frames.dtype == torch.uint8:
        frames = to_model(frames, device)
    else:
        frames = frames.to(device=device, dtype=torch.float32)
    out = {"frames": frames}
    for key in ("actions", "rewards", "continues", "proprio"):
        if key in batch:
            out[key] = _tensor(batch[key]).to(device=device, dtype=torch.float32)
    return out


def _tensor(value: Any) -> torch.Tensor:
    """A tensor view of an array (copying read-only memory maps) or tensor."""
    if isinstance(value, np.ndarray):
        value = value if value.flags.writeable else np.array(value)
        return torch.from_numpy(value)
    return torch.as_tensor(value)


def batch_from_windows(windows: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A surrogate batch from :meth:`TrainingSet.windows`: rewards are the progress
    labels, continues = 1 - success."""
    return {
        "frames": windows["frames"],
        "actions": windows["actions"],
        "rewards": windows["progress"],
        "continues": 1.0 - windows["success"].astype(np.float32),
        "proprio": windows["state"],
    }


def _lr_factor(step: int, config: SurrogateTrainingConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    return 1.0


class SurrogateTrainer(ResumableTrainer):
    """Owns the optimiser and random streams of one surrogate.

    ``data`` is needed only by :meth:`sample_batch` / :meth:`fit` (and enters the resume
    fingerprint): a :class:`TrainingSet` (windows of the cleaned data) or a dict of
    (N, T, ...) sequence arrays in the batch format (e.g. world-model rollouts). FoG's
    online updates call :meth:`train_step` with replay batches and pass none.
    """

    label = "surrogate training"

    def __init__(
        self,
        model: RSSM,
        config: SurrogateTrainingConfig,
        seed: int,
        device: torch.device | str = "cpu",
        data: TrainingSet | Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.model, self.config, self.data = model, config, data
        if isinstance(data, Mapping):
            missing = [key for key in REQUIRED_KEYS if key not in data]
            if missing:
                raise KeyError(f"surrogate sequences lack {missing}; they have {sorted(data)}")
        self.device = torch.device(device)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, eps=config.adam_eps, weight_decay=config.weight_decay
        )
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.step = 0
        self.fingerprint = fingerprint(
            {"model": model.config, "training": config, "data": self._describe_data(), "seed": seed}
        )

    def _describe_data(self) -> dict[str, Any] | None:
        """What the fingerprint knows of ``data``."""
        if self.data is None:
            return None
        if isinstance(self.data, TrainingSet):
            return {"meta": self.data.meta, "n": len(self.data)}
        # Sequences: their shapes and a digest of the (small) labels.
        digest = hashlib.sha256()
        for key in ("actions", "rewards"):
            digest.update(np.ascontiguousarray(self.data[key]).tobytes())
        shapes = {key: list(np.shape(value)) for key, value in self.data.items()}
        return {"shapes": shapes, "digest": digest.hexdigest()}

    # -- checkpointing -----------------------------------------------------------------
    def _checkpoint_modules(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"model": self.model.state_dict()}

    def _checkpoint_loaders(self) -> dict[str, Callable]:
        return {"model": self.model.load_state_dict}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim": self.optimizer}

    # -- training ----------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimiser step on ``batch`` (see the module docstring); returns metrics.

        Raises :class:`NonFiniteLossError` before touching the weights when the loss or
        the gradient norm is NaN or infinite.
        """
        tensors = prepare_batch(batch, self.device)
        factor = _lr_factor(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor
        self.model.train()
        loss, parts = self.model.loss(
            tensors["frames"],
            tensors["actions"],
            tensors["rewards"],
            tensors.get("continues"),
            generator=self.generator,
            proprio=tensors.get("proprio"),
        )
        metrics = {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
        self._guard(metrics)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        )
        self._guard({"grad_norm": grad_norm})
        self.optimizer.step()
        metrics["grad_norm"] = grad_norm
        metrics["lr"] = self.config.lr * factor
        self.step += 1
        return metrics

    def _guard(self, metrics: dict[str, float]) -> None:
        bad = [name for name, value in metrics.items() if not math.isfinite(value)]
        if bad:
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"Non-finite {', '.join(bad)} at surrogate step {self.step}. The weights "
                "were not updated and the last checkpoint is intact; lower "
                "surrogate.training.lr (or grad_clip) and rerun."
            )

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, float]:
        """The loss parts on ``batch`` in eval mode (posterior means), without a step."""
        tensors = prepare_batch(batch, self.device)
        was_training = self.model.training
        self.model.eval()
        loss, parts = self.model.loss(
            tensors["frames"],
            tensors["actions"],
            tensors["rewards"],
            tensors.get("continues"),
            proprio=tensors.get("proprio"),
        )
        self.model.train(was_training)
        return {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}

    def sample_batch(self, split: str = "train") -> dict[str, np.ndarray]:
        """``batch_size`` sequences of ``data``, drawn with ``self.rng`` (resumable).

        From a training set: windows of ``sequence_length`` steps inside ``split``'s
        segments. From sequence arrays: random rows, each cropped at a random offset to
        ``sequence_length`` steps when longer (``split`` is ignored).
        """
        if self.data is None:
            raise ValueError("This trainer has no data to draw batches from.")
        length = self.config.sequence_length
        if not isinstance(self.data, TrainingSet):
            return self._sample_sequences(self.data, length)
        starts = self.data.window_starts(split, length)
        if len(starts) == 0:
            raise ValueError(
                f"No {split!r} window of {length} steps: segments are shorter than "
                "surrogate.training.sequence_length. Lower it or raise "
                "episodes.cleaning.min_segment_length."
            )
        chosen = self.rng.choice(starts, size=self.config.batch_size)
        return batch_from_windows(self.data.windows(chosen, length))

    def _sample_sequences(
        self, sequences: Mapping[str, np.ndarray], length: int
    ) -> dict[str, np.ndarray]:
        count, steps = np.shape(sequences["rewards"])[:2]
        rows = self.rng.integers(0, count, size=self.config.batch_size)
        if steps <= length:
            return {key: np.asarray(value[rows]) for key, value in sequences.items()}
        # Frames may hold one step more than the actions (T' = T - 1): crop alike.
        offsets = self.rng.integers(0, steps - length + 1, size=self.config.batch_size)
        index = offsets[:, None] + np.arange(length)[None, :]
        batch = {}
        for key, value in sequences.items():
            value = np.asarray(value[rows])
            extra = value.shape[1] - steps  # 1 for frames in the T' = T - 1 layout
            window = index if extra <= 0 else offsets[:, None] + np.arange(length + extra)
            batch[key] = np.take_along_axis(
                value, window.reshape(window.shape + (1,) * (value.ndim - 2)), axis=1
            )
        return batch

    def fit(
        self,
        checkpoint_dir: str | Path | None = None,
        on_metrics: MetricsCallback | None = None,
        next_batch: Callable[[], Batch] | None = None,
    ) -> RSSM:
        """Train to ``config.steps``, resuming from and checkpointing to ``checkpoint_dir``.

        Batches come from ``next_batch`` when given (e.g. a :class:`SequenceReplay` of
        world-model rollouts), else from :meth:`sample_batch` of ``data``; a resumed run
        repeats an uninterrupted one exactly only with the latter (``self.rng`` is part of
        the checkpoint, an outside source's state is not). The model comes back in eval mode.
        """
        next_batch = self.sample_batch if next_batch is None else next_batch
        checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self._resume_for_fit(checkpoint_dir)
        run_training_loop(
            self,
            lambda: self.train_step(next_batch()),
            checkpoint_dir,
            on_metrics,
            "surrogate",
            lambda m: {"loss": f"{m['loss']:.3g}", "kl": f"{m['kl']:.3g}"},
        )
        return self.model.eval()


class SequenceReplay:
    """A fixed-capacity ring buffer of short sequences, sampled uniformly with replacement.

    ``add`` takes a batch of N sequences as a dict of (N, T, ...) arrays or tensors with
    at least ``frames``, ``actions`` and ``rewards`` (``continues`` defaults to ones of
    the rewards' shape); the first call fixes the keys, shapes and dtypes (store frames
    as uint8 to save 4x memory). When full, the oldest sequences are overwritten.
    ``sample`` draws with the buffer's own seeded generator unless given one.
    """

    def __init__(self, capacity: int, seed: int = 0, device: torch.device | str = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.storage: dict[str, torch.Tensor] = {}
        self.size = 0
        self.cursor = 0  # where the next sequence goes
        self.added = 0  # sequences ever added

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Mapping[str, Any]) -> None:
        missing = [key for key in REQUIRED_KEYS if key not in batch]
        if missing:
            raise KeyError(f"replay batch lacks {missing}; it has {sorted(batch)}")
        items = {key: _tensor(value).detach().to(self.device) for key, value in batch.items()}
        if "continues" not in items:
            items["continues"] = torch.ones_like(items["rewards"], dtype=torch.float32)
        count = items["frames"].shape[0]
        if any(value.shape[0] != count for value in items.values()):
            shapes = {key: tuple(value.shape) for key, value in items.items()}
            raise ValueError(f"replay batch entries disagree on the batch size: {shapes}")
        if not self.storage:
            self.storage = {
                key: torch.zeros(
                    (self.capacity, *value.shape[1:]), dtype=value.dtype, device=self.device
                )
                for key, value in items.items()
            }
        if set(items) != set(self.storage):
            raise KeyError(f"replay batch keys {sorted(items)} differ from {sorted(self.storage)}")
        for key, value in items.items():
            stored = self.storage[key]
            if value.shape[1:] != stored.shape[1:] or value.dtype != stored.dtype:
                expected = ", ".join(map(str, stored.shape[1:]))
                raise ValueError(
                    f"replay {key!r} must be {stored.dtype} (N, {expected}), "
                    f"got {value.dtype} {tuple(value.shape)}"
                )
        if count > self.capacity:  # only the newest fit
            items = {key: value[-self.capacity :] for key, value in items.items()}
            self.cursor = (self.cursor + count - self.capacity) % self.capacity
            count = self.capacity
        index = (self.cursor + torch.arange(count, device=self.device)) % self.capacity
        for key, value in items.items():
            self.storage[key][index] = value
        self.cursor = (self.cursor + count) % self.capacity
        self.size = min(self.capacity, self.size + count)
        self.added += int(batch["frames"].shape[0])

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``batch_size`` stored sequences, uniformly with replacement (copies)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        generator = self.generator if generator is None else generator
        index = torch.randint(self.size, (batch_size,), generator=generator).to(self.device)
        return {key: value[index] for key, value in self.storage.items()}
