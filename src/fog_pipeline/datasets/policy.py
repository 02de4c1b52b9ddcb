"""Kedro datasets for deployable policy bundles (see ``core.policy.bundle``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from fog_pipeline.core.io import atomic_dir, recover
from fog_pipeline.core.policy.bundle import INFO_FILE, DeployedPolicy, load_policy

SNAPSHOT_NAME = "transitions_{:09d}"
SNAPSHOT_PATTERN = re.compile(r"transitions_(\d+)$")


class PolicyBundleDataset(AbstractDataset[DeployedPolicy, DeployedPolicy]):
    """One policy bundle directory."""

    def __init__(self, path: str, metadata: dict | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> DeployedPolicy:
        return load_policy(recover(self._path))

    def save(self, data: DeployedPolicy) -> None:
        data.save(self._path)

    def _exists(self) -> bool:
        return (recover(self._path) / INFO_FILE).exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class PolicySnapshotsDataset(AbstractDataset[dict[int, DeployedPolicy], dict[int, DeployedPolicy]]):
    """Policy bundles saved at world-model transition counts: ``{transitions: policy}``,
    stored as ``<dir>/transitions_<count>/`` (the whole folder is replaced atomically)."""

    def __init__(self, path: str, metadata: dict | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[int, DeployedPolicy]:
        if not recover(self._path).is_dir():
            raise FileNotFoundError(
                f"No policy snapshots at {self._path}. Make them with "
                "`kedro run --pipeline=policy` or `--pipeline=baselines`."
            )
        found = {}
        for child in sorted(self._path.iterdir()):
            match = SNAPSHOT_PATTERN.match(child.name)
            if match and child.is_dir():
                found[int(match.group(1))] = load_policy(child)
        return found

    def save(self, data: dict[int, DeployedPolicy]) -> None:
        with atomic_dir(self._path) as tmp:
            for transitions, policy in data.items():
                policy.save(tmp / SNAPSHOT_NAME.format(int(transitions)))

    def _exists(self) -> bool:
        path = recover(self._path)
        return path.is_dir() and any(path.glob("transitions_*/" + INFO_FILE))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
