"""The ``policy`` pipeline: global model + surrogate → FoG policy bundle, its anchor-only
ablation, and pictures."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.policy.nodes import (
    picture_policy,
    train_policy,
    train_policy_anchor_only,
)

# FoG and its anchor-only ablation train on the same models, data and parameters.
TRAINING_INPUTS = ["world_model", "surrogate", "training_set", "params:policy", "params:seed"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_policy,
                inputs=TRAINING_INPUTS,
                outputs=[
                    "policy",
                    "policy_initial",
                    "policy_snapshots",
                    "policy_training_summary",
                ],
                name="train_policy_fog",
            ),
            Node(
                train_policy_anchor_only,
                inputs=TRAINING_INPUTS,
                outputs=["policy_anchor_only", "policy_anchor_only_summary"],
                name="train_policy_anchor_only",
            ),
            Node(
                picture_policy,
                inputs=["policy", "world_model", "training_set", "params:policy", "params:seed"],
                outputs="policy_imagination",
                name="picture_policy_imagination",
            ),
        ],
        tags=["policy"],
    )
