"""The ``export_lerobot`` pipeline: the cleaned training set → a LeRobot v3.0 folder."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.export_lerobot.nodes import export_lerobot_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                export_lerobot_dataset,
                inputs=["training_set", "params:lerobot.export"],
                outputs="lerobot_export_summary",
                name="export_lerobot_dataset",
            )
        ],
        tags=["lerobot"],
    )
