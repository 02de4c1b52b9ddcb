"""Nodes of the ``episodes`` pipeline: validate/repair/quarantine, split, report."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import pandas as pd
from pydantic import Field
from tqdm.auto import tqdm

from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.episodes.cleaning import (
    QUARANTINED,
    CleaningConfig,
    CleaningResult,
    clean_file,
    reconcile,
)
from fog_pipeline.core.episodes.training_set import TrainingSet, build_training_set

log = logging.getLogger(__name__)
STATUSES = ("kept", "repaired", "quarantined")


@dataclass
class EpisodesParams:
    __pydantic_config__ = STRICT_KEYS

    val_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)


def clean_episodes(
    raw_episodes: dict[str, Callable], params: dict[str, Any]
) -> list[CleaningResult]:
    """Read every raw file once and apply the cleaning rules; one bad file never stops it."""
    config = parse_config(EpisodesParams, params, "episodes").cleaning
    results = [
        clean_file(episode_id, load, config)
        for episode_id, load in tqdm(sorted(raw_episodes.items()), desc="cleaning", unit="ep")
    ]
    return reconcile(results)


def build_dataset(results: list[CleaningResult], params: dict[str, Any], seed: int) -> TrainingSet:
    """Concatenate surviving segments, split by episode, compute normalisation stats."""
    parsed = parse_config(EpisodesParams, params, "episodes")
    usable = [r for r in results if r.segments]
    attrs = usable[0].attrs  # reconcile() made every usable file agree on what follows
    meta = {
        "fps": float(attrs["fps"]),
        "action_low": [float(x) for x in attrs["action_low"]],
        "action_high": [float(x) for x in attrs["action_high"]],
        "backend": str(attrs.get("backend", "unknown")),
        "task": str(attrs.get("task", "unknown")),
        "state_names": list(usable[0].state_names),
        # "rewards": the files log no progress label, so progress.npy repeats the reward.
        "progress_source": usable[0].progress_source,
    }
    if meta["progress_source"] == "rewards":
        log.warning("The episodes log no progress label; the training set uses the reward.")
    segments = [segment for r in usable for segment in r.segments]
    return build_training_set(segments, parsed.val_fraction, seed, meta)


def report_episodes(
    results: list[CleaningResult], training_set: TrainingSet
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """One row per raw file, the quarantine list, and counts per status and reason."""
    segments = training_set.segments
    split_of = dict(zip(segments["episode_id"], segments["split"], strict=True))
    report = pd.DataFrame(
        [
            {
                "episode_id": r.episode_id,
                "status": r.status,
                "reasons": ";".join(r.reasons),
                "length_before": r.length_before,
                "length_after": r.length_after,
                "segments": len(r.segments),
                "split": split_of.get(r.episode_id, ""),
                "state_dim": len(r.state_names),
                "progress_source": r.progress_source,
            }
            for r in results
        ]
    )
    quarantine = report.loc[report["status"] == QUARANTINED, ["episode_id", "reasons"]]
    for row in quarantine.itertuples():
        log.warning("Quarantined %s: %s", row.episode_id, row.reasons)
    reasons = Counter(reason for r in results for reason in r.reasons)
    statuses = Counter(r.status for r in results)
    summary = {
        "files": len(results),
        "status": {status: statuses.get(status, 0) for status in STATUSES},
        "reasons": dict(sorted(reasons.items())),
        "steps_before": int(report["length_before"].sum()),
        "steps_after": int(report["length_after"].sum()),
        "segments": int(report["segments"].sum()),
        "splits": training_set.meta["splits"],
        "state_names": training_set.meta["state_names"],
        "progress_source": training_set.meta["progress_source"],
    }
    log.info(
        "Cleaned %d files: %s; %d of %d steps kept.",
        len(results),
        ", ".join(f"{n} {s}" for s, n in summary["status"].items()),
        summary["steps_after"],
        summary["steps_before"],
    )
    return report, quarantine.reset_index(drop=True), summary
