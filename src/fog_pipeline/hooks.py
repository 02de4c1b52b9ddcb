"""Project hooks."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from fog_pipeline.core.seeding import seed_everything

log = logging.getLogger(__name__)


class SeedHook:
    """Seed Python, NumPy and torch from ``params:seed`` before any node runs."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        seed = catalog.load("params:seed") if "params:seed" in catalog else 0
        seed_everything(int(seed))
        log.info("Seeded Python, NumPy and torch with %d.", seed)
