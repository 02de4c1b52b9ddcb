"""The ``world_model`` pipeline: training set → global world model + fidelity report."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.world_model.nodes import evaluate_world_model, train_world_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_world_model,
                inputs=["training_set", "params:world_model", "params:seed"],
                outputs="world_model",
                name="train_world_model",
            ),
            Node(
                evaluate_world_model,
                inputs=["world_model", "training_set", "params:world_model", "params:seed"],
                outputs=["world_model_metrics", "world_model_rollouts"],
                name="evaluate_world_model",
            ),
        ],
        tags=["world_model"],
    )
