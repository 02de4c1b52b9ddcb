"""The ``episodes`` pipeline: raw HDF5 episodes → validated, split training set."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.episodes.nodes import build_dataset, clean_episodes, report_episodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                clean_episodes,
                inputs=["raw_episodes", "params:episodes"],
                outputs="cleaning_results",
                name="clean_episodes",
            ),
            Node(
                build_dataset,
                inputs=["cleaning_results", "params:episodes", "params:seed"],
                outputs="training_set",
                name="build_training_set",
            ),
            Node(
                report_episodes,
                inputs=["cleaning_results", "training_set"],
                outputs=["episodes_report", "episodes_quarantine", "episodes_summary"],
                name="report_episodes",
            ),
        ],
        tags=["episodes"],
    )
