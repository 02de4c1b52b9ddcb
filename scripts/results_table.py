"""The results of a run as Markdown: ``docs/results.md`` and the README's headline table.

Reads the metrics files a ``make run`` leaves in ``data/08_reporting/`` (the formats the
pipelines write: ``evaluation.json``, ``sample_efficiency.csv``, ``policy_training.json``,
``policy_anchor_only.json``, ``ppo_training.json``, ``world_model_metrics.json``,
``surrogate_metrics.json``, ``episodes_summary.json``) and turns them into tables. Never
type the numbers by hand::

    python scripts/results_table.py                  # print the robot-evaluation tables
    python scripts/results_table.py --write          # write docs/results.md and the README
    python scripts/results_table.py --write --machine "2 cores of an Intel Xeon, 24 GiB"

``--write`` replaces ``docs/results.md`` whole and, in ``README.md``, only what lies
between the ``<!-- results:start -->`` and ``<!-- results:end -->`` markers (it stops,
changing nothing, if they are missing, repeated or out of order). Only
``evaluation.json`` is required; a table whose file is absent is left out and the page
says which files were missing. The page names the machine (``--machine``, else what this
machine reports) and the date the evaluation metrics were written. Stage times are not
in the metrics files: pass ``--stage-times FILE`` (a JSON object ``{"stage": seconds}``,
for example from timing ``dvc repro``), or leave ``stage_times.json`` in the reporting
folder; without either the stage-time table is left out.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
REGENERATE = "python scripts/results_table.py --write"
STAGES = ("collect", "episodes", "world_model", "surrogate", "policy", "baselines", "evaluation")
HEADLINE_HEADER = (
    "| policy | success (Wilson 95 %) | final coverage (95 % t) | improvement (max − initial) |"
)


def _interval(entry: Mapping[str, Any], key: str, digits: int = 3, sign: bool = False) -> str:
    form = f"{{:{'+' if sign else ''}.{digits}f}}"
    low, high = (form.format(entry[f"{key}_{k}"]) for k in ("low", "high"))
    return f"{form.format(entry[f'{key}_mean'])} ({low}, {high})"


def _success(entry: Mapping[str, Any]) -> str:
    return (
        f"{entry['successes']}/{entry['episodes']} "
        f"({100 * entry['success_rate_low']:.0f}–{100 * entry['success_rate_high']:.0f} %)"
    )


def _number(value: Any, digits: int = 3, sign: bool = False) -> str:
    """A number for a table cell; ``—`` for a missing one (JSON null, NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:{'+' if sign else ''}.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- robot evaluation (evaluation.json) ------------------------------------------------


def headline_table(summary: Mapping[str, Any]) -> str:
    """The README's table: per policy, success first, then final coverage and improvement."""
    rows = [HEADLINE_HEADER, "|---|---|---|---|"]
    for name, entry in summary["policies"].items():
        rows.append(
            f"| {name} | {_success(entry)} | {_interval(entry, 'final_coverage')} "
            f"| {_interval(entry, 'improvement', sign=True)} |"
        )
    return "\n".join(rows)


def policy_table(summary: Mapping[str, Any]) -> str:
    rows = [
        "| policy | success (Wilson 95 %) | final coverage | improvement (max − initial) "
        "| max coverage | mean length |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in summary["policies"].items():
        rows.append(
            f"| {name} | {_success(entry)} | {_interval(entry, 'final_coverage')} | "
            f"{_interval(entry, 'improvement', sign=True)} | {entry['max_coverage_mean']:.3f} "
            f"| {entry['length_mean']:.0f} |"
        )
    return "\n".join(rows)


def paired_table(comparisons: Mapping[str, Any], label: str = "fog − {other}") -> str:
    rows = [
        "| comparison (paired, 95 % t) | success | final coverage | improvement |",
        "|---|---|---|---|",
    ]
    for other, entry in comparisons.items():
        cells = [
            _interval(entry, f"{measure}_diff", digits=2 if measure == "success" else 3, sign=True)
            for measure in ("success", "final_coverage", "improvement")
        ]
        rows.append(f"| {label.format(other=other)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def efficiency_table(rows: list[dict[str, str]]) -> str:
    """``sample_efficiency.csv``: one row per snapshot, by family and transitions."""
    ordered = sorted(rows, key=lambda row: (row["family"], int(float(row["transitions"]))))
    body = []
    for row in ordered:
        rate = {k: float(row[k]) for k in ("success_rate", "success_rate_low", "success_rate_high")}
        final = [float(row[f"final_coverage_{k}"]) for k in ("mean", "low", "high")]
        body.append(
            [
                row["family"],
                f"{int(float(row['transitions'])):,}",
                f"{100 * rate['success_rate']:.0f} % ({100 * rate['success_rate_low']:.0f}–"
                f"{100 * rate['success_rate_high']:.0f} %)",
                f"{final[0]:.3f} ({final[1]:.3f}, {final[2]:.3f})",
                _number(float(row["max_coverage_mean"])),
            ]
        )
    header = ["family", "transitions", "success (Wilson 95 %)", "final coverage", "max coverage"]
    return _table(header, body)


# --- training inside the world model (policy_training.json, ppo_training.json) ---------


def training_table(runs: Mapping[str, Mapping[str, Any]]) -> str:
    header = [
        "run",
        "world-model transitions",
        "imagined return, first → last 10 %",
        "imagined reward, first → last 10 %",
        "training time",
    ]
    rows = []
    for name, run in runs.items():
        first, last = run.get("imagined_return_first_10pct"), run.get("imagined_return_last_10pct")
        ret = "—" if first is None else f"{_number(first, 2)} → {_number(last, 2)}"
        reward = (
            f"{_number(run.get('imagined_reward_first_10pct'))} → "
            f"{_number(run.get('imagined_reward_last_10pct'))}"
        )
        wall = run.get("wall_time_s")
        rows.append(
            [
                name,
                _number(run.get("transitions")),
                ret,
                reward,
                "—" if wall is None else f"{wall / 60:.1f} min",
            ]
        )
    return _table(header, rows)


def cloning_table(runs: Mapping[str, Mapping[str, Any]]) -> str:
    header = ["run", "cloning steps", "recorded steps", "NLL first 100", "NLL last 100", "anchor"]
    rows = []
    for name, run in runs.items():
        bc = run.get("behaviour_cloning")
        if not bc:
            continue
        rows.append(
            [
                name,
                _number(bc.get("pretrain_steps")),
                _number(bc.get("recorded_steps")),
                _number(bc.get("nll_first_100")),
                _number(bc.get("nll_last_100")),
                _number(float(bc.get("anchor_weight", 0.0)), 2),
            ]
        )
    return _table(header, rows) if rows else ""


# --- models (world_model_metrics.json, surrogate_metrics.json) ---------------------------


def world_model_table(metrics: Mapping[str, Any]) -> str:
    rollout = metrics["rollout"]
    with_state = any("state_mse" in row for row in rollout.values())
    header = [
        "k (steps ahead)",
        "MSE model",
        "MSE copy-last",
        "PSNR model",
        "PSNR copy-last",
        "changed-pixel error vs copy-last",
    ]
    if with_state:
        header += ["state MSE model", "state MSE hold-last"]
    rows = []
    for row in sorted(rollout.values(), key=lambda r: r["k"]):
        cells = [
            str(row["k"]),
            _number(row["mse"], 5),
            _number(row["mse_copy_last"], 5),
            _number(row["psnr"], 2),
            _number(row["psnr_copy_last"], 2),
            _number(row.get("changed_pixel_error_ratio"), 2),
        ]
        if with_state:
            cells += [_number(row.get("state_mse"), 5), _number(row.get("state_mse_hold_last"), 4)]
        rows.append(cells)
    return _table(header, rows)


def reward_model_table(reward: Mapping[str, Any]) -> str:
    rows = [
        [
            "reward label MAE",
            _number(reward["reward_mae"]),
            _number(reward["reward_mae_predict_mean"]),
        ],
        [
            "progress label MAE",
            _number(reward["progress_mae"]),
            _number(reward["progress_mae_predict_mean"]),
        ],
        ["success accuracy", _number(reward["success_accuracy"]), ""],
        ["success AUROC", _number(reward.get("success_auroc")), ""],
        [
            "success transitions (of all)",
            f"{reward['success_positives']:,} of {reward['transitions']:,}",
            "",
        ],
    ]
    return _table(["validation transitions", "model", "predicting the training mean"], rows)


def _cosine(summary: Mapping[str, Any]) -> str:
    return (
        f"{_number(summary['mean'], 2)} ± {_number(summary['std'], 2)} "
        f"({_number(summary['median'], 2)})"
    )


def surrogate_table(metrics: Mapping[str, Any]) -> str:
    before, after = metrics["before_distillation"], metrics["after_distillation"]
    horizon = next(
        (key[len("latent_error_k") :] for key in before if key.startswith("latent_error_k")), None
    )
    rows: list[list[str]] = [
        ["one-step latent error (relative)"]
        + [_number(m["one_step_latent_error"]) for m in (before, after)]
    ]
    if horizon is not None:
        rows.append(
            [f"{horizon}-step latent error (relative)"]
            + [_number(m[f"latent_error_k{horizon}"]) for m in (before, after)]
        )
    rows.append(
        ["reward-head (progress) MAE"] + [_number(m["reward_mae"]) for m in (before, after)]
    )
    if "proprio_mse" in before:
        rows.append(
            ["decoded proprioception, squared error"]
            + [_number(m.get("proprio_mse"), 4) for m in (before, after)]
        )
    rows.append(
        ["decoded frame MSE, one step"]
        + [_number(m["decoded_frame_mse_k1"], 5) for m in (before, after)]
    )
    for key, label in (
        ("latent_cosine", "latent-derivative cosine, mean ± std (median)"),
        ("reward_gradient_cosine", "reward-gradient cosine, mean ± std (median)"),
    ):
        rows.append([label] + [_cosine(m["gradient_fidelity"][key]) for m in (before, after)])
    return _table(["", "before distillation", "after distillation"], rows)


# --- episodes (episodes_summary.json) ----------------------------------------------------


def episodes_table(summary: Mapping[str, Any]) -> str:
    status = summary["status"]
    reasons = ", ".join(f"{n} `{reason}`" for reason, n in summary["reasons"].items()) or "none"
    rows = [
        ["files", _number(summary["files"])],
        ["kept / repaired / quarantined", " / ".join(str(status[s]) for s in status)],
        ["steps kept (of recorded)", f"{summary['steps_after']:,} of {summary['steps_before']:,}"],
        ["segments", _number(summary["segments"])],
        ["reasons", reasons],
    ]
    for split, counts in summary.get("splits", {}).items():
        rows.append(
            [
                f"{split} split",
                f"{counts['episodes']} episodes, {counts['segments']} segments, "
                f"{counts['steps']:,} steps",
            ]
        )
    return _table(["cleaning", "count"], rows)


def stage_time_table(times: Mapping[str, float]) -> str:
    order = [s for s in STAGES if s in times] + [s for s in times if s not in STAGES]
    rows = [[stage, f"{float(times[stage]) / 60:.1f} min"] for stage in order]
    rows.append(["**total**", f"**{sum(float(t) for t in times.values()) / 60:.1f} min**"])
    return _table(["stage", "time"], rows)


# --- the page -------------------------------------------------------------------------


def detect_machine() -> str:
    """What this machine reports: CPU model, usable cores, memory (Linux), no GPU probe."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cores} cores of {model}{memory}"


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def collect_metrics(reporting: Path) -> dict[str, Any]:
    """Every metrics file of ``reporting`` this page reads; absent ones are None."""
    evaluation = reporting / "evaluation.json"
    if not evaluation.is_file():
        raise FileNotFoundError(
            f"{evaluation} is missing: run `make run` (or `dvc repro evaluation`) first"
        )
    efficiency = reporting / "sample_efficiency.csv"
    return {
        "evaluation": _load_json(evaluation),
        "evaluation_date": dt.datetime.fromtimestamp(evaluation.stat().st_mtime, dt.UTC),
        "sample_efficiency": (
            list(csv.DictReader(efficiency.open())) if efficiency.is_file() else None
        ),
        "policy_training": _load_json(reporting / "policy_training.json"),
        "policy_anchor_only": _load_json(reporting / "policy_anchor_only.json"),
        "ppo_training": _load_json(reporting / "ppo_training.json"),
        "world_model": _load_json(reporting / "world_model_metrics.json"),
        "surrogate": _load_json(reporting / "surrogate_metrics.json"),
        "episodes": _load_json(reporting / "episodes_summary.json"),
        "stage_times": _load_json(reporting / "stage_times.json"),
    }


FILES = {
    "sample_efficiency": "sample_efficiency.csv",
    "policy_training": "policy_training.json",
    "policy_anchor_only": "policy_anchor_only.json",
    "ppo_training": "ppo_training.json",
    "world_model": "world_model_metrics.json",
    "surrogate": "surrogate_metrics.json",
    "episodes": "episodes_summary.json",
}


def results_page(metrics: Mapping[str, Any], machine: str, today: dt.date | None = None) -> str:
    """The whole of ``docs/results.md``."""
    summary = metrics["evaluation"]
    today = today or dt.date.today()
    first, episodes = summary["first_seed"], next(iter(summary["policies"].values()))["episodes"]
    parts = [
        "# Results",
        "",
        f"<!-- Generated by scripts/results_table.py; do not edit. Regenerate: {REGENERATE} -->",
        "",
        f"Generated by `{REGENERATE}` on {today.isoformat()} from the metrics in "
        "`data/08_reporting/` of one `make run` (default configuration, `base` "
        "environment), never typed by hand.",
        "",
        f"- **Machine:** {machine}.",
        f"- **Evaluation metrics written:** {metrics['evaluation_date']:%Y-%m-%d %H:%M} UTC.",
        "",
        "What the columns mean: [pipelines/evaluation.md](pipelines/evaluation.md#metrics); "
        "how the numbers are read: the pages under [pipelines/](pipelines/README.md).",
        "",
        "## On the robot",
        "",
        f"Every policy on the same {episodes} unseen scenes (seeds {first}–{first + episodes - 1}),"
        f" at most {summary['max_steps']} steps each; `evaluation.json`. Success with its "
        "Wilson 95 % interval; final coverage and improvement (max − initial coverage) "
        "with 95 % Student-t intervals.",
        "",
        policy_table(summary),
        "",
    ]
    if summary.get("fog_versus"):
        parts += [
            "FoG's paired differences, scene by scene (`fog_versus`):",
            "",
            paired_table(summary["fog_versus"]),
            "",
        ]
    if summary.get("versus_random"):
        parts += [
            "Every policy against random actions, scene by scene (`versus_random`):",
            "",
            paired_table(summary["versus_random"], "{other} − random"),
            "",
        ]
    if metrics.get("sample_efficiency"):
        parts += [
            "## Sample efficiency",
            "",
            "Every FoG and PPO snapshot on the robot against the world-model transitions it "
            "had consumed (0: its behaviour-cloned start); `sample_efficiency.csv`.",
            "",
            efficiency_table(metrics["sample_efficiency"]),
            "",
        ]
    runs = {
        name: metrics[key]
        for name, key in (
            ("fog", "policy_training"),
            ("fog_anchor_only", "policy_anchor_only"),
            ("ppo", "ppo_training"),
        )
        if metrics.get(key)
    }
    if runs:
        parts += [
            "## Inside the world model",
            "",
            "What the optimisers saw in imagination (`policy_training.json`, "
            "`policy_anchor_only.json`, `ppo_training.json`). The imagined return is FoG's "
            "objective (rewards, entropy bonus and the critic's value; PPO has none); the "
            "reward is G's predicted progress per step (PPO: its rollout buffer's mean, "
            "absorbing-success bonus included).",
            "",
            training_table(runs),
            "",
        ]
        cloning = cloning_table(runs)
        if cloning:
            parts += ["Behaviour cloning before FoG:", "", cloning, ""]
    if metrics.get("world_model"):
        wm = metrics["world_model"]
        parts += [
            "## Global world model",
            "",
            f"Open loop under the recorded actions, {wm['windows']} validation windows "
            "(`world_model_metrics.json`):",
            "",
            world_model_table(wm),
            "",
        ]
        if wm.get("reward"):
            parts += [reward_model_table(wm["reward"]), ""]
    if metrics.get("surrogate"):
        sm = metrics["surrogate"]
        parts += [
            "## Local surrogate",
            "",
            f"Held-out validation states (`surrogate_metrics.json`; "
            f"{sm.get('parameters', 0) / 1e6:.2f} M parameters, latent "
            f"{sm.get('latent_size', '?')} wide):",
            "",
            surrogate_table(sm),
            "",
        ]
    if metrics.get("episodes"):
        parts += [
            "## Episodes",
            "",
            "`episodes_summary.json`:",
            "",
            episodes_table(metrics["episodes"]),
            "",
        ]
    if metrics.get("stage_times"):
        parts += ["## Stage times", "", stage_time_table(metrics["stage_times"]), ""]
    missing = [name for key, name in FILES.items() if metrics.get(key) is None]
    if missing:
        parts += ["Not found, so left out: " + ", ".join(f"`{m}`" for m in missing) + ".", ""]
    return "\n".join(parts)


def readme_block(summary: Mapping[str, Any], today: dt.date | None = None) -> str:
    """What goes between the README's markers."""
    today = today or dt.date.today()
    first = summary["first_seed"]
    episodes = next(iter(summary["policies"].values()))["episodes"]
    return (
        f"{headline_table(summary)}\n\n"
        f"_{episodes} unseen scenes per policy (seeds {first}–{first + episodes - 1}), "
        f"≤ {summary['max_steps']} steps; generated on {today.isoformat()} by "
        f"`{REGENERATE}`; all tables in [docs/results.md](docs/results.md)._"
    )


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the result markers replaced by ``block``."""
    starts, ends = text.count(START), text.count(END)
    if starts != 1 or ends != 1:
        raise ValueError(
            f"README needs exactly one {START} and one {END}; found {starts} and {ends}"
        )
    head, rest = text.split(START)
    if END not in rest:
        raise ValueError(f"{END} comes before {START} in the README")
    _, tail = rest.split(END)
    return f"{head}{START}\n{block}\n{END}{tail}"


def block_of(text: str) -> str:
    """What lies between the result markers (validated as :func:`replace_block` does)."""
    replace_block(text, "")
    return text.split(START)[1].split(END)[0].strip("\n")


def markdown_tables(text: str) -> list[list[str]]:
    """The pipe tables of a Markdown text, each as its lines (fenced code skipped)."""
    tables, current, fenced = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            current.append(line)
            continue
        if current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def table_problems(lines: list[str]) -> list[str]:
    """What is wrong with one pipe table: the separator row, the cell counts, empty body."""

    def cells(line: str) -> list[str]:
        return re.split(r"(?<!\\)\|", line.strip().strip("|"))

    problems = []
    if len(lines) < 3:
        problems.append(f"a table needs a header, a separator and a row: {lines[:1]}")
    elif not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[1].strip()):
        problems.append(f"second line is not a separator row: {lines[1]!r}")
    width = len(cells(lines[0]))
    for line in lines[1:]:
        if not line.rstrip().endswith("|"):
            problems.append(f"row does not end with '|': {line!r}")
        elif len(cells(line)) != width:
            problems.append(f"{len(cells(line))} cells where the header has {width}: {line!r}")
    return problems


def write(
    reporting: Path, readme: Path, results: Path, machine: str | None, stage_times: Path | None
) -> None:
    metrics = collect_metrics(reporting)
    if stage_times is not None:
        metrics["stage_times"] = json.loads(stage_times.read_text())
    readme_text = replace_block(readme.read_text(), readme_block(metrics["evaluation"]))
    page = results_page(metrics, machine or detect_machine())
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(page)
    readme.write_text(readme_text)
    print(f"wrote {results} and the results block of {readme}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "metrics",
        nargs="?",
        type=Path,
        default=None,
        help="evaluation.json to print (default: <reporting>/evaluation.json)",
    )
    parser.add_argument("--reporting", type=Path, default=Path("data/08_reporting"))
    parser.add_argument("--write", action="store_true", help="write docs/results.md and README")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument("--machine", help="the machine the run used (default: this one)")
    parser.add_argument("--stage-times", type=Path, help='JSON {"stage": seconds}')
    args = parser.parse_args(argv)
    if args.write:
        write(args.reporting, args.readme, args.results, args.machine, args.stage_times)
        return
    summary = json.loads((args.metrics or args.reporting / "evaluation.json").read_text())
    print(
        f"{len(summary['policies'])} policies, scenes from seed {summary['first_seed']}, "
        f"{summary['max_steps']}-step limit\n"
    )
    print(policy_table(summary))
    print()
    print(paired_table(summary["fog_versus"]))


if __name__ == "__main__":
    main()
