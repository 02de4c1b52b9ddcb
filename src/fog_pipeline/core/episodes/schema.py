"""The recorded-episode HDF5 schema (version 2): one file per episode.

Step ``t`` of an episode is one camera frame and what happened after it::

    frames      uint8   (T, H, W, 3)  RGB camera frame observed at step t
    actions     float32 (T, A)        action commanded after seeing frames[t]
    rewards     float32 (T,)          reward label logged after actions[t] was executed
    success     bool    (T,)          task-success label logged with rewards[t]
    timestamps  float64 (T,)          seconds since the episode started, of frames[t]

and, optionally (a robot without them leaves them out)::

    state       float32 (T, P)        proprioception read together with frames[t], so
                                      known before actions[t] (joint angles, gripper,
                                      controller targets; never the manipulated objects)
    progress    float32 (T,)          dense task-progress label logged with rewards[t]
                                      (higher is closer to done, e.g. from a pose tracker)

Root attributes: ``schema_version`` (int, 2; version-1 files, which predate ``state``
and ``progress``, are read the same way), ``fps`` (control rate, Hz), ``backend``,
``task``, ``seed`` (int, -1 if unknown), ``action_low`` / ``action_high`` (float arrays of
length A: the bounds the robot accepts), ``action_space`` (free text describing what an
action means), ``policy`` (what produced the actions), and, required with ``state``,
``state_names`` (P strings naming its columns). Extra attributes are kept as they are.
Any writer that produces this layout (h5py, MATLAB, C++ HDF5) feeds the pipeline.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)  # version 1: the same layout without state/progress
ARRAY_DTYPES: dict[str, np.dtype] = {
    "frames": np.dtype(np.uint8),
    "actions": np.dtype(np.float32),
    "rewards": np.dtype(np.float32),
    "success": np.dtype(np.bool_),
    "timestamps": np.dtype(np.float64),
    "state": np.dtype(np.float32),
    "progress": np.dtype(np.float32),
}
OPTIONAL_ARRAYS = ("state", "progress")
REQUIRED_ARRAYS = tuple(name for name in ARRAY_DTYPES if name not in OPTIONAL_ARRAYS)
REQUIRED_ATTRS = ("schema_version", "fps", "action_low", "action_high")

# The HDF5 C library is not thread-safe across files; every h5py call in this project
# goes through this lock so a threaded Kedro runner cannot corrupt a read.
HDF5_LOCK = threading.RLock()


class EpisodeReadError(RuntimeError):
    """The file is not a readable HDF5 file (truncated, corrupt, not HDF5)."""


@dataclass
class Episode:
    """One recorded episode, in memory. Arrays follow the schema above; ``state`` and
    ``progress`` are None when the robot does not log them (without ``state``, ``attrs``
    has no ``state_names``)."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    timestamps: np.ndarray
    state: np.ndarray | None = None
    progress: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays present, by dataset name (optional ones only when not None)."""
        return {
            name: getattr(self, name) for name in ARRAY_DTYPES if getattr(self, name) is not None
        }


def _write(h5: h5py.File, episode: Episode) -> None:
    # Contiguous (unchunked) datasets: episodes are read whole, and per-frame chunks made
    # reading 14x slower (benchmarks/cleaning_throughput.py).
    for name, array in episode.arrays().items():
        h5.create_dataset(name, data=array)
    for key, value in episode.attrs.items():
        h5.attrs[key] = value


def episode_to_bytes(episode: Episode) -> bytes:
    """Serialise an episode to the bytes of an HDF5 file (used to build corrupt files)."""
    buffer = io.BytesIO()
    with HDF5_LOCK, h5py.File(buffer, "w") as h5:
        _write(h5, episode)
    return buffer.getvalue()


def write_episode(path: str | os.PathLike, episode: Episode | bytes) -> None:
    """Write an episode (or the raw bytes of an episode file) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if isinstance(episode, bytes):
            with os.fdopen(fd, "wb") as f:
                f.write(episode)
        else:
            os.close(fd)
            with HDF5_LOCK, h5py.File(tmp, "w") as h5:
                _write(h5, episode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_raw(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read whatever arrays and attributes a file holds, without validating them.

    Returns ``(arrays, attrs)``; arrays missing from the file are absent from the dict.
    Raises :class:`EpisodeReadError` when the file cannot be read as HDF5 at all.
    """
    try:
        with HDF5_LOCK, h5py.File(path, "r") as h5:
            arrays = {}
            for name in ARRAY_DTYPES:
                if name in h5 and isinstance(h5[name], h5py.Dataset):
                    arrays[name] = h5[name][()]
            attrs = {key: _plain(value) for key, value in h5.attrs.items()}
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise EpisodeReadError(f"{path}: cannot read as HDF5 ({exc})") from exc
    return arrays, attrs


def read_episode(path: str | os.PathLike) -> Episode:
    """Read a file that is known to follow the schema (e.g. one this project wrote)."""
    arrays, attrs = read_raw(path)
    missing = [name for name in REQUIRED_ARRAYS if name not in arrays]
    if missing:
        raise EpisodeReadError(f"{path}: missing datasets {missing}")
    return Episode(**arrays, attrs=attrs)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        # A list of strings (state_names) comes back as an array of str or bytes.
        return [_plain(item) for item in value.tolist()]
    return value
