"""policy pipeline on the smoke configuration, through Kedro's runner."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fog_pipeline
from fog_pipeline.core.baselines.ppo import BudgetCallback
from fog_pipeline.core.envs import make_backend

pytestmark = pytest.mark.slow


def test_policy_pipeline_smoke_trains_and_the_bundle_acts_on_the_robot(kedro_project):
    kedro_project.use("collect", "episodes", "world_model", "surrogate")
    kedro_project("policy")
    root = kedro_project.path

    summary = json.loads((root / "data/08_reporting/policy_training.json").read_text())
    assert summary["transitions"] == 4 * 2 * 3 and summary["snapshots"] == [0, 12, 24]
    cloning = summary["behaviour_cloning"]
    assert cloning["pretrain_steps"] == 20 and cloning["recorded_steps"] > 0
    assert np.isfinite(summary["imagined_return_last_10pct"])
    # Imagined episodes as long as the horizon (the default): the online surrogate
    # updates run on G's sequences (2 environments x 4 iterations, 2 steps each).
    assert summary["surrogate_replay_sequences"] == 8
    assert summary["surrogate_update_steps"] == 4 * 2
    ablation = json.loads((root / "data/08_reporting/policy_anchor_only.json").read_text())
    assert ablation["reinforcement_weight"] == 0.0 and ablation["transitions"] == 24
    # The ablation starts from the same behaviour-cloned actor as FoG.
    assert ablation["behaviour_cloning"] == cloning
    curves = root / "data/08_reporting/policy_training/plots/metrics"
    metrics = ("imagined_return", "entropy", "alpha", "critic_loss", "actor_grad_norm")
    for metric in (*metrics, "behaviour_nll"):
        rows = (curves / f"{metric}.tsv").read_text().splitlines()
        assert len(rows) == 1 + 4, metric  # header + one row per iteration
    assert (root / "data/08_reporting/policy_imagination.png").stat().st_size > 0

    # The bundle is loadable without Kedro and acts from the robot's camera frames.
    policy = fog_pipeline.load_policy(root / "data/06_models/policy")
    assert policy.info.family == "fog" and policy.info.transitions == 24
    with make_backend("pusht", width=16, height=16) as robot:
        frame = robot.reset(seed=10_000)
        assert policy.info.state_names == robot.state_names
        policy.reset()
        actions = []
        for _ in range(3):
            action = policy.act(frame, robot.read_state())
            assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
            actions.append(action)
            frame = robot.step(action).frame
        # Same observations after a reset give the same actions: the filter was cleared.
        policy.reset()
        frame = robot.reset(seed=10_000)
        np.testing.assert_array_equal(policy.act(frame, robot.read_state()), actions[0])
        state = robot.read_state()
    snapshots = sorted((root / "data/06_models/policy_snapshots").iterdir())
    assert [p.name for p in snapshots] == [
        "transitions_000000000",
        "transitions_000000012",
        "transitions_000000024",
    ]
    # The starting actor (behaviour-cloned) is its own bundle, and the snapshot at 0.
    initial = fog_pipeline.load_policy(root / "data/06_models/policy_initial")
    first = fog_pipeline.load_policy(snapshots[0])
    assert initial.info.transitions == 0
    initial.reset(), first.reset()
    np.testing.assert_array_equal(initial.act(frame, state), first.act(frame, state))
    assert not np.array_equal(initial.act(frame, state), policy.act(frame, state))
    anchor_only = fog_pipeline.load_policy(root / "data/06_models/policy_anchor_only")
    assert anchor_only.info.transitions == 24


def test_ppo_baseline_resumes_from_its_last_snapshot(kedro_project, monkeypatch):
    kedro_project.use("collect", "episodes", "world_model", "surrogate")
    root = kedro_project.path
    snapshot = BudgetCallback._on_rollout_end

    def interrupted(self):
        snapshot(self)
        if self.vec_env.transitions >= 12:  # the first snapshot point (half the budget)
            raise KeyboardInterrupt

    monkeypatch.setattr(BudgetCallback, "_on_rollout_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kedro_project("baselines")
    state = json.loads((root / "data/06_models/ppo_checkpoint/state.json").read_text())
    assert state["step"] == 12
    assert not (root / "data/06_models/ppo_policy").exists()  # nothing half-written

    monkeypatch.setattr(BudgetCallback, "_on_rollout_end", snapshot)
    kedro_project("baselines")
    summary = json.loads((root / "data/08_reporting/ppo_training.json").read_text())
    assert summary["resumed"] and summary["transitions"] == 24
    assert summary["snapshots"] == [0, 12, 24]
    policy = fog_pipeline.load_policy(root / "data/06_models/ppo_policy")
    assert policy.info.family == "ppo" and policy.info.transitions == 24


def test_policy_without_surrogate_names_the_stage(kedro_project):
    kedro_project.use("collect", "episodes")
    with pytest.raises(Exception, match="kedro run --pipeline=surrogate"):
        kedro_project("policy")
