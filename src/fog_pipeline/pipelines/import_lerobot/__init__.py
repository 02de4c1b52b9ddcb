"""Import a LeRobot dataset as raw episodes (``kedro run --pipeline=import_lerobot``).

Not part of the default DAG: run it by name. It writes HDF5 episodes of the project's
schema to ``lerobot_episodes`` (data/01_raw/lerobot_episodes). The ``lerobot`` Kedro
environment points the ``episodes`` pipeline's ``raw_episodes`` at that folder
(conf/lerobot/catalog.yml) and holds the Push-T conversion settings
(conf/lerobot/parameters_lerobot.yml), so the imported episodes are cleaned, and
everything downstream trained on them, with::

    kedro run --pipeline=import_lerobot --env lerobot
    kedro run --pipeline=episodes --env lerobot

Another environment (or ``--params``) can do the same: override ``raw_episodes.path``.
"""

from fog_pipeline.pipelines.import_lerobot.pipeline import create_pipeline

__all__ = ["create_pipeline"]
