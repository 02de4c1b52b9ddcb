"""Writes ``notebooks/results.ipynb`` (outputs cleared): edit the cells here, then run
``python notebooks/build_results_notebook.py``. Keeping the source in Python keeps the
notebook reviewable in diffs and free of stale outputs.

The notebook reads every artifact through the Kedro catalog. Tagged cells (``figure:*``,
``evaluation``) are what ``tests/test_notebook.py`` checks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

INTRO = """\
# fog_pipeline results

Everything below is loaded **through the Kedro catalog** (`conf/base/catalog*.yml`), so
the notebook reads exactly what `kedro run` / `dvc repro` wrote in `data/`:

1. cleaning outcome of the recorded episodes (`episodes`);
2. global world model: open-loop error by rollout step against copying the last frame
   (`world_model`);
3. local surrogate: prediction error and gradient fidelity before and after distillation
   on the global model's rollouts (`surrogate`);
4. policy training and robot evaluation, when those pipelines have run.

A section whose artifact does not exist yet prints the `kedro run --pipeline=...` that
produces it instead of failing. Environment variables: `FOG_PROJECT_PATH` (project to read,
default: the repository this notebook lives in), `KEDRO_ENV` (default `base`).
"""

SETUP = '''\
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from IPython import get_ipython
from IPython.display import Image, display
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def find_project(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a Kedro project: the repo root."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "conf" / "base").is_dir():
            return folder
    raise FileNotFoundError(f"no Kedro project at or above {start}: set FOG_PROJECT_PATH")


PROJECT = Path(os.environ.get("FOG_PROJECT_PATH") or find_project(Path.cwd())).resolve()
ENV = os.environ.get("KEDRO_ENV") or None  # None: `base`
bootstrap_project(PROJECT)
session = KedroSession.create(project_path=PROJECT, env=ENV)
context = session.load_context()
catalog = context.catalog
catalog_config = context.config_loader["catalog"]
logging.getLogger("kedro").setLevel(logging.WARNING)  # no "Loading data from ..." per load
# Kedro's rich logging also installs rich pretty-printing, which adds an empty block
# above every display(): keep plain reprs (tables and figures still render as HTML/PNG).
get_ipython().display_formatter.formatters["text/plain"].pprint = False
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
print(f"Kedro project {PROJECT} (environment: {ENV or 'base'})")
'''

HELPERS = '''\
def producer(dataset: str, fallback: str) -> str:
    """The pipeline that writes ``dataset`` (from the registry), for "run this first"."""
    try:
        from kedro.framework.project import pipelines

        for name, pipeline in sorted(pipelines.items()):
            if name != "__default__" and dataset in pipeline.all_outputs():
                return name
    except Exception:  # a pipeline that fails to import must not hide the results
        pass
    return fallback


def artifact_path(dataset: str) -> Path | None:
    """The file or folder a catalog entry points at (absolute), if it has one."""
    config = catalog_config.get(dataset) or {}
    location = config.get("filepath") or config.get("path")
    return None if location is None else PROJECT / location


def load(dataset: str, pipeline: str):
    """``catalog.load(dataset)``, or None with a message naming the run that produces it."""
    run = f"`kedro run --pipeline={producer(dataset, pipeline)}`"
    if dataset not in catalog:
        print(f"{dataset!r} is not in this project's catalog yet: {run} produces it.")
        return None
    if not catalog.exists(dataset):
        print(f"{dataset!r} has not been produced yet ({artifact_path(dataset)}): run {run}.")
        return None
    return catalog.load(dataset)


def show(figure: Figure) -> None:
    """Display as PNG whatever the matplotlib backend (project modules select Agg)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    display(Image(data=buffer.getvalue()))


def show_png(dataset: str) -> None:
    """Pictures saved by a MatplotlibDataset (save-only in kedro-datasets): show the file."""
    path = artifact_path(dataset)
    if path is not None and path.is_file():
        display(Image(filename=str(path)))


