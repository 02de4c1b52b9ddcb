"""world_model pipeline on the smoke configuration, through Kedro's runner."""

from __future__ import annotations

import json

import pytest
import torch

from fog_pipeline.core.world_model.model import WorldModel

pytestmark = pytest.mark.slow


def test_world_model_pipeline_smoke(kedro_project):
    # The session ran `kedro run --pipeline=world_model` on the smoke training set.
    kedro_project.use("collect", "episodes", "world_model")
    root = kedro_project.path

    metrics = json.loads((root / "data/08_reporting/world_model_metrics.json").read_text())
    assert set(metrics["rollout"]) == {"k1", "k4", "k8"}
    for row in metrics["rollout"].values():
        assert {"mse", "mse_copy_last", "psnr", "psnr_copy_last", "beats_copy_last"} <= set(row)
    assert len(metrics["mse_by_step"]) == 8
    # Push-T logs proprioception: G's next-state error is reported beside holding the last.
    assert {"state_mse", "state_mse_hold_last"} <= set(metrics["rollout"]["k1"])
    reward = metrics["reward"]
    assert {"reward_mae", "progress_mae", "progress_mae_predict_mean", "success_auroc"} <= set(
        reward
    )
    assert reward["transitions"] > 0
    png = (root / "data/08_reporting/world_model_rollouts.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    curves = root / "data/08_reporting/world_model_training/plots/metrics/denoiser_loss.tsv"
    assert len(curves.read_text().splitlines()) == 1 + 30 // 5  # header + one row per log

    model = WorldModel.load(root / "data/06_models/world_model")
    assert model.state_dim == 4 and model.state_model is not None
    frames = torch.zeros(2, model.context, 3, 16, 16)
    with torch.no_grad():
        out = model.step(frames, torch.zeros(2, model.context, 2), torch.zeros(2, model.context, 4))
    assert out.frame.shape == (2, 3, 16, 16) and out.state.shape == (2, 4)
    state = json.loads((root / "data/06_models/world_model_checkpoint/state.json").read_text())
    assert state["step"] == 30


def test_world_model_without_training_set_names_the_stage(kedro_project):
    with pytest.raises(Exception, match="kedro run --pipeline=episodes"):
        kedro_project("world_model")


def test_wrong_world_model_parameter_fails_before_training(kedro_project):
    kedro_project.use("collect", "episodes")
    with pytest.raises(Exception, match="world_model.training.stpes: unknown key"):
        kedro_project("world_model", params={"world_model": {"training": {"stpes": 3}}})
