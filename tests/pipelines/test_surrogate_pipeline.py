"""surrogate pipeline on the smoke configuration, through Kedro's runner."""

from __future__ import annotations

import json

import pytest
import torch

from fog_pipeline.core.checkpoint import load_model
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.surrogate.evaluation import (
    SurrogateEvaluationConfig,
    gradient_fidelity,
    prediction_errors,
)
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig
from fog_pipeline.core.world_model.model import WorldModel

pytestmark = pytest.mark.slow


def test_surrogate_pipeline_smoke(kedro_project):
    # The session ran `kedro run --pipeline=surrogate` on the smoke upstream artifacts.
    kedro_project.use("collect", "episodes", "world_model", "surrogate")
    root = kedro_project.path

    report = json.loads((root / "data/08_reporting/surrogate_metrics.json").read_text())
    before = load_model(root / "data/06_models/surrogate_on_episodes", RSSM, RSSMConfig)
    after = load_model(root / "data/06_models/surrogate", RSSM, RSSMConfig)
    # Each phase reports its own model, measured on the held-out windows of the smoke
    # evaluation settings (conf/smoke: windows 8, horizon 4; the run's seed 0).
    training_set = TrainingSet.load(root / "data/03_primary/training_set")
    world_model = WorldModel.load(root / "data/06_models/world_model")
    config = SurrogateEvaluationConfig(windows=8, horizon=4)
    for phase, model in (("before_distillation", before), ("after_distillation", after)):
        row = report[phase]
        assert len(row["latent_error_by_step"]) == 4
        errors = prediction_errors(model, training_set, config, seed=0)
        for key in ("reward_mae", "one_step_latent_error", "latent_error_by_step"):
            assert row[key] == pytest.approx(errors[key], rel=1e-5), (phase, key)
        fidelity = gradient_fidelity(model, world_model, training_set, config, seed=0)
        for name in ("latent_cosine", "reward_gradient_cosine"):
            assert row["gradient_fidelity"][name] == pytest.approx(fidelity[name], abs=1e-5)
    assert report["before_distillation"]["reward_mae"] != report["after_distillation"]["reward_mae"]
    assert report["parameters"] > 0 and report["latent_size"] == 16 + 4

    changed = [
        not torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    ]
    assert any(changed), "distillation must update the surrogate"
    for phase in ("episodes", "distillation"):
        curves = root / f"data/08_reporting/surrogate_training/{phase}/plots/metrics/loss.tsv"
        assert curves.exists()


def test_surrogate_without_world_model_names_the_stage(kedro_project):
    kedro_project.use("collect", "episodes")
    with pytest.raises(Exception, match="kedro run --pipeline=world_model"):
        kedro_project("surrogate")
