"""fog_pipeline: robot policies trained inside learned world models with FoG."""

__version__ = "0.1.0"
__all__ = ["load_policy"]


def __getattr__(name: str):
    # Lazy, so that importing the package (as Kedro does for every command) loads no torch.
    if name == "load_policy":
        from fog_pipeline.core.policy.bundle import load_policy

        return load_policy
    raise AttributeError(f"module 'fog_pipeline' has no attribute {name!r}")
