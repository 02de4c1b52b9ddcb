"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from fog_pipeline.hooks import MissingInputsHook, SeedHook

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # `smoke` and `gpu` override only the keys they change: merge parameters key by key.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}

HOOKS = (SeedHook(), MissingInputsHook())
