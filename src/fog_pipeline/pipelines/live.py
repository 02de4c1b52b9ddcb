"""Metric logging for training nodes with dvclive (so `dvc plots show` draws the curves)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
