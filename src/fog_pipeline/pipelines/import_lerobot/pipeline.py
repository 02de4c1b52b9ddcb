"""The ``import_lerobot`` pipeline: a LeRobot v3.0/v2.x folder → raw HDF5 episodes."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.import_lerobot.nodes import import_lerobot_episodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                import_lerobot_episodes,
                inputs="params:lerobot.import",
                outputs=["lerobot_episodes", "lerobot_import_manifest"],
                name="import_lerobot_episodes",
            )
        ],
        tags=["lerobot"],
    )
