"""Model checkpoints: a directory with ``config.json`` and ``model.safetensors``.

The config is the model's dataclass (``dataclasses.asdict``) plus a ``"type"`` field
naming the model class, so a checkpoint rebuilds its model without pickles; weights
include buffers (normalisation statistics), so a checkpoint is self-sufficient.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.io import atomic_dir, recover

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

M = TypeVar("M", bound=nn.Module)


def save_tensors(
    path: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``tensors`` to one safetensors file (not atomic: write inside ``atomic_dir``).

    Every tensor is copied to its own contiguous CPU storage: safetensors refuses tensors
    that share memory (tied weights, views) and non-contiguous ones.
    """
    owned = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}
    save_file(owned, str(path), metadata=metadata)


def load_tensors(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Missing tensor file {path}")
    try:
        return load_file(str(path), device=str(device))
    except SafetensorError as error:
        # safetensors' message does not say which file: a reader needs to know what to redo.
        raise ValueError(f"Damaged tensor file {path}: {error}") from error


def save_model(path: str | os.PathLike, model: nn.Module, config: Any) -> None:
    """Write ``model``, built from the dataclass ``config``, as a checkpoint dir (atomically)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    with atomic_dir(path) as tmp:
        data = {"type": type(model).__name__, **dataclasses.asdict(config)}
        (tmp / CONFIG_FILE).write_text(json.dumps(data, indent=2, sort_keys=True))
        save_tensors(tmp / WEIGHTS_FILE, model.state_dict())


def load_config(path: str | os.PathLike, config_cls: type[Any], model_type: str) -> Any:
    """Read and validate a checkpoint's config; ``model_type`` must match its ``"type"``."""
    config_path = recover(path) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"No model checkpoint at {path}: missing {config_path}")
    try:
        data = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"Damaged model checkpoint at {path}: {config_path}: {error}") from error
    found = data.pop("type", None)
    if found != model_type:
        raise ValueError(f"Checkpoint {path} holds a {found!r}, not a {model_type!r}")
    return parse_config(config_cls, data, where=str(config_path))


def load_model(
    path: str | os.PathLike,
    cls: type[M],
    config_cls: type[Any],
    device: str | torch.device = "cpu",
) -> M:
    """Rebuild ``cls(config)`` from a checkpoint directory and load its weights strictly.

    The model comes back in eval mode on ``device``.
    """
    config = load_config(path, config_cls, cls.__name__)
    weights_path = Path(path) / WEIGHTS_FILE
    if not weights_path.is_file():
        raise FileNotFoundError(f"Incomplete model checkpoint at {path}: missing {weights_path}")
    model = cls(config)
    model.load_state_dict(load_tensors(weights_path), strict=True)
    return model.to(device).eval()
