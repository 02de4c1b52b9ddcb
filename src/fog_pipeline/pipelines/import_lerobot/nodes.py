"""Nodes of the ``import_lerobot`` pipeline: read a LeRobot dataset as episodes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.episodes.lerobot import LeRobotImportConfig, import_lerobot
from fog_pipeline.core.episodes.schema import Episode

log = logging.getLogger(__name__)


@dataclass
class ImportLeRobotParams:
    __pydantic_config__ = STRICT_KEYS

    # The LeRobot dataset folder (holding meta/info.json), e.g. a Hugging Face download.
    source: str = "data/01_raw/lerobot/pusht"
    reader: LeRobotImportConfig = field(default_factory=LeRobotImportConfig)


def import_lerobot_episodes(params: dict[str, Any]) -> tuple[dict[str, Episode], pd.DataFrame]:
    """Every selected episode of ``lerobot.import.source`` as an episode of the project's
    schema, keyed ``lerobot_<episode_index>`` (apart from the ``episode_<seed>`` files the
    collect pipeline records), and a manifest with one row per episode.

    The episodes are held in memory until saved: ``steps * H * W * 3`` bytes after the
    resize (the 25,650 steps of LeRobot's Push-T at 32 x 32: 79 MB). A damaged dataset
    stops the run before anything is written.
    """
    config = parse_config(ImportLeRobotParams, params, "lerobot.import")
    episodes, manifest = import_lerobot(config.source, config.reader)
    steps, clipped = int(manifest["steps"].sum()), int(manifest["clipped_action_steps"].sum())
    log.info(
        "Imported %d LeRobot episodes (%d steps, success in %d) from %s.",
        len(manifest),
        steps,
        manifest["success"].sum(),
        config.source,
    )
    if clipped:
        log.warning(
            "%d of %d steps moved the target further than max_step = %g: their relative "
            "actions are clipped to [-1, 1] (see core.episodes.lerobot.absolute_to_relative).",
            clipped,
            steps,
            config.reader.max_step,
        )
    return episodes, manifest
