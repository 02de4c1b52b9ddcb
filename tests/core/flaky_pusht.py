"""A Push-T robot that fails on purpose, for the pool tests (test_vectorised_evaluation.py).

A module of its own, so that a pool worker, which imports it to build the robot, does not
import the tests' other dependencies (torch) as well.
"""

from __future__ import annotations

import os
from pathlib import Path

from fog_pipeline.core.envs.pusht import PushTBackend, PushTConfig


class FlakyPushT(PushTBackend):
    """Push-T that logs its resets, steps and stops to ``log`` (one line each, with its
    process id) and fails at step ``at_step`` of scene ``fail_seed``: it raises, or with
    ``how="exit"`` its process dies."""

    def __init__(self, log: str, fail_seed: int, at_step: int, how: str = "raise"):
        super().__init__(PushTConfig(width=16, height=16))
        self.log, self.fail_seed, self.at_step, self.how = Path(log), fail_seed, at_step, how

    def _note(self, event: str) -> None:
        with self.log.open("a") as log:
            log.write(f"{os.getpid()} {event}\n")

    def _reset(self, seed):
        self._seed = seed
        self._note(f"reset {seed}")
        return super()._reset(seed)

    def _step(self, action):
        self._note("step")
        if self._seed == self.fail_seed and self.steps_taken + 1 == self.at_step:
            if self.how == "exit":
                os._exit(3)
            raise OSError("motor driver fault")
        return super()._step(action)

    def stop(self):
        self._note("stop")
        super().stop()
