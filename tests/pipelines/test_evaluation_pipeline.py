"""evaluation pipeline on the smoke configuration, through Kedro's runner."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from kedro.pipeline import Node

from fog_pipeline.core.evaluation import EPISODE_COLUMNS
from fog_pipeline.pipelines.evaluation.nodes import evaluate_on_robot

pytestmark = pytest.mark.slow

SMOKE_COLLECT = {"n_episodes": 8, "backend_options": {"width": 16, "height": 16}}


def test_evaluation_pipeline_smoke(kedro_project):
    kedro_project("collect", "episodes", "world_model", "surrogate", "policy", "baselines")
    kedro_project("evaluation")
    reports = kedro_project.path / "data/08_reporting"

    episodes = pd.read_csv(reports / "evaluation_episodes.csv")
    assert list(episodes.columns) == list(EPISODE_COLUMNS)
    policies = ["random", "data_policy", "fog_initial", "fog", "ppo"]
    assert episodes["policy"].tolist() == [name for name in policies for _ in range(2)]
    assert episodes["seed"].tolist() == [100_000, 100_001] * 5  # same scenes for all
    assert episodes["length"].between(1, 10).all()

    summary = json.loads((reports / "evaluation.json").read_text())
    assert summary["first_seed"] == 100_000 and summary["max_steps"] == 10
    assert list(summary["policies"]) == policies
    for entry in summary["policies"].values():
        assert entry["episodes"] == 2
        assert 0 <= entry["success_rate_low"] <= entry["success_rate"] <= entry["success_rate_high"]
        assert entry["max_coverage_low"] <= entry["max_coverage_mean"] <= entry["max_coverage_high"]

    assert (reports / "evaluation_comparison.png").stat().st_size > 0
    videos = sorted(p.name for p in (reports / "evaluation_videos").iterdir())
    assert videos == sorted(f"{name}_0.gif" for name in policies)  # video_episodes: 1
    frames = iio.imread(reports / "evaluation_videos/random_0.gif", index=None)
    assert frames.shape[1:] == (256, 256, 3)  # 16 x 16 camera upscaled 16x
    length = episodes["length"].iloc[0]
    assert 2 <= len(frames) <= length + 1  # identical consecutive frames may merge

    # The sample-efficiency curve: FoG and PPO snapshots at the same transition counts.
    curve = pd.read_csv(reports / "sample_efficiency.csv")
    assert list(zip(curve["family"], curve["transitions"], strict=True)) == [
        ("fog", 0),
        ("fog", 12),
        ("fog", 24),
        ("ppo", 0),
        ("ppo", 12),
        ("ppo", 24),
    ]
    assert curve["success_rate"].between(0, 1).all()
    assert (reports / "sample_efficiency.png").stat().st_size > 0

    kedro_project("evaluation")
    pd.testing.assert_frame_equal(pd.read_csv(reports / "evaluation_episodes.csv"), episodes)

    # Bad parameters stop the run at start, naming the problem, and overwrite nothing.
    with pytest.raises(Exception, match=r"overlap the seeds the training data was recorded on"):
        kedro_project("evaluation", params={"evaluation": {"first_seed": 6}})
    with pytest.raises(Exception, match="evaluation.episods: unknown key"):
        kedro_project("evaluation", params={"evaluation": {"episods": 3}})
    pd.testing.assert_frame_equal(pd.read_csv(reports / "evaluation_episodes.csv"), episodes)


def test_evaluation_without_policies_names_the_stages(kedro_project):
    kedro_project("collect", "episodes")
    with pytest.raises(Exception, match="kedro run --pipeline=baselines") as error:
        kedro_project("evaluation")
    assert "kedro run --pipeline=policy" in str(error.value)


def test_overlap_message_names_ranges_and_fix():
    with pytest.raises(ValueError, match=r"6\.\.7 .*0\.\.7 .*6\.\.7.*first_seed >= 8"):
        evaluate_on_robot({"episodes": 2, "first_seed": 6}, SMOKE_COLLECT, 0)


def test_time_limit_beyond_the_robot_limit_names_both_keys():
    with pytest.raises(ValueError, match=r"evaluation.max_steps=301 .*max_episode_steps\)"):
        evaluate_on_robot({"max_steps": 301}, SMOKE_COLLECT, 0)


def test_unknown_reference_policy_is_named():
    with pytest.raises(ValueError, match="unknown reference policies.*'scripted'"):
        evaluate_on_robot({"reference_policies": ["scripted"]}, SMOKE_COLLECT, 0)


class StillPolicy:
    """Stands in for a loaded FoG/PPO bundle: reset() and act(frame) only."""

    def __init__(self):
        self.shapes = set()

    def reset(self):
        pass

    def act(self, frame):
        self.shapes.add((frame.shape, frame.dtype))
        return np.zeros(2, dtype=np.float32)


def test_learned_policy_joins_under_its_input_name():
    params = {"episodes": 2, "max_steps": 3, "reference_policies": [], "video_episodes": 1}
    fog = StillPolicy()
    episodes, videos = evaluate_on_robot(params, SMOKE_COLLECT, 0, fog=fog)
    assert episodes["policy"].tolist() == ["fog", "fog"]
    assert fog.shapes == {((16, 16, 3), np.dtype(np.uint8))}  # the recording camera
    assert list(videos) == ["fog_0"]

    # In the pipeline it is one more entry of the node's inputs, keyed by the name.
    node = Node(
        evaluate_on_robot,
        inputs={
            "params": "params:evaluation",
            "collect_params": "params:collect",
            "seed": "params:seed",
            "fog": "fog_policy",
        },
        outputs=["evaluation_episodes", "evaluation_videos"],
    )
    assert "fog_policy" in node.inputs


def test_learned_policy_must_act_and_not_clash():
    with pytest.raises(TypeError, match="'fog' is a str.*reset\\(\\) and act\\(frame\\)"):
        evaluate_on_robot({}, SMOKE_COLLECT, 0, fog="data/06_models/fog")
    with pytest.raises(ValueError, match=r"\['random'\] are named like reference policies"):
        evaluate_on_robot({}, SMOKE_COLLECT, 0, random=StillPolicy())


def test_no_policy_at_all_is_refused():
    with pytest.raises(ValueError, match="no policy to evaluate"):
        evaluate_on_robot({"reference_policies": []}, SMOKE_COLLECT, 0)
