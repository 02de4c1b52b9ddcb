"""The cleaning report: one row per raw file, the quarantine list, and counts per status
and reason (the episodes pipeline's DVC metrics)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from fog_pipeline.core.episodes.cleaning import QUARANTINED, CleaningResult
from fog_pipeline.core.episodes.training_set import TrainingSet

STATUSES = ("kept", "repaired", "quarantined")


def cleaning_report(
    results: list[CleaningResult], training_set: TrainingSet
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The per-file table, the quarantined files with their reasons, and the summary."""
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
    return report, quarantine.reset_index(drop=True), summary
