"""The ``surrogate`` pipeline: episodes + global model → distilled latent RSSM + report."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.surrogate.nodes import (
    distill_surrogate,
    fit_surrogate_on_episodes,
    report_surrogate,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                fit_surrogate_on_episodes,
                inputs=["training_set", "params:surrogate", "params:seed"],
                outputs="surrogate_on_episodes",
                name="fit_surrogate_on_episodes",
            ),
            Node(
                distill_surrogate,
                inputs=[
                    "surrogate_on_episodes",
                    "world_model",
                    "training_set",
                    "params:surrogate",
                    "params:seed",
                ],
                outputs="surrogate",
                name="distill_surrogate",
            ),
            Node(
                report_surrogate,
                inputs=[
                    "surrogate_on_episodes",
                    "surrogate",
                    "world_model",
                    "training_set",
                    "params:surrogate",
                    "params:seed",
                ],
                outputs="surrogate_metrics",
                name="report_surrogate",
            ),
        ],
        tags=["surrogate"],
    )