# Which reporting artifacts exist right now, and which run writes each one.
display(
    pd.DataFrame(
        [
            {
                "dataset": name,
                "file": str(artifact_path(name).relative_to(PROJECT))
                if artifact_path(name)
                else "",
                "exists": bool(artifact_path(name) and artifact_path(name).exists()),
                "produced by": f"kedro run --pipeline={producer(name, '?')}",
            }
            for name, config in catalog_config.items()
            if isinstance(config, dict)
            and ((config.get("metadata") or {}).get("kedro-viz") or {}).get("layer") == "reporting"
        ]
    )
)
'''

EPISODES = """\
summary = load("episodes_summary", "episodes")
if summary is not None:
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    status_ax, reason_ax = fig.subplots(1, 2)
    status = pd.Series(summary["status"])
    status_ax.bar(status.index, status.values, color=["tab:green", "tab:orange", "tab:red"])
    status_ax.bar_label(status_ax.containers[0])
    status_ax.set_title(f"{summary['files']} recorded files")
    status_ax.set_ylabel("files")
    reasons = pd.Series(summary["reasons"], dtype=float).sort_values()
    if reasons.empty:
        reason_ax.text(0.5, 0.5, "no defect found", ha="center", va="center")
        reason_ax.set_axis_off()
    else:
        reason_ax.barh(reasons.index, reasons.values, color="tab:gray")
    reason_ax.set_title("cleaning reasons (occurrences)")
    kept = summary["steps_after"] / max(summary["steps_before"], 1)
    fig.suptitle(f"Episode cleaning: {kept:.1%} of steps kept in {summary['segments']} segments")
    show(fig)
    display(pd.DataFrame(summary["splits"]).T)
"""

WORLD_MODEL = """\
metrics = load("world_model_metrics", "world_model")
if metrics is not None:
    model = np.asarray(metrics["mse_by_step"])
    copy_last = np.asarray(metrics["mse_copy_last_by_step"])
    steps = np.arange(1, len(model) + 1)
    rollout = pd.DataFrame(metrics["rollout"]).T.set_index("k")

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    mse_ax, ratio_ax = fig.subplots(1, 2)
    mse_ax.plot(steps, model, "o-", label="world model")
    mse_ax.plot(steps, copy_last, "s--", label="copy last frame")
    mse_ax.set_xlabel("steps ahead (open loop, recorded actions)")
    mse_ax.set_ylabel("frame MSE")
    mse_ax.set_title(f"Rollout error on {metrics['windows']} validation windows")
    mse_ax.legend()
    ratio_ax.plot(steps, model / copy_last, "o-", label="whole frame: MSE ratio")
    ratio_ax.plot(
        rollout.index,
        rollout["changed_pixel_error_ratio"],
        "D",
        ms=9,
        label="pixels that changed: error ratio",
    )
    ratio_ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ratio_ax.set_xlabel("steps ahead")
    ratio_ax.set_ylabel("world model / copy-last (< 1 is better)")
    ratio_ax.set_ylim(bottom=0)
    ratio_ax.legend()
    ratio_ax.set_title("Relative to the copy-last-frame baseline")
    for ax in (mse_ax, ratio_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    show(fig)
    columns = ["mse", "mse_copy_last", "psnr", "psnr_copy_last", "changed_pixel_error_ratio"]
    display(rollout[columns])
    display(pd.Series(metrics["reward"], name="reward / success model").to_frame())
    show_png("world_model_rollouts")  # real vs imagined frames
"""

SURROGATE = """\
surrogate = load("surrogate_metrics", "surrogate")
if surrogate is not None:
    phases = {
        "before distillation": "before_distillation",
        "after distillation": "after_distillation",
    }
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    err_ax, grad_ax = fig.subplots(1, 2)
    for label, key in phases.items():
        errors = surrogate[key]["latent_error_by_step"]
        err_ax.plot(np.arange(1, len(errors) + 1), errors, "o-", label=label)
    err_ax.set_xlabel("steps ahead")
    err_ax.set_ylabel("latent prediction error")
    err_ax.set_title("Surrogate vs the global model's latent trajectory")
    err_ax.legend()
    err_ax.grid(alpha=0.3)
    err_ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    # Gradient fidelity: cosine between the surrogate's Jacobian-vector products and the
    # global model's (the gradient FoG uses in place of backprop through diffusion).
    measures = ["latent_cosine", "reward_gradient_cosine"]
    x = np.arange(len(measures))
    for i, (label, key) in enumerate(phases.items()):
        stats = surrogate[key]["gradient_fidelity"]
        means = [stats[m]["mean"] for m in measures]
        stds = [stats[m]["std"] for m in measures]
        grad_ax.bar(x + (i - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=4, label=label)
    grad_ax.set_xticks(x, ["latent state", "reward"])
    grad_ax.axhline(0, color="k", lw=0.8)
    grad_ax.set_ylim(-1, 1)
    grad_ax.set_ylabel("gradient cosine (mean ± std)")
    grad_ax.set_title("Gradient fidelity")
    grad_ax.legend()
    show(fig)
    scalars = {
        label: {k: v for k, v in surrogate[key].items() if isinstance(v, (int, float))}
        for label, key in phases.items()
    }
    display(pd.DataFrame(scalars))
    size = surrogate["latent_size"]
    print(f"surrogate: {surrogate['parameters']:,} parameters, latent size {size}")
"""

POLICY = """\
training = load("policy_training_summary", "policy")
if training is not None:
    display(pd.json_normalize(training, sep=".").T.rename(columns={0: "value"}))
    show_png("policy_imagination")
"""

EVALUATION = """\
summary = load("evaluation_summary", "evaluation")
episodes = load("evaluation_episodes", "evaluation")
if summary is not None:
    # {"confidence", "first_seed", "max_steps",
    #  "policies": {name: {success_rate(_low/_high), final_coverage_*, improvement_*, ...}},
    #  "fog_versus": {other: {success_diff_*, final_coverage_diff_*, ...}},
    #  "versus_random": {name: {...}}}
    confidence = summary["confidence"]
    table = pd.DataFrame(summary["policies"]).T
    display(table)
    # FoG minus each baseline, scene by scene (same scenes): success first.
    fog_versus = pd.DataFrame(summary.get("fog_versus", {})).T
    if not fog_versus.empty:
        display(fog_versus)

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    rate_ax, cover_ax = fig.subplots(1, 2)
    rate = table["success_rate"].astype(float)
    low, high = table["success_rate_low"].astype(float), table["success_rate_high"].astype(float)
    errors = np.stack([(rate - low).clip(lower=0), (high - rate).clip(lower=0)])
    bars = rate_ax.bar(table.index, rate, yerr=errors, capsize=4)
    counts = [f"{int(row.successes)}/{int(row.episodes)}" for row in table.itertuples()]
    rate_ax.bar_label(bars, labels=counts)
    rate_ax.set_ylabel(f"success rate ({confidence:.0%} Wilson interval)")
    rate_ax.set_title(f"Zero-shot on the robot ({summary['max_steps']} steps max)")
    if episodes is not None:
        # few episodes per policy: show every one beside the box
        by_policy = [
            (str(name), rows.to_numpy())
            for name, rows in episodes.groupby("policy", sort=False)["final_coverage"]
        ]
        cover_ax.boxplot(
            [values for _, values in by_policy], tick_labels=[name for name, _ in by_policy]
        )
        for i, (_, values) in enumerate(by_policy, start=1):
            cover_ax.scatter(np.full(len(values), i), values, s=12, alpha=0.6, color="tab:orange")
        cover_ax.set_title(f"{len(episodes)} robot episodes")
    else:
        cover_ax.bar(table.index, table["final_coverage_mean"].astype(float), color="tab:orange")
    cover_ax.set_ylabel("final block coverage per episode")
    for ax in (rate_ax, cover_ax):
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    show(fig)

    # The robot camera's view of the first episodes of each policy.
    videos = artifact_path("evaluation_videos")
    for gif in sorted(videos.glob("*.gif")) if videos is not None and videos.is_dir() else []:
        print(gif.stem)
        display(Image(filename=str(gif)))
"""


def build() -> nbformat.NotebookNode:
    def code(source: str, *tags: str) -> nbformat.NotebookNode:
        return new_code_cell(source.rstrip("\n"), metadata={"tags": list(tags)} if tags else {})

    notebook = new_notebook(
        cells=[
            new_markdown_cell(INTRO),
            code(SETUP, "setup"),
            new_markdown_cell("## Reporting artifacts in the catalog"),
            code(HELPERS, "overview"),
            new_markdown_cell("## Recorded episodes: what the cleaner kept"),
            code(EPISODES, "figure:episodes"),
            new_markdown_cell(
                "## Global world model\n\nOpen-loop rollouts from real validation contexts "
                "under the recorded actions. Copy-last-frame is the baseline to beat: at low "
                "resolution few pixels change per step, so whole-frame MSE flatters it; the "
                "error on the pixels that really changed shows the dynamics."
            ),
            code(WORLD_MODEL, "figure:world_model"),
            new_markdown_cell(
                "## Local surrogate (latent RSSM)\n\nFitted on the episodes, then distilled on "
                "the global model's own rollouts. FoG takes its gradients from the surrogate at "
                "the global trajectory, so gradient fidelity matters as much as prediction."
            ),
            code(SURROGATE, "figure:surrogate"),
            new_markdown_cell("## Policy training (FoG, inside the world model)"),
            code(POLICY, "policy"),
            new_markdown_cell(
                "## Robot evaluation\n\nZero-shot success and final coverage per policy, the "
                "same scenes for every policy, and FoG against each baseline scene by scene "
                "(`kedro run --pipeline=evaluation`)."
            ),
            code(EVALUATION, "evaluation"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    # Stable cell ids (nbformat draws random ones): regenerating gives an empty diff.
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags") or [cell.cell_type]
        cell.id = f"{index:02d}-{tags[0].replace(':', '-')}"
    return notebook


if __name__ == "__main__":
    notebook = build()
    nbformat.validate(notebook)
    nbformat.write(notebook, HERE / "results.ipynb")
    print(f"wrote {HERE / 'results.ipynb'}")
