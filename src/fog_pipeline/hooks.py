"""Project hooks."""

from __future__ import annotations

import importlib
import logging
import pkgutil

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

import fog_pipeline.pipelines
from fog_pipeline.core.seeding import seed_everything

log = logging.getLogger(__name__)


class SeedHook:
    """Seed Python, NumPy and torch from ``params:seed`` before any node runs."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        seed = catalog.load("params:seed") if "params:seed" in catalog else 0
        seed_everything(int(seed))
        log.info("Seeded Python, NumPy and torch with %d.", seed)


class MissingInputsHook:
    """Stop at once, naming the pipeline to run, when an input artifact does not exist
    (rather than after an hour of training, when the node that needs it starts)."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        missing = []
        every_pipeline = None
        for name in sorted(pipeline.inputs()):
            if name.startswith("params:") or name == "parameters" or name not in catalog:
                continue
            if not catalog.exists(name):
                every_pipeline = every_pipeline or _all_pipelines()
                makers = sorted(
                    key
                    for key, candidate in every_pipeline.items()
                    if key != "__default__" and name in candidate.all_outputs()
                )
                fix = " or ".join(
                    f"`kedro run --pipeline={m}` (or `dvc repro {m}`)" for m in makers
                )
                missing.append(f"'{name}': make it with {fix or 'the pipeline that writes it'}")
        if missing:
            raise FileNotFoundError(
                "Missing input artifacts for this run:\n  " + "\n  ".join(missing)
            )


def _all_pipelines() -> dict[str, Pipeline]:
    """Every pipeline of the package (Kedro's registry holds only those of this run)."""
    package = fog_pipeline.pipelines
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if info.ispkg and hasattr(module, "create_pipeline"):
            found[info.name] = module.create_pipeline()
    return found
