"""scripts/results_table.py: docs/results.md and the README's headline, from metrics files.

The fixture writes small metrics files in the formats the pipelines write: the
evaluation summary is built by the evaluation report's own functions (as the
``report_evaluation`` node lays it out), the others with the keys their nodes write.
The repository's README block and docs/results.md are checked too: malformed markers or
tables fail here.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fog_pipeline.core.evaluation.report import (
    aggregate,
    comparisons,
    paired_differences,
    sample_efficiency_row,
)

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("results_table", REPO / "scripts/results_table.py")
results_table = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(results_table)

POLICIES = ("random", "data_policy", "fog_initial", "fog_anchor_only", "fog", "ppo")
SEEDS = range(100_000, 100_004)


def _episodes(policies=POLICIES, seeds=SEEDS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for p, policy in enumerate(policies):
        for seed in seeds:
            initial = float(rng.uniform(0, 0.2))
            top = min(1.0, initial + float(rng.uniform(0, 0.3)) + 0.15 * p)
            rows.append(
                {
                    "policy": policy,
                    "seed": seed,
                    "success": policy == "data_policy" and seed != SEEDS[-1],
                    "initial_coverage": initial,
                    "final_coverage": float(rng.uniform(0, top)),
                    "max_coverage": top,
                    "improvement": top - initial,
                    "return": float(rng.uniform(0, 30)),
                    "length": int(rng.integers(50, 301)),
                }
            )
    return pd.DataFrame(rows)


def _evaluation_summary(episodes: pd.DataFrame) -> dict:
    # The layout of pipelines/evaluation/nodes.py: report_evaluation.
    return {
        "confidence": 0.95,
        "first_seed": SEEDS[0],
        "max_steps": 300,
        "policies": aggregate(episodes),
        "fog_versus": comparisons(
            episodes, "fog", ("fog_initial", "fog_anchor_only", "ppo", "random")
        ),
        "versus_random": paired_differences(episodes, "random"),
    }


def _training(transitions: int, with_cloning: bool) -> dict:
    # The keys of pipelines/policy/nodes.py: train_policy (and baselines' for PPO).
    summary = {
        "iterations": 4,
        "transitions": transitions,
        "wall_time_s": 125.4,
        "resumed": False,
        "imagined_return_first_10pct": 26.1,
        "imagined_return_last_10pct": 109.2,
        "imagined_reward_first_10pct": 0.601,
        "imagined_reward_last_10pct": 0.654,
        "final_alpha": 0.04,
        "snapshots": [0, transitions],
    }
    if with_cloning:
        summary["behaviour_cloning"] = {
            "pretrain_steps": 3000,
            "anchor_weight": 1.0,
            "recorded_steps": 17_000,
            "nll_first_100": 1.5,
            "nll_last_100": -0.2,
        }
    return summary


def _world_model() -> dict:
    # pipelines/world_model/nodes.py: evaluate_world_model (frame_fidelity, reward_fidelity).
    def row(k, mse, copy):
        return {
            "state_mse": 1e-4 * k,
            "state_mse_hold_last": 0.01 * k,
            "k": k,
            "mse": mse,
            "mse_copy_last": copy,
            "psnr": -10 * math.log10(mse),
            "psnr_copy_last": -10 * math.log10(copy),
            "changed_pixel_share": 0.02,
            "changed_pixel_error_ratio": None if k == 16 else 0.3,  # NaN is written as null
            "beats_copy_last": mse < copy,
        }

    rollout = {"k1": row(1, 0.00039, 0.00044), "k4": row(4, 0.00096, 0.00136)}
    rollout["k16"] = row(16, 0.00241, 0.00319)
    return {
        "windows": 64,
        "rollout": rollout,
        "mse_by_step": [0.0004] * 16,
        "mse_copy_last_by_step": [0.0005] * 16,
        "reward": {
            "transitions": 1800,
            "reward_mae": 0.014,
            "reward_mae_predict_mean": 0.262,
            "progress_mae": 0.024,
            "progress_mae_predict_mean": 0.234,
            "success_positives": 43,
            "success_accuracy": 0.988,
            "success_auroc": 0.997,
        },
    }


def _surrogate() -> dict:
    # pipelines/surrogate/nodes.py: report_surrogate (prediction_errors, gradient_fidelity).
    def phase(shift):
        cosine = {"mean": 0.7 - shift, "std": 0.13, "median": 0.75, "share_positive": 1.0}
        return {
            "proprio_mse": 0.0033,
            "latent_error_by_step": [0.16 + shift] * 8,
            "one_step_latent_error": 0.16 + shift,
            "latent_error_k8": 0.3 + shift,
            "reward_mae": 0.05,
            "decoded_frame_mse_k1": 0.001,
            "decoded_frame_mse_k8": 0.002,
            "gradient_fidelity": {"latent_cosine": cosine, "reward_gradient_cosine": cosine},
        }

    return {
        "before_distillation": phase(0.0),
        "after_distillation": phase(0.1),
        "parameters": 1_010_000,
        "latent_size": 224,
    }


def _episodes_summary() -> dict:
    # pipelines/episodes/nodes.py: report_episodes.
    return {
        "files": 200,
        "status": {"kept": 186, "repaired": 14, "quarantined": 0},
        "reasons": {"nonfinite_action": 5, "time_gap": 5},
        "steps_before": 19_992,
        "steps_after": 19_971,
        "segments": 214,
        "splits": {
            "train": {"episodes": 180, "segments": 193, "steps": 17_900},
            "val": {"episodes": 20, "segments": 21, "steps": 2071},
        },
        "state_names": ["agent_x", "agent_y", "target_x", "target_y"],
        "progress_source": "progress",
    }


@pytest.fixture
def reporting(tmp_path: Path) -> Path:
    folder = tmp_path / "08_reporting"
    folder.mkdir()
    episodes = _episodes()
    (folder / "evaluation.json").write_text(json.dumps(_evaluation_summary(episodes), indent=2))
    snapshots = _episodes(("fog@0", "fog@64", "ppo@0", "ppo@64"))
    summary = aggregate(snapshots)
    rows = [
        sample_efficiency_row(name.split("@")[0], int(name.split("@")[1]), summary[name])
        for name in summary
    ]
    with (folder / "sample_efficiency.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    files = {
        "policy_training.json": _training(64, True),
        "policy_anchor_only.json": _training(64, True),
        "ppo_training.json": {
            k: v for k, v in _training(64, False).items() if not k.startswith("imagined_return")
        },
        "world_model_metrics.json": _world_model(),
        "surrogate_metrics.json": _surrogate(),
        "episodes_summary.json": _episodes_summary(),
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2))
    return folder


README = """# project

