"""Nodes of the ``export_lerobot`` pipeline: write the training set as LeRobot v3.0."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from fog_pipeline.core.config import STRICT_KEYS, parse_config
from fog_pipeline.core.episodes.lerobot import LeRobotExportConfig, write_lerobot
from fog_pipeline.core.episodes.training_set import TrainingSet

log = logging.getLogger(__name__)


@dataclass
class ExportLeRobotParams:
    __pydantic_config__ = STRICT_KEYS

    folder: str = "data/07_model_output/lerobot"
    writer: LeRobotExportConfig = field(default_factory=LeRobotExportConfig)


def export_lerobot_dataset(training_set: TrainingSet, params: dict[str, Any]) -> dict[str, Any]:
    """Write ``training_set`` to ``lerobot.export.folder`` and summarise what was written.

    The folder is written by :func:`~fog_pipeline.core.episodes.lerobot.write_lerobot`
    itself, atomically (a temporary sibling renamed into place), rather than through a
    catalog dataset: its options (codec, quality) are parameters, and the summary is the
    node's tracked output.
    """
    config = parse_config(ExportLeRobotParams, params, "lerobot.export")
    started = time.perf_counter()
    info = write_lerobot(training_set, config.folder, config.writer)
    seconds = time.perf_counter() - started
    summary = {
        "folder": config.folder,
        "codebase_version": info["codebase_version"],
        "codec": config.writer.codec,
        "episodes": info["total_episodes"],
        "frames": info["total_frames"],
        "splits": info["splits"],
        "seconds": round(seconds, 2),
    }
    log.info(
        "Exported %d episodes (%d frames) to %s as LeRobot %s in %.1f s.",
        summary["episodes"],
        summary["frames"],
        config.folder,
        summary["codebase_version"],
        seconds,
    )
    return summary
