"""The robot-evaluation tables of the README, printed from the metrics of a run.

Reads ``data/08_reporting/evaluation.json`` (the evaluation stage's DVC metrics) and
prints two Markdown tables: per policy (success first, then final coverage, improvement
over the scene's start and max coverage), and FoG's paired differences on the same
scenes. Copy them into the README after a ``make run``; never type the numbers by hand.

    python scripts/results_table.py [data/08_reporting/evaluation.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _interval(entry: dict, key: str, digits: int = 3, sign: bool = False) -> str:
    form = f"{{:{'+' if sign else ''}.{digits}f}}"
    low, high = (form.format(entry[f"{key}_{k}"]) for k in ("low", "high"))
    return f"{form.format(entry[f'{key}_mean'])} ({low}, {high})"


def policy_table(summary: dict) -> str:
    rows = [
        "| policy | success (Wilson 95 %) | final coverage | improvement (max − initial) "
        "| max coverage | mean length |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in summary["policies"].items():
        success = (
            f"{entry['successes']}/{entry['episodes']} "
            f"({100 * entry['success_rate_low']:.0f}–{100 * entry['success_rate_high']:.0f} %)"
        )
        rows.append(
            f"| {name} | {success} | {_interval(entry, 'final_coverage')} | "
            f"{_interval(entry, 'improvement', sign=True)} | {entry['max_coverage_mean']:.3f} "
            f"| {entry['length_mean']:.0f} |"
        )
    return "\n".join(rows)


def paired_table(summary: dict) -> str:
    rows = [
        "| comparison (paired, 95 % t) | success | final coverage | improvement |",
        "|---|---|---|---|",
    ]
    for other, entry in summary["fog_versus"].items():
        cells = [
            _interval(entry, f"{measure}_diff", digits=2 if measure == "success" else 3, sign=True)
            for measure in ("success", "final_coverage", "improvement")
        ]
        rows.append(f"| fog − {other} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "metrics", nargs="?", type=Path, default=Path("data/08_reporting/evaluation.json")
    )
    summary = json.loads(parser.parse_args().metrics.read_text())
    print(
        f"{len(summary['policies'])} policies, scenes from seed {summary['first_seed']}, "
        f"{summary['max_steps']}-step limit\n"
    )
    print(policy_table(summary))
    print()
    print(paired_table(summary))


if __name__ == "__main__":
    main()