Intro.

<!-- results:start -->
old table
<!-- results:end -->

More text, kept as it is.
"""


def _write(reporting: Path, tmp_path: Path, *extra: str) -> tuple[str, str]:
    readme, results = tmp_path / "README.md", tmp_path / "docs" / "results.md"
    if not readme.exists():
        readme.write_text(README)
    results_table.main(
        [
            "--write",
            "--reporting",
            str(reporting),
            "--readme",
            str(readme),
            "--results",
            str(results),
            "--machine",
            "a test machine",
            *extra,
        ]
    )
    return readme.read_text(), results.read_text()


def _assert_tables_well_formed(text: str) -> list[list[str]]:
    tables = results_table.markdown_tables(text)
    for table in tables:
        assert results_table.table_problems(table) == [], table
    return tables


def test_write_fills_the_readme_block_and_the_results_page(reporting, tmp_path):
    readme, page = _write(reporting, tmp_path)

    head, tail = README.split("<!-- results:start -->")[0], README.split("<!-- results:end -->")[1]
    assert readme.startswith(head) and readme.endswith(tail)  # only the block changes
    block = results_table.block_of(readme)
    assert "old table" not in block
    (headline,) = results_table.markdown_tables(block)
    assert headline[0] == results_table.HEADLINE_HEADER
    assert results_table.table_problems(headline) == []
    assert [line.split("|")[1].strip() for line in headline[2:]] == list(POLICIES)
    assert "| data_policy | 3/4 (" in block  # successes / episodes with the Wilson interval
    assert "docs/results.md" in block

    tables = _assert_tables_well_formed(page)
    assert len(tables) >= 10
    for heading in (
        "## On the robot",
        "## Sample efficiency",
        "## Inside the world model",
        "## Global world model",
        "## Local surrogate",
        "## Episodes",
    ):
        assert heading in page
    assert "a test machine" in page and "Not found" not in page
    assert "| fog − ppo |" in page and "| ppo − random |" in page
    assert "| ppo | 64 |" in page  # sample efficiency: family, transitions
    assert "26.10 → 109.20" in page  # FoG's imagined return, first -> last 10 %
    assert "| 16 | 0.00241 | 0.00319 |" in page and "—" in page  # a null ratio
    assert "0.70 ± 0.13 (0.75)" in page  # surrogate gradient cosine
    assert "186 / 14 / 0" in page
    assert "## Stage times" not in page  # no stage times in the metrics

    # Regenerating the same metrics gives the same files.
    assert _write(reporting, tmp_path) == (readme, page)


def test_stage_times_come_from_a_file(reporting, tmp_path):
    times = tmp_path / "times.json"
    times.write_text(json.dumps({"episodes": 9, "collect": 102}))
    _, page = _write(reporting, tmp_path, "--stage-times", str(times))
    section = page.split("## Stage times")[1]
    (table, *_) = results_table.markdown_tables(section)
    assert [line.split("|")[1].strip() for line in table[2:]] == [
        "collect",
        "episodes",
        "**total**",
    ]
    assert "**1.9 min**" in table[-1]


def test_absent_files_are_left_out_and_named(tmp_path, reporting):
    for path in reporting.iterdir():
        if path.name != "evaluation.json":
            path.unlink()
    _, page = _write(reporting, tmp_path)
    _assert_tables_well_formed(page)
    assert "## On the robot" in page and "## Global world model" not in page
    assert "`world_model_metrics.json`" in page.split("Not found")[1]


def test_without_the_evaluation_nothing_is_written(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="evaluation.json"):
        _write(empty, tmp_path)
    assert (tmp_path / "README.md").read_text() == README
    assert not (tmp_path / "docs" / "results.md").exists()


@pytest.mark.parametrize(
    "broken",
    [
        README.replace("<!-- results:start -->\n", ""),
        README.replace("<!-- results:end -->", "<!-- results:end -->\n<!-- results:end -->"),
        "<!-- results:end -->\n\n<!-- results:start -->\n",
    ],
    ids=["no-start", "two-ends", "reversed"],
)
def test_malformed_markers_stop_the_write(reporting, tmp_path, broken):
    (tmp_path / "README.md").write_text(broken)
    with pytest.raises(ValueError, match="results:"):
        _write(reporting, tmp_path)
    assert (tmp_path / "README.md").read_text() == broken
    assert not (tmp_path / "docs" / "results.md").exists()


def test_the_table_checker_finds_malformed_tables():
    good = ["| a | b |", "|---|---|", "| 1 | 2 |"]
    assert results_table.table_problems(good) == []
    assert results_table.table_problems(["| a | b |", "| 1 | 2 |", "| 3 | 4 |"])
    assert results_table.table_problems(["| a | b |", "|---|---|", "| 1 | 2 | 3 |"])
    assert results_table.table_problems(["| a | b |", "|---|---|"])


def test_the_readme_headline_block_is_well_formed():
    block = results_table.block_of((REPO / "README.md").read_text())
    tables = results_table.markdown_tables(block)
    assert len(tables) == 1, "the README's results block holds one table"
    (table,) = tables
    assert table[0] == results_table.HEADLINE_HEADER
    assert results_table.table_problems(table) == []
    names = [line.split("|")[1].strip() for line in table[2:]]
    assert {"fog", "ppo", "random"} <= set(names)
    assert "docs/results.md" in block


def test_the_results_page_is_well_formed():
    page = (REPO / "docs" / "results.md").read_text()
    assert results_table.REGENERATE in page
    tables = _assert_tables_well_formed(page)
    assert any(table[0].startswith("| policy | success (Wilson 95 %)") for table in tables)
