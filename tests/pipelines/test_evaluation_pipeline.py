"""evaluation pipeline: on the smoke configuration through Kedro's runner, its wiring
(every learned policy from the catalog, every model a DVC dependency) and the report of
its nodes on a scripted fake robot."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fog_pipeline.core.envs import RobotBackend, StepResult
from fog_pipeline.core.evaluation import EPISODE_COLUMNS, PAIRED_MEASURES, wilson_interval
from fog_pipeline.pipelines.evaluation import create_pipeline
from fog_pipeline.pipelines.evaluation import nodes as evaluation_nodes
from fog_pipeline.pipelines.evaluation.nodes import FOG, FOG_BASELINES, evaluate_on_robot

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SMOKE_COLLECT = {"n_episodes": 8, "backend_options": {"width": 16, "height": 16}}
# The policies of the smoke run: the references, then the pipeline's learned inputs.
POLICIES = ["random", "data_policy", "fog_initial", "fog_anchor_only", "fog", "ppo"]


def test_evaluation_pipeline_smoke(kedro_project):
    kedro_project.use("collect", "episodes", "world_model", "surrogate")
    kedro_project("policy", "baselines")
    kedro_project("evaluation")
    reports = kedro_project.path / "data/08_reporting"

    episodes = pd.read_csv(reports / "evaluation_episodes.csv")
    assert list(episodes.columns) == list(EPISODE_COLUMNS)
    policies = POLICIES
    assert episodes["policy"].tolist() == [name for name in policies for _ in range(2)]
    assert episodes["seed"].tolist() == [100_000, 100_001] * len(policies)  # same scenes
    assert episodes["length"].between(1, 10).all()
    # the scenes reset alike for every policy
    assert episodes.groupby("seed")["initial_coverage"].nunique().eq(1).all()
    np.testing.assert_allclose(
        episodes["improvement"], episodes["max_coverage"] - episodes["initial_coverage"]
    )

    summary = json.loads((reports / "evaluation.json").read_text())
    assert summary["first_seed"] == 100_000 and summary["max_steps"] == 10
    assert list(summary["policies"]) == policies
    for name, entry in summary["policies"].items():
        # The summary is the table's: each policy's two episodes, with Wilson intervals.
        rows = episodes[episodes["policy"] == name]
        successes = int(rows["success"].sum())
        assert (entry["episodes"], entry["successes"]) == (2, successes), name
        assert entry["success_rate"] == successes / 2, name
        low, high = wilson_interval(successes, 2, summary["confidence"])
        assert (entry["success_rate_low"], entry["success_rate_high"]) == pytest.approx(
            (low, high)
        ), name
        for measure in ("final_coverage", "improvement", "max_coverage"):
            assert entry[f"{measure}_mean"] == pytest.approx(rows[measure].mean()), name
            assert entry[f"{measure}_low"] <= entry[f"{measure}_mean"] <= entry[f"{measure}_high"]
    assert list(summary["fog_versus"]) == list(FOG_BASELINES)
    assert list(summary["versus_random"]) == [p for p in policies if p != "random"]

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
    # One episode per snapshot (snapshot_episodes: 1) on the first evaluation scene. The
    # 0-transition FoG snapshot is the starting actor, evaluated above as fog_initial.
    assert set(curve["success_rate"]) <= {0.0, 1.0}
    initial = episodes[(episodes["policy"] == "fog_initial") & (episodes["seed"] == 100_000)]
    first = curve[(curve["family"] == "fog") & (curve["transitions"] == 0)]
    assert first["success_rate"].item() == float(initial["success"].item())
    assert first["final_coverage_mean"].item() == pytest.approx(initial["final_coverage"].item())
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
    kedro_project.use("collect", "episodes")
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
    """Stands in for a loaded FoG/PPO bundle: reset() and act(frame, state) only."""

    def __init__(self):
        self.shapes = set()

    def reset(self):
        pass

    def act(self, frame, state):
        self.shapes.add((frame.shape, frame.dtype, state.shape, state.dtype))
        return np.zeros(2, dtype=np.float32)


def test_learned_policy_joins_under_its_input_name():
    params = {"episodes": 2, "max_steps": 3, "reference_policies": [], "video_episodes": 1}
    fog = StillPolicy()
    episodes, videos = evaluate_on_robot(params, SMOKE_COLLECT, 0, fog=fog)
    assert episodes["policy"].tolist() == ["fog", "fog"]
    ((frame_shape, frame_dtype, state_shape, state_dtype),) = fog.shapes
    assert (frame_shape, frame_dtype) == ((16, 16, 3), np.dtype(np.uint8))  # the camera
    assert state_dtype == np.float32 and len(state_shape) == 1  # the robot's proprioception
    assert list(videos) == ["fog_0"]


def test_parallel_robots_give_the_serial_table_and_videos():
    # evaluation.robots: 2 simulated robots, one process each; a plain policy (no
    # act_batch) runs on one of them at a time. Same numbers and frames as robots: 1.
    params = {"episodes": 3, "max_steps": 6, "video_episodes": 1}
    serial = evaluate_on_robot(params | {"robots": 1}, SMOKE_COLLECT, 0, fog=StillPolicy())
    parallel = evaluate_on_robot(params | {"robots": 2}, SMOKE_COLLECT, 0, fog=StillPolicy())
    pd.testing.assert_frame_equal(parallel[0], serial[0], check_exact=True)
    assert list(parallel[1]) == list(serial[1]) == ["random_0", "data_policy_0", "fog_0"]
    for key, video in serial[1].items():
        np.testing.assert_array_equal(parallel[1][key].frames, video.frames)


# --------------------------------------------------------------------------------------
# The pipeline's wiring, and its report, on a scripted fake robot


def _catalog_config() -> dict:
    config = {}
    for path in sorted((REPO / "conf/base").glob("catalog*.yml")):
        config |= yaml.safe_load(path.read_text()) or {}
    return config


def _evaluation_deps() -> list[str]:
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluation"]
    return [dep if isinstance(dep, str) else next(iter(dep)) for dep in stage["deps"]]


def test_every_policy_the_pipeline_loads_is_in_the_catalog_and_a_dvc_dependency():
    catalog, deps = _catalog_config(), _evaluation_deps()
    models = sorted(
        name
        for name in create_pipeline().inputs()
        if not name.startswith("params:") and name != "parameters"
    )
    assert "policy_anchor_only" in models, "the ablation is not evaluated"
    for name in models:
        assert name in catalog, (
            f"the evaluation pipeline loads {name!r}, which no conf/base/catalog*.yml defines"
        )
        location = catalog[name].get("path") or catalog[name].get("filepath")
        assert location in deps, (
            f"{name!r} ({location}) is not a dependency of dvc.yaml's evaluation stage: "
            "`dvc repro` would not rerun the evaluation when it changes"
        )


class CoverageRobot(RobotBackend):
    """A fake robot whose label is the commanded action's second coordinate mapped to
    [0, 1], ``(a[1] + 1) / 2``, and which succeeds iff ``a[0] > 0.5`` (that ends the
    episode). Every scene starts at coverage 0.1; its proprioception counts the steps."""

    name = "coverage"
    task = "test"
    fps = 10.0
    action_low = np.full(2, -1.0, dtype=np.float32)
    action_high = np.full(2, 1.0, dtype=np.float32)
    action_meaning = "anything"
    frame_shape = (4, 4, 3)
    max_episode_steps = 300
    state_names = ("steps",)

    def _reset(self, seed):
        self._label = 0.1
        return np.zeros(self.frame_shape, np.uint8)

    def _step(self, action):
        self._label = float((action[1] + 1) / 2)
        done = bool(action[0] > 0.5)
        return StepResult(np.zeros(self.frame_shape, np.uint8), self._label, done, done, False)

    def read_reward(self):
        return self._label

    def read_state(self):
        return np.array([self.steps_taken], dtype=np.float32)


class FixedPolicy:
    """Always the same action; remembers the states it was shown."""

    def __init__(self, action):
        self.action = np.asarray(action, dtype=np.float32)
        self.states = []

    def reset(self):
        pass

    def act(self, frame, state):
        self.states.append(float(state[0]))
        return self.action


def test_pipeline_reports_fog_against_each_baseline(monkeypatch):
    """The pipeline's own nodes, through Kedro's runner, on a fake robot.

    Each catalog model is a fake with its own final coverage, so the results show which
    input key each dataset was evaluated under, and the FoG comparisons have known values.
    """
    monkeypatch.setattr(evaluation_nodes, "make_backend", lambda name, **options: CoverageRobot())
    # (final coverage, success): fog 0.8 and success; the others fail at 0.2/0.4/0.5
    models = {
        "policy": FixedPolicy([1.0, 0.6]),
        "policy_initial": FixedPolicy([0.0, -0.6]),
        "policy_anchor_only": FixedPolicy([0.0, -0.2]),
        "ppo_policy": FixedPolicy([0.0, 0.0]),
    }
    params = {"episodes": 3, "max_steps": 4, "reference_policies": ["random"]}
    pipeline = create_pipeline().only_nodes("evaluate_on_robot", "report_evaluation")
    catalog = DataCatalog(
        {
            "params:evaluation": MemoryDataset(params),
            "params:collect": MemoryDataset(SMOKE_COLLECT),
            "params:seed": MemoryDataset(0),
            **{name: MemoryDataset(policy, copy_mode="assign") for name, policy in models.items()},
        }
    )
    # The outputs are in no catalog: the runner makes memory datasets and returns them
    # (those that no node consumes: evaluation_episodes is released once reported).
    summary = SequentialRunner().run(pipeline, catalog)["evaluation_summary"].load()
    expected = {"fog_initial": 0.2, "fog_anchor_only": 0.4, "fog": 0.8, "ppo": 0.5}
    assert list(summary["policies"]) == ["random", *expected]
    for name, coverage in expected.items():
        assert summary["policies"][name]["final_coverage_mean"] == pytest.approx(coverage)
        assert summary["policies"][name]["improvement_mean"] == pytest.approx(coverage - 0.1)
    assert summary["policies"]["fog"]["success_rate"] == 1.0
    assert summary["policies"]["fog"]["length_mean"] == 1.0  # success ends the episode
    # the policy saw the step count the robot reported after each step: 0, 1, 2, 3
    assert models["policy_initial"].states == [0.0, 1.0, 2.0, 3.0] * 3

    assert list(summary) == [
        "confidence",
        "first_seed",
        "max_steps",
        "policies",
        "fog_versus",
        "versus_random",
    ]
    assert list(summary["fog_versus"]) == list(FOG_BASELINES)
    for other in ("fog_initial", "fog_anchor_only", "ppo"):
        entry = summary["fog_versus"][other]
        assert entry["scenes"] == 3
        assert entry["success_diff_mean"] == entry["success_diff_low"] == pytest.approx(1.0)
        gap = expected[FOG] - expected[other]  # the same on every scene: a point interval
        assert entry["final_coverage_diff_mean"] == pytest.approx(gap)
        assert entry["final_coverage_diff_high"] == pytest.approx(gap)
        assert entry["improvement_diff_mean"] == pytest.approx(gap)
        assert {f"{m}_diff_{k}" for m in PAIRED_MEASURES for k in ("mean", "low", "high")} <= set(
            entry
        )
    assert summary["fog_versus"]["random"]["scenes"] == 3
    assert list(summary["versus_random"]) == list(expected)
    assert summary["versus_random"]["fog"] == summary["fog_versus"]["random"]


def test_report_leaves_out_fog_comparisons_that_did_not_run(monkeypatch):
    monkeypatch.setattr(evaluation_nodes, "make_backend", lambda name, **options: CoverageRobot())
    params = {"episodes": 2, "max_steps": 2, "reference_policies": ["random"]}
    episodes, _ = evaluate_on_robot(
        params, SMOKE_COLLECT, 0, fog=FixedPolicy([0.0, 0.0]), ppo=FixedPolicy([0.0, -1.0])
    )
    summary, _ = evaluation_nodes.report_evaluation(episodes, params)
    assert list(summary["fog_versus"]) == ["ppo", "random"]  # fog_initial, ablation absent
    assert summary["fog_versus"]["ppo"]["final_coverage_diff_mean"] == pytest.approx(0.5)


def test_learned_policy_must_act_and_not_clash():
    with pytest.raises(TypeError, match=r"'fog' is a str.*reset\(\) and act\(frame, state\)"):
        evaluate_on_robot({}, SMOKE_COLLECT, 0, fog="data/06_models/fog")
    with pytest.raises(ValueError, match=r"\['random'\] are named like reference policies"):
        evaluate_on_robot({}, SMOKE_COLLECT, 0, random=StillPolicy())


def test_no_policy_at_all_is_refused():
    with pytest.raises(ValueError, match="no policy to evaluate"):
        evaluate_on_robot({"reference_policies": []}, SMOKE_COLLECT, 0)
