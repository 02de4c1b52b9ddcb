"""Metric logging for training nodes with dvclive (so `dvc plots show` draws the curves),
and reading a logged curve back."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dvclive import Live


@contextmanager
def live_logger(directory: str, resume: bool) -> Iterator[Callable[[int, dict], None]]:
    """Yield ``log(step, metrics)``; a resumed run appends to the existing curves."""
    with Live(dir=directory, resume=resume, save_dvc_exp=False, dvcyaml=None) as live:

        def log(step: int, metrics: dict[str, float]) -> None:
            live.step = step
            for name, value in metrics.items():
                live.log_metric(name, value)
            live.next_step()

        yield log


def read_curve(live_dir: str | Path, metric: str) -> list[tuple[int, float]]:
    """A dvclive curve as (step, value) rows (the whole run, across resumes)."""
    path = Path(live_dir) / "plots" / "metrics" / f"{metric}.tsv"
    if not path.exists():
        return []
    with path.open() as handle:
        return [
            (int(row["step"]), float(row[metric])) for row in csv.DictReader(handle, delimiter="\t")
        ]
