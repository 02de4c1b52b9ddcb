"""The ``collect`` pipeline: robot backend + data-collection policy → raw HDF5 episodes."""

from kedro.pipeline import Node, Pipeline

from fog_pipeline.pipelines.collect.nodes import record_episodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                record_episodes,
                inputs=["params:collect", "params:seed"],
                outputs=["raw_episodes", "collect_manifest"],
                name="record_episodes",
            )
        ],
        tags=["collect"],
    )
