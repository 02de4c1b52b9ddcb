"""fog_pipeline: robot policies trained inside learned world models with FoG."""

__version__ = "0.1.0"
