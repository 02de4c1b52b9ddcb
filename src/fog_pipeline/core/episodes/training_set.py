"""The cleaned training set: contiguous arrays plus a segment index.

Layout on disk (one directory, written atomically)::

    frames.npy    uint8   (N, H, W, 3)   all segments back to back
    actions.npy   float32 (N, A)
    rewards.npy   float32 (N,)
    success.npy   bool    (N,)
    state.npy     float32 (N, P)         proprioception with each frame; P = 0 if none
    progress.npy  float32 (N,)           dense progress label (or the reward, see meta)
    segments.csv  one row per segment: episode_id, source_start, offset, length, split
    meta.json     fps, action bounds, frame shape, state_names / state_dim,
                  progress_source, normalisation stats, provenance

``.npy`` files open as memory maps, so drawing a batch of fixed-length windows is a
fancy-index into a page-cached array: no decoding, no per-file handles, no HDF5 lock,
safe from many DataLoader workers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fog_pipeline.core.episodes.cleaning import Segment
from fog_pipeline.core.io import atomic_dir, recover

ARRAYS = ("frames", "actions", "rewards", "success", "state", "progress")
SPLITS = ("train", "val")


@dataclass
class TrainingSet:
    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    state: np.ndarray
    progress: np.ndarray
    segments: pd.DataFrame
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def window_starts(self, split: str, window: int) -> np.ndarray:
        """Offsets at which ``window`` consecutive steps stay inside one segment of ``split``."""
        rows = self.segments[self.segments["split"] == split]
        starts = [
            np.arange(offset, offset + length - window + 1)
            for offset, length in zip(rows["offset"], rows["length"], strict=True)
            if length >= window
        ]
        return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)

    def windows(self, starts: np.ndarray, window: int) -> dict[str, np.ndarray]:
        """Arrays of shape (B, window, ...) for the windows starting at ``starts``."""
        index = np.asarray(starts)[:, None] + np.arange(window)[None, :]
        return {name: np.asarray(getattr(self, name)[index]) for name in ARRAYS}

    def save(self, path: str | os.PathLike) -> None:
        """Write the directory atomically: a reader sees the old set or the new, never half."""
        with atomic_dir(path) as tmp:
            for name in ARRAYS:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(self, name)))
            self.segments.to_csv(tmp / "segments.csv", index=False)
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = True) -> TrainingSet:
        path = recover(path)
        if not (path / "meta.json").exists():
            raise FileNotFoundError(
                f"No training set at {path}. Build it with `kedro run --pipeline=episodes` "
                "(or `dvc repro episodes`)."
            )
        missing = [name for name in ARRAYS if not (path / f"{name}.npy").exists()]
        if missing:
            raise FileNotFoundError(
                f"The training set at {path} has no {', '.join(missing)} (it was built before "
                "they were added). Rebuild it with `kedro run --pipeline=episodes` (or "
                "`dvc repro episodes`)."
            )
        arrays = {
            name: np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None) for name in ARRAYS
        }
        segments = pd.read_csv(path / "segments.csv", dtype={"episode_id": str})
        meta = json.loads((path / "meta.json").read_text())
        return cls(**arrays, segments=segments, meta=meta)


def split_episodes(episode_ids: list[str], val_fraction: float, seed: int) -> dict[str, str]:
    """Assign whole episodes to ``train`` / ``val`` (seeded; both non-empty when possible)."""
    unique = sorted(set(episode_ids))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_val = int(round(val_fraction * len(unique)))
    if val_fraction > 0 and len(unique) >= 2:
        n_val = min(max(n_val, 1), len(unique) - 1)
    val = {unique[i] for i in order[:n_val]}
    return {episode: ("val" if episode in val else "train") for episode in unique}


def build_training_set(
    segments: list[Segment], val_fraction: float, seed: int, meta: dict[str, Any]
) -> TrainingSet:
    """Concatenate segments, split by episode and compute normalisation stats on train.

    ``meta`` should name the state channels (``state_names``, default none) and where
    progress comes from (``progress_source``); the segments must agree on the state
    width (:func:`~fog_pipeline.core.episodes.cleaning.reconcile` sees to it).
    """
    if not segments:
        raise ValueError("No segments to build a training set from.")
    widths = sorted({s.state.shape[1] for s in segments})
    if len(widths) > 1:
        raise ValueError(f"Segments disagree on the state width: {widths}")
    state_names = [str(name) for name in meta.get("state_names", [])]
    if len(state_names) != widths[0]:
        raise ValueError(
            f"meta['state_names'] names {len(state_names)} channels; the state has {widths[0]}"
        )
    split_of = split_episodes([s.episode_id for s in segments], val_fraction, seed)
    segments = sorted(segments, key=lambda s: (s.episode_id, s.start))
    lengths = np.array([len(s) for s in segments])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    table = pd.DataFrame(
        {
            "episode_id": [s.episode_id for s in segments],
            "source_start": [s.start for s in segments],
            "offset": offsets,
            "length": lengths,
            "split": [split_of[s.episode_id] for s in segments],
        }
    )
    arrays = {name: np.concatenate([getattr(s, name) for s in segments]) for name in ARRAYS}
    train = np.repeat(table["split"].to_numpy() == "train", lengths)
    if not train.any():
        train[:] = True  # a single episode: statistics from it rather than from nothing
    actions, rewards = arrays["actions"][train], arrays["rewards"][train]
    state = arrays["state"][train]
    stats = {
        "action_mean": actions.mean(axis=0).tolist(),
        "action_std": np.maximum(actions.std(axis=0), 1e-6).tolist(),
        "reward_mean": float(rewards.mean()),
        "reward_std": float(max(rewards.std(), 1e-6)),
        "success_rate": float(arrays["success"][train].mean()),
        "state_mean": state.mean(axis=0).tolist(),
        "state_std": np.maximum(state.std(axis=0), 1e-6).tolist(),
        "progress_mean": float(arrays["progress"][train].mean()),
    }
    counts = {
        split: {
            "episodes": int(table.loc[table["split"] == split, "episode_id"].nunique()),
            "segments": int((table["split"] == split).sum()),
            "steps": int(table.loc[table["split"] == split, "length"].sum()),
        }
        for split in SPLITS
    }
    meta = {
        **meta,
        "frame_shape": list(arrays["frames"].shape[1:]),
        "action_dim": int(arrays["actions"].shape[1]),
        "state_names": state_names,
        "state_dim": len(state_names),
        "stats": stats,
        "splits": counts,
        "split_seed": seed,
    }
    return TrainingSet(**arrays, segments=table, meta=meta)
