"""Cleaning throughput beside the raw read speed of the same files, on this machine.

    python benchmarks/cleaning_throughput.py [--folder data/01_raw/episodes] [--repeat 3]

Rows (best of --repeat, warm page cache):
  bytes read      Path.read_bytes of every file: the I/O limit
  HDF5 read       h5py reads of every array (schema.read_raw): the limit cleaning can reach
  clean           HDF5 read + validation/repair (clean_episode), file by file
  clean + build   the whole `episodes` pipeline work: clean, build and save the training set
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from fog_pipeline.core.episodes.cleaning import CleaningConfig, clean_file, reconcile
from fog_pipeline.core.episodes.schema import EpisodeReadError, read_raw
from fog_pipeline.core.episodes.training_set import build_training_set


def _clean_all(files, config):
    return reconcile([clean_file(path.stem, partial(read_raw, path), config) for path in files])


def _build(files, config, out):
    results = _clean_all(files, config)
    segments = [s for r in results for s in r.segments]
    build_training_set(segments, 0.1, 0, {}).save(out)


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("data/01_raw/episodes"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.h5"))
    if not files:
        raise SystemExit(f"No episodes in {args.folder}: run `kedro run --pipeline=collect` first.")
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    config = CleaningConfig()

    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "bytes read": _best(lambda: [f.read_bytes() for f in files], args.repeat),
            "HDF5 read": _best(lambda: [_read(f) for f in files], args.repeat),
            "clean": _best(lambda: _clean_all(files, config), args.repeat),
            "clean + build": _best(
                lambda: _build(files, config, Path(tmp) / "training_set"), args.repeat
            ),
        }

    print(
        f"{len(files)} files, {megabytes:.1f} MB, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads"
    )
    reference = rows["HDF5 read"]
    print(f"{'':<15}{'seconds':>9}{'episodes/s':>12}{'MB/s':>9}{'vs HDF5 read':>14}")
    for name, seconds in rows.items():
        print(
            f"{name:<15}{seconds:>9.3f}{len(files) / seconds:>12.0f}{megabytes / seconds:>9.0f}"
            f"{reference / seconds:>13.2f}x"
        )


def _read(path):
    try:
        return read_raw(path)
    except EpisodeReadError:
        return None


if __name__ == "__main__":
    main()
