"""Resumable training state: weights, optimisers, random streams and step, in one directory.

``state.safetensors`` holds every tensor (module states under ``<name>/``, optimiser slots
under ``<optimiser>/<param index>/<slot>``, the torch generator); ``state.json`` holds the
step, the run's fingerprint, the NumPy generator and the optimisers' param groups. Written
atomically. A checkpoint is resumed only if it belongs to the same setup (fingerprint) and
its run had not finished: a rerun after completion is a new run.

Every trainer (world model, surrogate, FoG, PPO) is a :class:`ResumableTrainer`: it names
the parts of its state, and the mixin saves, loads and resumes them; :func:`fingerprint`
hashes what a checkpoint must match, and :func:`run_training_loop` steps, reports and
checkpoints every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from fog_pipeline.core.io import atomic_dir, recover

log = logging.getLogger(__name__)

StateLoader = Callable[[dict[str, torch.Tensor]], Any]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def fingerprint(parts: Mapping[str, Any]) -> str:
    """What a checkpoint must match to be resumed: a short hash of ``parts`` (configs,
    data descriptions, seed) as JSON with sorted keys; dataclasses enter as their fields."""
    blob = json.dumps(parts, sort_keys=True, default=_jsonable)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """A short hash of tensors' values (which weights a run started from)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_training_state(
    path: str | Path,
    *,
    step: int,
    fingerprint: str,
    modules: Mapping[str, Mapping[str, torch.Tensor]],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generator: torch.Generator,
    rng: np.random.Generator,
) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, state in modules.items():
        tensors.update({f"{prefix}/{k}": v.detach().contiguous() for k, v in state.items()})
    param_groups = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"{name}/{index}/{slot}"] = torch.as_tensor(value).contiguous()
        param_groups[name] = state["param_groups"]
    tensors["generator"] = generator.get_state()
    tensors = {k: v.to("cpu") for k, v in tensors.items()}
    meta = {
        "step": step,
        "fingerprint": fingerprint,
        "numpy_rng": rng.bit_generator.state,
        "param_groups": param_groups,
    }
    with atomic_dir(path) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=1, default=int))


def resume_training_state(
    path: str | Path,
    *,
    total_steps: int,
    fingerprint: str,
    modules: Mapping[str, Callable[[dict[str, torch.Tensor]], Any]],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generator: torch.Generator,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
) -> int | None:
    """Restore the state at ``path`` into the given objects and return its step, or
    return None (touching nothing) when there is no resumable checkpoint there.

    ``modules`` maps each saved prefix to the ``load_state_dict`` that takes it.
    """
    path = recover(path)
    meta_path = path / "state.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta["step"] >= total_steps:
        log.info("Checkpoint %s is of a finished run: training starts afresh.", path)
        return None
    if meta["fingerprint"] != fingerprint:
        log.warning(
            "Ignoring checkpoint %s: it was made with other parameters or data; "
            "training starts from scratch and will overwrite it.",
            path,
        )
        return None
    return load_training_state(
        path, modules=modules, optimizers=optimizers, generator=generator, rng=rng, device=device
    )


def load_training_state(
    path: str | Path,
    *,
    modules: Mapping[str, Callable[[dict[str, torch.Tensor]], Any]],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generator: torch.Generator,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
) -> int:
    """Restore the state at ``path`` unconditionally and return its step."""
    path = recover(path)
    meta = json.loads((path / "state.json").read_text())
    tensors = load_file(str(path / "state.safetensors"), device=str(device))

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + "/")}

    for prefix, load_state_dict in modules.items():
        load_state_dict(part(prefix))
    for name, optimizer in optimizers.items():
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in part(name).items():
            index, slot = key.split("/")
            # Adam's step counter lives on the CPU unless the optimiser is capturable.
            slots.setdefault(int(index), {})[slot] = value.cpu() if slot == "step" else value
        optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"][name]})
    generator.set_state(tensors["generator"].cpu())
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["step"])


