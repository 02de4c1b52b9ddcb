"""Nodes of the ``episodes`` pipeline: validate/repair/quarantine, split, report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import pandas as pd
from pydantic import Field
from tqdm.auto import tqdm

from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.episodes.cleaning import (
    CleaningConfig,
    CleaningResult,
    clean_file,
    reconcile,
)
from fog_pipeline.core.episodes.report import cleaning_report
from fog_pipeline.core.episodes.training_set import TrainingSet, build_training_set

log = logging.getLogger(__name__)


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
    report, quarantine, summary = cleaning_report(results, training_set)
    for row in quarantine.itertuples():
        log.warning("Quarantined %s: %s", row.episode_id, row.reasons)
    log.info(
        "Cleaned %d files: %s; %d of %d steps kept.",
        len(results),
        ", ".join(f"{n} {s}" for s, n in summary["status"].items()),
        summary["steps_after"],
        summary["steps_before"],
    )
    return report, quarantine, summary
