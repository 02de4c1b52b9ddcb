"""The ``evaluation`` pipeline: policies on the robot → success, coverage, videos."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.evaluation.nodes import (
    evaluate_on_robot,
    evaluate_sample_efficiency,
    report_evaluation,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                evaluate_on_robot,
                # A learned policy joins as one more entry, its key the policy's name (a
                # catalog entry loading an object with reset() and act(frame, state)).
                # The keys are the names report_evaluation compares FoG with
                # (nodes.FOG_BASELINES); each catalog path is a dep of dvc.yaml's stage.
                inputs={
                    "params": "params:evaluation",
                    "collect_params": "params:collect",
                    "seed": "params:seed",
                    # The actor FoG started from (behaviour cloning): what FoG itself added.
                    "fog_initial": "policy_initial",
                    # Same start and anchor as FoG, its reinforcement term off: the
                    # ablation that isolates what FoG's term adds.
                    "fog_anchor_only": "policy_anchor_only",
                    "fog": "policy",
                    "ppo": "ppo_policy",
                },
                outputs=["evaluation_episodes", "evaluation_videos"],
                name="evaluate_on_robot",
            ),
            Node(
                report_evaluation,
                inputs=["evaluation_episodes", "params:evaluation"],
                outputs=["evaluation_summary", "evaluation_comparison"],
                name="report_evaluation",
            ),
            Node(
                evaluate_sample_efficiency,
                inputs=[
                    "params:evaluation",
                    "params:collect",
                    "params:seed",
                    "policy_snapshots",
                    "ppo_snapshots",
                ],
                outputs=["sample_efficiency", "sample_efficiency_plot"],
                name="evaluate_sample_efficiency",
            ),
        ],
        tags=["evaluation"],
    )
