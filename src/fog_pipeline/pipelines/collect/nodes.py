"""Nodes of the ``collect`` pipeline: drive the robot backend and log episodes."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.episodes.collection import CollectParams, record_dataset
from fog_pipeline.core.episodes.schema import Episode

log = logging.getLogger(__name__)


def record_episodes(
    params: dict[str, Any], seed: int
) -> tuple[dict[str, Episode | bytes], pd.DataFrame]:
    """Record ``n_episodes`` with the data-collection policy; corrupt some like real logs.

    Returns the episodes keyed by id (a corrupted file comes as its bytes) and a manifest
    with one row per episode, including the injected fault, so that the cleaning report
    can be checked against ground truth. Episodes are held in memory until saved: about
    ``n_episodes * max_steps * H * W * 3`` bytes (61 MB for the default).
    """
    episodes, manifest = record_dataset(parse_config(CollectParams, params, "collect"), seed)
    log.info(
        "Recorded %d episodes (%d steps, success in %d); injected faults: %s",
        len(manifest),
        manifest["steps"].sum(),
        manifest["success"].sum(),
        manifest["injected_fault"].replace("", np.nan).value_counts().to_dict() or "none",
    )
    return episodes, manifest