def run_training_loop(
    trainer: Any,
    train_step: Callable[[], dict[str, float]],
    checkpoint_dir: Path | None,
    on_metrics: Callable[[int, dict[str, float]], None] | None,
    desc: str,
    postfix: Callable[[dict[str, float]], dict[str, str]],
    progress: bool = True,
) -> None:
    """Step ``trainer`` to ``trainer.config.steps`` with a progress bar; every ``log_every``
    steps report the averaged metrics, every ``checkpoint_every`` steps (and at the end)
    save the training state. ``trainer`` has ``step``, ``config`` and ``save_checkpoint``;
    ``train_step`` advances ``trainer.step`` by one. ``progress=False`` hides the bar (the
    other ranks of a data-parallel run)."""
    config = trainer.config
    running: dict[str, float] = {}
    count = 0
    bar = tqdm(
        total=config.steps, initial=trainer.step, desc=desc, unit="step", disable=not progress
    )
    with bar:
        while trainer.step < config.steps:
            for key, value in train_step().items():
                running[key] = running.get(key, 0.0) + value
            count += 1
            bar.update(1)
            last = trainer.step == config.steps
            if trainer.step % config.log_every == 0 or last:
                averaged = {k: v / count for k, v in running.items()}
                running.clear()
                count = 0
                bar.set_postfix(**postfix(averaged))
                if on_metrics is not None:
                    on_metrics(trainer.step, averaged)
            if checkpoint_dir is not None and (trainer.step % config.checkpoint_every == 0 or last):
                trainer.save_checkpoint(checkpoint_dir)


class ResumableTrainer:
    """Checkpointing for a trainer: save, load and resume its whole state.

    A subclass sets ``step``, ``fingerprint``, ``generator``, ``rng`` and ``device``, names
    its run in ``label`` (for the log) and lists its state in :meth:`_checkpoint_modules`
    (prefix -> tensors), :meth:`_checkpoint_loaders` (prefix -> what restores them) and
    :meth:`_checkpoint_optimizers`; :meth:`_total_steps` is where its run finishes.
    """

    label = "training"
    step: int
    fingerprint: str
    generator: torch.Generator
    rng: np.random.Generator
    device: torch.device
    # Where try_resume last looked: fit() does not look there again (the caller may have
    # resumed first, to know whether its metric log continues).
    _resume_checked: Path | None = None

    def _total_steps(self) -> int:
        return self.config.steps

    def _checkpoint_modules(self) -> dict[str, Mapping[str, torch.Tensor]]:
        raise NotImplementedError

    def _checkpoint_loaders(self) -> dict[str, StateLoader]:
        raise NotImplementedError

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def _after_resume(self) -> None:
        """Called once a checkpoint was resumed (state that derives from the loaded one)."""

    def save_checkpoint(self, path: str | Path) -> None:
        """The whole training state, written atomically to ``path``."""
        save_training_state(
            path,
            step=self.step,
            fingerprint=self.fingerprint,
            modules=self._checkpoint_modules(),
            optimizers=self._checkpoint_optimizers(),
            generator=self.generator,
            rng=self.rng,
        )

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore the state at ``path`` whatever its fingerprint and step."""
        self.step = load_training_state(path, **self._load_targets())

    def try_resume(self, path: str | Path) -> bool:
        """Load the checkpoint at ``path`` if it is an unfinished run of this exact setup."""
        self._resume_checked = Path(path)
        step = resume_training_state(
            path,
            total_steps=self._total_steps(),
            fingerprint=self.fingerprint,
            **self._load_targets(),
        )
        if step is None:
            return False
        self.step = step
        log.info("Resumed %s from %s at step %d.", self.label, path, step)
        self._after_resume()
        return True

    def _resume_for_fit(self, path: str | Path | None) -> None:
        if path is not None and Path(path) != self._resume_checked:
            self.try_resume(path)

    def _load_targets(self) -> dict[str, Any]:
        return {
            "modules": self._checkpoint_loaders(),
            "optimizers": self._checkpoint_optimizers(),
            "generator": self.generator,
            "rng": self.rng,
            "device": self.device,
        }
