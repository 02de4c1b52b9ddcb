"""surrogate pipeline on the smoke configuration, through Kedro's runner."""

from __future__ import annotations

import json

import pytest
import torch

from fog_pipeline.core.checkpoint import load_model
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig

pytestmark = pytest.mark.slow


def test_surrogate_pipeline_smoke(kedro_project):
    kedro_project("collect", "episodes", "world_model")
    kedro_project("surrogate")
    root = kedro_project.path

    report = json.loads((root / "data/08_reporting/surrogate_metrics.json").read_text())
    for phase in ("before_distillation", "after_distillation"):
        row = report[phase]
        assert len(row["latent_error_by_step"]) == 4
        assert row["reward_mae"] >= 0
        for name in ("latent_cosine", "reward_gradient_cosine"):
            summary = row["gradient_fidelity"][name]
            assert -1 <= summary["mean"] <= 1 and summary["std"] >= 0
    assert report["parameters"] > 0 and report["latent_size"] == 16 + 4

    before = load_model(root / "data/06_models/surrogate_on_episodes", RSSM, RSSMConfig)
    after = load_model(root / "data/06_models/surrogate", RSSM, RSSMConfig)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    ]
    assert any(changed), "distillation must update the surrogate"
    for phase in ("episodes", "distillation"):
        curves = root / f"data/08_reporting/surrogate_training/{phase}/plots/metrics/loss.tsv"
        assert curves.exists()


def test_surrogate_without_world_model_names_the_stage(kedro_project):
    kedro_project("collect", "episodes")
    with pytest.raises(Exception, match="kedro run --pipeline=world_model"):
        kedro_project("surrogate")
