"""The ``baselines`` pipeline: global model + surrogate → PPO policy bundle and snapshots."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.baselines.nodes import train_ppo_baseline


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_ppo_baseline,
                inputs=[
                    "world_model",
                    "surrogate",
                    "training_set",
                    "params:baselines",
                    "params:policy",
                    "params:seed",
                ],
                outputs=["ppo_policy", "ppo_snapshots", "ppo_training_summary"],
                name="train_ppo_baseline",
            ),
        ],
        tags=["baselines"],
    )
