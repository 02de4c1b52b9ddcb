"""LeRobot datasets in and out: read LeRobot v3.0 / v2.x folders as episodes of the
project's schema (``schema.py``), write episodes or the cleaned training set as LeRobot
v3.0. Plain pandas/pyarrow and PyAV: the ``lerobot`` package pins its own torch.

LeRobot v3.0 packs many episodes into each file::

    meta/info.json            codebase_version "v3.0", fps, features (dtype, shape, names
                              of every column and camera), total_episodes, total_frames,
                              chunks_size, data_files_size_in_mb, video_files_size_in_mb,
                              data_path / video_path templates ({chunk_index},
                              {file_index}, {video_key})
    meta/stats.json           per feature: min, max, mean, std, count, q01 ... q99
                              (cameras per channel, in [0, 1])
    meta/tasks.parquet        index ``task`` (the text), column ``task_index``
    meta/episodes/chunk-000/file-000.parquet
                              one row per episode: episode_index, tasks, length,
                              dataset_from_index / dataset_to_index (its rows in the
                              data files read back to back), data/chunk_index,
                              data/file_index, for each camera videos/<key>/chunk_index,
                              /file_index, /from_timestamp, /to_timestamp (where in the
                              video file it lies), and stats/<feature>/<stat>
    data/chunk-000/file-000.parquet
                              one row per frame: action, observation.state, next.reward,
                              next.success, next.done, timestamp, frame_index,
                              episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4
                              the episodes' frames back to back

v2.1 (and v2.0) keep one file per episode: meta/episodes.jsonl (``{episode_index, tasks,
length}`` a line), meta/tasks.jsonl, meta/episodes_stats.jsonl,
data/chunk-000/episode_000000.parquet and videos/chunk-000/<key>/episode_000000.mp4 (the
paths come from info.json's templates, with ``episode_chunk = episode_index //
chunks_size``). A camera is a ``video`` feature (mp4 files) or an ``image`` feature (PNG
bytes in the data column).

Row t of a LeRobot episode is the project's step t: the frame and state observed, the
action commanded after them, and the ``next.*`` labels logged once it ran.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import av
import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field
from tqdm.auto import tqdm

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.episodes.schema import SCHEMA_VERSION, Episode
from fog_pipeline.core.episodes.training_set import TrainingSet
from fog_pipeline.core.io import atomic_dir, recover

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
V2_VERSIONS = ("v2.0", "v2.1")  # one layout; v2.1 only adds episodes_stats.jsonl
INFO_PATH = "meta/info.json"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
PROGRESS_KEY = "next.progress"  # not a LeRobot convention: this project's dense label
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # LeRobot's stats.json keys q01 ... q99


class LeRobotFormatError(ValueError):
    """A LeRobot folder that cannot be read as its meta/info.json describes it, or data
    that cannot be written as LeRobot; the message names the file and the fix."""


@dataclass
class LeRobotImportConfig:
    """How a LeRobot dataset maps onto the episode schema (``lerobot.import.reader``).

    Actions: ``as_is`` keeps the recorded action vectors; their bounds are
    ``action_low``/``action_high``, else the ``bounds`` an export of this project wrote,
    else the range the imported episodes span. ``absolute_to_relative`` turns absolute
    position targets (Push-T: the pusher target in table units) into this project's
    relative moves; see :func:`absolute_to_relative`.

    State: ``state_key`` (None: no proprioception), optionally followed by the controller
    target (``append_target_to_state``: the absolute action in force when the frame was
    seen, which is what Push-T's own backend logs after the pusher position), then mapped
    by ``state * state_scale + state_offset`` (a number or one per channel). Push-T's
    ``observation.state`` is the pusher position in table units; scale 1/256 and offset
    -1 give this project's ``xy / 256 - 1``.
    """

    __pydantic_config__ = STRICT_KEYS

    camera_key: str | None = None  # None: the first video or image feature
    width: Annotated[int, Field(gt=0)] | None = None  # resize frames (area), both or neither
    height: Annotated[int, Field(gt=0)] | None = None
    action_key: str = "action"
    actions: Literal["as_is", "absolute_to_relative"] = "as_is"
    max_step: Annotated[float, Field(gt=0)] = 25.0  # absolute_to_relative: units per step
    workspace: tuple[float, float] = (0.0, 512.0)  # absolute_to_relative: target range
    action_low: list[float] | None = None  # as_is: the bounds the robot accepts
    action_high: list[float] | None = None
    state_key: str | None = "observation.state"
    state_names: list[str] | None = None  # None: from info.json (plus target_<action name>)
    append_target_to_state: bool = False
    state_scale: float | list[float] = 1.0
    state_offset: float | list[float] = 0.0
    reward_key: str | None = "next.reward"  # None: zero rewards (warned)
    success_key: str | None = "next.success"  # None: never successful; absent: also, warned
    progress_key: str | None = PROGRESS_KEY  # read when the dataset has it
    episodes: list[Annotated[int, Field(ge=0)]] | None = None  # None: all
    # Largest deviation from the fps grid a timestamp may show (LeRobot's own default).
    tolerance_s: Annotated[float, Field(gt=0)] = 1e-4

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError("set both width and height (resize), or neither")
        if not self.workspace[0] < self.workspace[1]:
            raise ValueError(f"workspace must be (low, high) with low < high: {self.workspace}")
        if (self.action_low is None) != (self.action_high is None):
            raise ValueError("set both action_low and action_high, or neither")
        if self.action_low is not None and len(self.action_low) != len(self.action_high):
            raise ValueError("action_low and action_high must have the same length")
        if self.actions == "absolute_to_relative":
            if self.state_key is None:
                raise ValueError(
                    "actions: absolute_to_relative starts from the position in the state "
                    "(state_key); set state_key"
                )
            if self.action_low is not None:
                raise ValueError("relative actions are bounded by [-1, 1]; drop action_low/high")
        elif self.append_target_to_state:
            raise ValueError("append_target_to_state needs actions: absolute_to_relative")


@dataclass
class LeRobotExportConfig:
    """How episodes are written as LeRobot v3.0 (``lerobot.export.writer``).

    ``lossless`` is H.264 in RGB (libx264rgb, qp 0): frames decode bit-exact, and any
    ffmpeg-based reader (LeRobot's torchcodec or PyAV) opens it. ``h264`` is ordinary
    yuv420p H.264 at ``crf``: smaller and playable in browsers, but lossy (chroma at half
    resolution), and it needs even frame sizes. ``gop`` is the keyframe interval: LeRobot
    uses 2, so that a random frame decodes after at most one other.
    """

    __pydantic_config__ = STRICT_KEYS

    codec: Literal["lossless", "h264"] = "lossless"
    crf: Annotated[int, Field(ge=0, le=51)] = 18
    gop: Annotated[int, Field(ge=1)] = 2
    camera_key: str = "observation.image"
    robot_type: str | None = None
    chunks_size: Annotated[int, Field(ge=1)] = 1000  # files per chunk folder
    data_files_size_in_mb: Annotated[float, Field(gt=0)] = 100  # a new file beyond this
    video_files_size_in_mb: Annotated[float, Field(gt=0)] = 200


# --------------------------------------------------------------------------------------
# Reading


@dataclass
class _EpisodeRef:
    """Where one episode lives, from the dataset's episode metadata."""

    index: int
    length: int
    tasks: list[str]
    data_file: Path
    video_file: Path | None  # None for an image camera
    video_start_s: float  # where the episode starts in its video file


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LeRobotFormatError(
            f"{path}: missing. A LeRobot dataset folder holds meta/, data/ (and videos/); "
            "point lerobot.import.source at that folder, and download it whole."
        ) from None
    except json.JSONDecodeError as exc:
        raise LeRobotFormatError(f"{path}: not valid JSON ({exc}); re-download it.") from None


def _load_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise LeRobotFormatError(f"{path}: missing; re-download the dataset's meta/ folder.")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise LeRobotFormatError(f"{path}: not valid JSON lines ({exc}); re-download it.") from None


def _names(feature: dict, width: int, key: str) -> list[str]:
    """A vector feature's channel names: a list, ``{"motors": [...]}``, or none given."""
    names = feature.get("names")
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    if isinstance(names, list) and len(names) == width and all(isinstance(n, str) for n in names):
        return names
    return [f"{key}_{i}" for i in range(width)]


def _vector_width(info: dict, key: str, setting: str) -> int:
    """The width of vector feature ``key``, which ``lerobot.import.reader.<setting>`` names."""
    feature = info["features"].get(key)
    if feature is None:
        raise LeRobotFormatError(
            f"meta/info.json has no feature '{key}'; its features are "
            f"{sorted(info['features'])}. Set lerobot.import.reader.{setting} to one of them."
        )
    shape = feature.get("shape", [])
    if len(shape) != 1:
        raise LeRobotFormatError(
            f"meta/info.json: feature '{key}' has shape {shape}, not a vector; set "
            f"lerobot.import.reader.{setting} to a vector feature."
        )
    return int(shape[0])


def _camera(info: dict, key: str | None) -> tuple[str, str, tuple[int, int]]:
    """(key, dtype "video" or "image", (height, width)) of the camera to import."""
    cameras = [k for k, f in info["features"].items() if f.get("dtype") in ("video", "image")]
    if key is None:
        if not cameras:
            raise LeRobotFormatError(
                "meta/info.json declares no video or image feature: the dataset has no "
                "camera, and this project learns from frames."
            )
        key = cameras[0]
    if key not in cameras:
        raise LeRobotFormatError(
            f"meta/info.json has no camera '{key}'; its cameras are {cameras}. Set "
            "lerobot.import.reader.camera_key to one of them."
        )
    feature = info["features"][key]
    shape, names = list(feature["shape"]), feature.get("names") or []
    if "height" in names and "width" in names:
        size = (int(shape[names.index("height")]), int(shape[names.index("width")]))
    else:  # no names: channels first (3, H, W) or last (H, W, 3)
        size = (int(shape[1]), int(shape[2])) if shape[0] == 3 else (int(shape[0]), int(shape[1]))
    return key, feature["dtype"], size


def _episode_refs(folder: Path, info: dict, camera: str, dtype: str) -> list[_EpisodeRef]:
    """Every episode's location, in episode order, checked against info.json's totals."""
    video = dtype == "video"
    if info["codebase_version"] == CODEBASE_VERSION:
        meta_source = folder / "meta/episodes"
        rows = _v3_episode_rows(meta_source, camera if video else None)
        refs = []
        for row in rows:
            video_file, start = None, 0.0
            if video:
                video_file = folder / info["video_path"].format(
                    video_key=camera,
                    chunk_index=int(row[f"videos/{camera}/chunk_index"]),
                    file_index=int(row[f"videos/{camera}/file_index"]),
                )
                start = float(row[f"videos/{camera}/from_timestamp"])
            data_file = folder / info["data_path"].format(
                chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
            )
            tasks = [str(task) for task in row["tasks"]]
            index, length = int(row["episode_index"]), int(row["length"])
            refs.append(_EpisodeRef(index, length, tasks, data_file, video_file, start))
    else:
        meta_source = folder / "meta/episodes.jsonl"
        chunks = int(info.get("chunks_size", 1000))
        refs = []
        for row in sorted(_load_jsonl(meta_source), key=lambda r: int(r["episode_index"])):
            index = int(row["episode_index"])
            where = {"episode_chunk": index // chunks, "episode_index": index}
            video_file = None
            if video:
                video_file = folder / info["video_path"].format(video_key=camera, **where)
            tasks = [str(task) for task in row.get("tasks", [])]
            data_file = folder / info["data_path"].format(**where)
            refs.append(_EpisodeRef(index, int(row["length"]), tasks, data_file, video_file, 0.0))
    totals = {"total_episodes": len(refs), "total_frames": sum(r.length for r in refs)}
    for name, value in totals.items():
        if name in info and int(info[name]) != value:
            raise LeRobotFormatError(
                f"{folder / INFO_PATH}: {name} is {info[name]} but {meta_source} lists "
                f"{value}; the metadata disagree (a partial download, or an edited dataset): "
                "download the dataset again."
            )
    return refs


def _v3_episode_rows(folder: Path, camera: str | None) -> list[dict[str, Any]]:
    """The rows of meta/episodes/*/*.parquet that locate each episode, checked to tile
    the data rows (``dataset_from_index`` of one episode is ``dataset_to_index`` of the
    one before, and each span is the episode's length)."""
    files = sorted(folder.glob("*/*.parquet"))
    if not files:
        raise LeRobotFormatError(
            f"{folder}: no episode metadata (chunk-*/file-*.parquet); download the dataset's "
            "meta/ folder again."
        )
    wanted = ["episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"]
    wanted += ["data/chunk_index", "data/file_index"]
    if camera is not None:
        wanted += [f"videos/{camera}/{name}" for name in ("chunk_index", "file_index")]
        wanted.append(f"videos/{camera}/from_timestamp")
    tables = []
    for file in files:
        missing = [c for c in wanted if c not in pq.read_schema(file).names]
        if missing:
            raise LeRobotFormatError(
                f"{file}: no column(s) {missing}, which v3.0 episode metadata has; convert "
                "the dataset with LeRobot's convert_dataset_v21_to_v30, or download it again."
            )
        tables.append(pq.read_table(file, columns=wanted).to_pandas())
    rows = pd.concat(tables, ignore_index=True).sort_values("episode_index")
    lengths = rows["length"].to_numpy()
    starts = rows["dataset_from_index"].to_numpy()
    tiled = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    spans = rows["dataset_to_index"].to_numpy() - starts
    bad = np.flatnonzero((spans != lengths) | (starts != tiled))
    if len(bad):
        row = rows.iloc[bad[0]]
        raise LeRobotFormatError(
            f"{folder}: episode {row['episode_index']} has length {row['length']} but rows "
            f"{row['dataset_from_index']}:{row['dataset_to_index']}, where it should start "
            f"at {tiled[bad[0]]}; the metadata was edited or belongs to other data: download "
            "the dataset again."
        )
    return rows.to_dict("records")


def _column(table: pa.Table, name: str, file: Path, width: int | None) -> np.ndarray:
    """A data column as (n, width) values, or (n,) for a scalar (``width`` None), read
    from list columns (vectors) or plain ones (a scalar may be either)."""
    column = table.column(name).combine_chunks()
    if column.null_count:
        raise LeRobotFormatError(
            f"{file}: column '{name}' has {column.null_count} missing values; the dataset "
            "is damaged: download it again."
        )
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        per_row = int(lengths[0]) if len(lengths) else (width or 1)
        if np.any(lengths != per_row):
            raise LeRobotFormatError(
                f"{file}: column '{name}' holds vectors of {sorted(set(lengths.tolist()))} "
                "values; every row needs the same width. The dataset is damaged."
            )
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        values = values.reshape(len(column), per_row)
    else:
        values = column.to_numpy(zero_copy_only=False)[:, None]
    if values.shape[1] != (width or 1):
        raise LeRobotFormatError(
            f"{file}: column '{name}' holds {values.shape[1]} values a row, but meta/info.json "
            f"declares shape [{width or 1}]; the data and metadata come from different "
            "versions of the dataset: download it again."
        )
    return values if width else values[:, 0]


def _read_table(file: Path, columns: list[str]) -> pa.Table:
    if not file.exists():
        raise LeRobotFormatError(
            f"{file}: missing; the dataset is incomplete: download its data/ folder again."
        )
    present = pq.read_schema(file).names
    missing = [c for c in columns if c not in present]
    if missing:
        raise LeRobotFormatError(
            f"{file}: no column(s) {missing}, which meta/info.json declares; the data and "
            "metadata disagree: download the dataset again."
        )
    return pq.read_table(file, columns=columns)


def _episode_rows(
    refs: list[_EpisodeRef],
    all_refs: list[_EpisodeRef],
    widths: dict[str, int | None],
    fps: float,
    tolerance_s: float,
) -> dict[int, dict[str, np.ndarray]]:
    """Each selected episode's data columns (``widths``: name -> vector width, None for a
    scalar), plus ``"row"`` (its positions in the file), validated against the metadata:
    row counts, frame_index 0..T-1, and timestamps on the fps grid."""
    rows_in_file: dict[Path, int] = {}
    for ref in all_refs:
        rows_in_file[ref.data_file] = rows_in_file.get(ref.data_file, 0) + ref.length
    by_file: dict[Path, list[_EpisodeRef]] = {}
    for ref in refs:
        by_file.setdefault(ref.data_file, []).append(ref)
    found = {}
    for file, file_refs in by_file.items():
        table = _read_table(file, ["episode_index", "frame_index", "timestamp", *widths])
        if table.num_rows != rows_in_file[file]:
            raise LeRobotFormatError(
                f"{file}: {table.num_rows} rows, but the episode metadata puts "
                f"{rows_in_file[file]} frames in it; the data and metadata disagree: download "
                "the dataset again."
            )
        episode = _column(table, "episode_index", file, None)
        frame = _column(table, "frame_index", file, None)
        stamps = _column(table, "timestamp", file, None).astype(np.float64)
        columns = {name: _column(table, name, file, width) for name, width in widths.items()}
        for ref in file_refs:
            where = np.flatnonzero(episode == ref.index)
            where = where[np.argsort(frame[where], kind="stable")]
            if len(where) != ref.length:
                raise LeRobotFormatError(
                    f"{file}: episode {ref.index} has {len(where)} rows, but the episode "
                    f"metadata says {ref.length}; download the dataset again."
                )
            if not np.array_equal(frame[where], np.arange(ref.length)):
                raise LeRobotFormatError(
                    f"{file}: episode {ref.index}'s frame_index is not 0..{ref.length - 1} "
                    "(frames missing or repeated); the dataset is damaged."
                )
            steps = np.abs(np.diff(stamps[where]) - 1.0 / fps)
            if len(steps) and steps.max() > tolerance_s:
                t = int(np.argmax(steps))
                raise LeRobotFormatError(
                    f"{file}: episode {ref.index}'s timestamps are not 1/fps = {1 / fps:g} s "
                    f"apart (frame {t} at {stamps[where][t]:.6f} s, frame {t + 1} at "
                    f"{stamps[where][t + 1]:.6f} s) although meta/info.json says fps "
                    f"{fps:g}. Fix the fps in meta/info.json, or raise "
                    "lerobot.import.reader.tolerance_s if the timestamps are only rounded."
                )
            found[ref.index] = {
                "row": where,
                "timestamp": stamps[where],
                **{name: values[where] for name, values in columns.items()},
            }
    return found


class _VideoReader:
    """Decodes stretches of video files. The last file stays open: a v3.0 file holds many
    episodes back to back, read in order."""

    def __init__(self, tolerance_s: float) -> None:
        self._tolerance_s = tolerance_s
        self._path: Path | None = None
        self._container: Any = None

    def read(self, path: Path, start_s: float, timestamps: np.ndarray, episode: int) -> np.ndarray:
        """The frames shown at ``start_s + timestamps`` (RGB uint8, (T, H, W, 3))."""
        query = start_s + timestamps
        frames: list[np.ndarray | None] = [None] * len(query)
        try:
            if path != self._path:
                self.close()
                self._container = av.open(str(path))
                self._path = path
            stream = self._container.streams.video[0]
            # PyAV seeks to a keyframe, not to a frame: land on the keyframe at or before
            # the first wanted frame (one tick early, so rounding cannot skip past it),
            # then decode forward, matching frames to the wanted times.
            self._container.seek(
                max(int(query[0] / stream.time_base) - 1, 0),
                stream=stream,
                backward=True,
                any_frame=False,
            )
            for frame in self._container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if t > query[-1] + self._tolerance_s:
                    break
                i = int(np.argmin(np.abs(query - t)))  # the wanted frame nearest in time
                if abs(query[i] - t) <= self._tolerance_s:
                    frames[i] = frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise LeRobotFormatError(
                f"{path}: cannot be decoded ({exc}); the file is damaged: download it again."
            ) from None
        missing = [i for i, f in enumerate(frames) if f is None]
        if missing:
            raise LeRobotFormatError(
                f"{path}: no frame within {self._tolerance_s:g} s of {query[missing[0]]:.4f} s "
                f"(episode {episode}, frame {missing[0]}; {len(missing)} of {len(query)} "
                "frames missing). The video does not hold the frames the metadata places in "
                "it: download it again, or raise lerobot.import.reader.tolerance_s if its "
                "timestamps are only rounded."
            )
        return np.stack(frames)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._path = None, None


class _ImageColumnReader:
    """Decodes the PNG/JPEG bytes of an ``image`` camera column (last file cached)."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._file: Path | None = None
        self._images: list[Any] = []

    def read(self, file: Path, rows: np.ndarray) -> np.ndarray:
        if file != self._file:
            column = _read_table(file, [self._key]).column(self._key).combine_chunks()
            if not pa.types.is_struct(column.type) or column.type.get_field_index("bytes") < 0:
                raise LeRobotFormatError(
                    f"{file}: column '{self._key}' is {column.type}, not LeRobot's image "
                    "struct {bytes, path}; the dataset is damaged: download it again."
                )
            self._images, self._file = column.field("bytes").to_pylist(), file
        frames = []
        for row in rows:
            data = self._images[row]
            image = None if data is None else cv2.imdecode(np.frombuffer(data, np.uint8), 1)
            if image is None:
                raise LeRobotFormatError(
                    f"{file}: row {row} of '{self._key}' holds no decodable image; the file "
                    "is damaged: download it again."
                )
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return np.stack(frames)


def _affine(values: float | list[float], width: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1 and len(array) != width:
        raise LeRobotFormatError(
            f"lerobot.import.reader.{name} has {len(array)} entries; the imported state has "
            f"{width} channels. Give one number, or one per channel."
        )
    return array


def _targets_in_force(
    targets: np.ndarray, start: np.ndarray, workspace: tuple[float, float]
) -> np.ndarray:
    """The target the controller tracked when each frame was seen: the start position,
    then each step's (workspace-clipped) absolute target."""
    targets = np.clip(np.asarray(targets, dtype=np.float64), *workspace)
    first = np.clip(np.asarray(start, dtype=np.float64), *workspace)[None]
    return np.concatenate([first, targets[:-1]])


def absolute_to_relative(
    targets: np.ndarray, start: np.ndarray, max_step: float, workspace: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Relative moves in [-1, 1]^A from absolute targets (T, A) and the start position (A,).

    ``relative[t] = clip((target[t] - target[t-1]) / max_step, -1, 1)``, with every target
    first clipped to the workspace (the robot clips it too) and ``target[-1] = start``,
    the position when the episode began (where a relative controller's target starts).
    Returns the moves (float32) and, per step, whether a move was clipped.

    Exact when no move is clipped: replaying the moves from ``start`` (``target +=
    relative * max_step``) meets every recorded target up to float32 rounding (1e-5
    units), so the robot is driven exactly as recorded. A step whose target jumped more
    than ``max_step`` (a fast teleoperator, or a first target away from the start) is
    labelled with the clipped move: that step's label under-states the motion, and a
    replay lags the recording by the excess from there on. The controller dynamics (how
    the robot tracks its target) are the same either way. Count the clipped steps (the
    mask) before trusting a conversion; raise ``max_step`` (and the robot's) if many are.
    """
    clipped_targets = np.clip(np.asarray(targets, dtype=np.float64), *workspace)
    moves = (clipped_targets - _targets_in_force(targets, start, workspace)) / max_step
    clipped = np.any(np.abs(moves) > 1.0, axis=1)
    return np.clip(moves, -1.0, 1.0).astype(np.float32), clipped


def read_lerobot(
    folder: str | os.PathLike, config: LeRobotImportConfig | None = None
) -> Iterator[Episode]:
    """The episodes of a LeRobot v3.0 or v2.x dataset folder, in episode order.

    The metadata and every selected episode's data rows are read and checked when this is
    called (a damaged dataset raises :class:`LeRobotFormatError` here, before any frame
    is decoded); frames are decoded one episode at a time as the iterator advances.
    Episode attributes record where each came from (``lerobot_episode_index``, ...) and,
    for relative actions, ``clipped_action_steps``.
    """
    config = config or LeRobotImportConfig()
    folder = recover(folder)
    info = _load_json(folder / INFO_PATH)
    version = info.get("codebase_version")
    if version not in (CODEBASE_VERSION, *V2_VERSIONS):
        raise LeRobotFormatError(
            f"{folder / INFO_PATH}: codebase_version {version!r}; this reader knows "
            f"{CODEBASE_VERSION} and {', '.join(V2_VERSIONS)}. Convert the dataset with "
            "LeRobot's conversion scripts (lerobot.scripts.convert_dataset_*) first."
        )
    missing = [key for key in ("fps", "features", "data_path") if key not in info]
    if missing:
        raise LeRobotFormatError(
            f"{folder / INFO_PATH}: no {', '.join(missing)}; the file is damaged or not "
            "LeRobot's: download the dataset again."
        )
    features = info["features"]
    fps = float(info["fps"])
    camera, dtype, frame_size = _camera(info, config.camera_key)
    if dtype == "video" and not info.get("video_path"):
        raise LeRobotFormatError(
            f"{folder / INFO_PATH}: camera '{camera}' is a video feature but video_path is "
            f"{info.get('video_path')!r}; the file is damaged: download the dataset again."
        )
    action_dim = _vector_width(info, config.action_key, "action_key")
    widths: dict[str, int | None] = {config.action_key: action_dim}
    state_dim = 0
    if config.state_key is not None:
        state_dim = _vector_width(info, config.state_key, "state_key")
        widths[config.state_key] = state_dim
        if config.actions == "absolute_to_relative" and state_dim < action_dim:
            raise LeRobotFormatError(
                f"'{config.state_key}' has {state_dim} channels; absolute_to_relative reads "
                f"the start position from its first {action_dim} (one per action channel)."
            )
    if config.reward_key is None:
        log.warning("lerobot.import: no reward column (reward_key: null): rewards are zero.")
    elif config.reward_key not in features:
        raise LeRobotFormatError(
            f"meta/info.json has no reward feature '{config.reward_key}' (features: "
            f"{sorted(features)}). Set lerobot.import.reader.reward_key to the reward "
            "column, or to null to import zero rewards (a world model then learns no reward)."
        )
    else:
        widths[config.reward_key] = None
    if config.success_key in features:
        widths[config.success_key] = None
    elif config.success_key is not None:
        log.warning(
            "lerobot.import: no success feature '%s' in %s: every step is imported as not "
            "successful.",
            config.success_key,
            folder,
        )
    if config.progress_key in features:  # optional in the schema: no warning without it
        widths[config.progress_key] = None

    all_refs = _episode_refs(folder, info, camera, dtype)
    refs = all_refs
    if config.episodes is not None:
        by_index = {ref.index: ref for ref in all_refs}
        unknown = sorted(set(config.episodes) - set(by_index))
        if unknown:
            raise LeRobotFormatError(
                f"{folder}: no episode(s) {unknown[:10]}; it has {len(all_refs)} episodes "
                f"(indices {min(by_index, default=0)}..{max(by_index, default=-1)}). Fix "
                "lerobot.import.reader.episodes."
            )
        refs = [by_index[i] for i in sorted(set(config.episodes))]
    for ref in refs:
        if ref.video_file is not None and not ref.video_file.exists():
            raise LeRobotFormatError(
                f"{ref.video_file}: missing (episode {ref.index}'s '{camera}' video); the "
                "dataset is incomplete: download its videos/ folder as well."
            )
    rows = _episode_rows(refs, all_refs, widths, fps, config.tolerance_s)

    state_names: list[str] = []
    if config.state_key is not None:
        state_names = _names(features[config.state_key], state_dim, config.state_key)
        if config.append_target_to_state:
            action_names = _names(features[config.action_key], action_dim, config.action_key)
            state_names += [f"target_{name}" for name in action_names]
        if config.state_names is not None:
            if len(config.state_names) != len(state_names):
                raise LeRobotFormatError(
                    f"lerobot.import.reader.state_names has {len(config.state_names)} names; "
                    f"the imported state has {len(state_names)} channels ({state_names})."
                )
            state_names = list(config.state_names)
    scale = _affine(config.state_scale, len(state_names), "state_scale")
    offset = _affine(config.state_offset, len(state_names), "state_offset")

    if config.actions == "absolute_to_relative":
        low, high = np.full(action_dim, -1.0), np.full(action_dim, 1.0)
        action_space = (
            f"relative move in [-1, 1]^{action_dim}: the target moves by action * "
            f"{config.max_step:g} per step, clipped to {list(config.workspace)}; converted "
            f"from the absolute targets '{config.action_key}' of a LeRobot dataset"
        )
    else:
        bounds = features[config.action_key].get("bounds", {})
        if config.action_low is not None:
            low, high = np.asarray(config.action_low), np.asarray(config.action_high)
        elif "low" in bounds and "high" in bounds:
            low, high = np.asarray(bounds["low"]), np.asarray(bounds["high"])
        else:
            actions = np.concatenate([r[config.action_key] for r in rows.values()])
            low, high = actions.min(axis=0), actions.max(axis=0)
            log.info(
                "lerobot.import: action bounds from the data: %s .. %s (set "
                "lerobot.import.reader.action_low/action_high to the robot's).",
                low.tolist(),
                high.tolist(),
            )
        if len(low) != action_dim:
            raise LeRobotFormatError(
                f"action bounds have {len(low)} entries; '{config.action_key}' has "
                f"{action_dim} channels. Fix lerobot.import.reader.action_low/action_high."
            )
        action_space = f"as recorded in the LeRobot feature '{config.action_key}'"

    attrs = {
        "schema_version": SCHEMA_VERSION,
        "fps": fps,
        "backend": "lerobot",
        "seed": -1,
        "action_low": np.asarray(low, dtype=np.float32),
        "action_high": np.asarray(high, dtype=np.float32),
        "action_space": action_space,
        "policy": f"as recorded in the LeRobot dataset {folder.name}",
        "lerobot_codebase_version": version,
        "lerobot_source": str(folder),
    }
    if isinstance(info.get("robot_type"), str):
        attrs["robot_type"] = info["robot_type"]
    if state_names:
        attrs["state_names"] = state_names

    def episodes() -> Iterator[Episode]:
        videos = _VideoReader(config.tolerance_s)
        images = _ImageColumnReader(camera)
        try:
            for ref in refs:
                data = rows[ref.index]
                if ref.video_file is not None:
                    frames = videos.read(
                        ref.video_file, ref.video_start_s, data["timestamp"], ref.index
                    )
                    source = ref.video_file
                else:
                    frames, source = images.read(ref.data_file, data["row"]), ref.data_file
                if frames.shape[1:3] != frame_size:
                    raise LeRobotFormatError(
                        f"{source}: frames are {frames.shape[2]}x{frames.shape[1]}, but "
                        f"meta/info.json says '{camera}' is {frame_size[1]}x{frame_size[0]}; "
                        "the video and metadata disagree: download the dataset again."
                    )
                yield _episode(ref, data, frames, config, attrs, scale, offset)
        finally:
            videos.close()

    return episodes()


def import_lerobot(
    folder: str | os.PathLike, config: LeRobotImportConfig | None = None
) -> tuple[dict[str, Episode], pd.DataFrame]:
    """Every episode :func:`read_lerobot` reads, keyed ``lerobot_<episode_index>``, and a
    manifest with one row per episode."""
    episodes: dict[str, Episode] = {}
    rows = []
    for episode in tqdm(read_lerobot(folder, config), desc="importing", unit="ep"):
        index = int(episode.attrs["lerobot_episode_index"])
        episode_id = f"lerobot_{index:06d}"
        episodes[episode_id] = episode
        rows.append(
            {
                "episode_id": episode_id,
                "lerobot_episode_index": index,
                "steps": len(episode),
                "task": episode.attrs["task"],
                "success": bool(episode.success.any()),
                "final_reward": float(episode.rewards[-1]),
                "clipped_action_steps": int(episode.attrs.get("clipped_action_steps", 0)),
            }
        )
    return episodes, pd.DataFrame(rows)


def _episode(
    ref: _EpisodeRef,
    data: dict[str, np.ndarray],
    frames: np.ndarray,
    config: LeRobotImportConfig,
    attrs: dict[str, Any],
    scale: np.ndarray,
    offset: np.ndarray,
) -> Episode:
    """One imported episode from its validated rows and decoded frames."""
    if config.width is not None:
        size = (config.width, config.height)
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    actions = data[config.action_key].astype(np.float64)
    attrs = {**attrs, "task": "; ".join(ref.tasks), "lerobot_episode_index": ref.index}
    state = None
    if config.state_key is not None:
        state = data[config.state_key].astype(np.float64)
    if config.actions == "absolute_to_relative":
        start = state[0, : actions.shape[1]]
        if config.append_target_to_state:
            state = np.concatenate([state, _targets_in_force(actions, start, config.workspace)], 1)
        actions, clipped = absolute_to_relative(actions, start, config.max_step, config.workspace)
        attrs["clipped_action_steps"] = int(clipped.sum())
    if state is not None:
        state = (state * scale + offset).astype(np.float32)
    # Labels the dataset lacks (or the config leaves out) are not among the columns read.
    rewards = data.get(config.reward_key, np.zeros(len(frames)))
    success = data.get(config.success_key, np.zeros(len(frames), dtype=bool))
    progress = data.get(config.progress_key)
    return Episode(
        frames=np.ascontiguousarray(frames, dtype=np.uint8),
        actions=np.asarray(actions, dtype=np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        success=np.asarray(success).astype(bool),
        timestamps=data["timestamp"],
        state=state,
        progress=None if progress is None else np.asarray(progress, dtype=np.float32),
        attrs=attrs,
    )


# --------------------------------------------------------------------------------------
# Writing


@dataclass
class _Item:
    """One episode to write (a whole episode, or one segment of the training set)."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    state: np.ndarray  # (T, P), P may be 0
    progress: np.ndarray | None
    task: str
    source_id: str
    source_start: int
    split: str


@dataclass
class _Header:
    """What every episode of one export shares."""

    fps: int
    frame_shape: tuple[int, ...]
    action_low: list[float]
    action_high: list[float]
    state_names: list[str]
    has_progress: bool


def _integer_fps(fps: float, where: str) -> int:
    if not float(fps).is_integer():
        raise LeRobotFormatError(
            f"{where}: fps {fps:g} is not a whole number, and LeRobot stores an integer fps."
        )
    return int(fps)


def _from_training_set(data: TrainingSet) -> tuple[_Header, list[_Item]]:
    """Segments of the training set, train split first (info.json's ``splits`` are
    ranges of episode indices); each segment is one LeRobot episode: segments are the
    contiguous pieces cleaning kept, and LeRobot's frames must lie on the fps grid."""
    meta = data.meta
    header = _Header(
        fps=_integer_fps(meta["fps"], "the training set"),
        frame_shape=tuple(meta["frame_shape"]),
        action_low=[float(x) for x in meta["action_low"]],
        action_high=[float(x) for x in meta["action_high"]],
        state_names=list(meta["state_names"]),
        # progress.npy repeats the reward when the episodes logged none: not worth a column
        has_progress=meta.get("progress_source") == "progress",
    )
    segments = data.segments.assign(order=data.segments["split"].map({"train": 0, "val": 1}))
    items = []
    for row in segments.sort_values(["order", "offset"]).itertuples():
        span = slice(int(row.offset), int(row.offset) + int(row.length))
        items.append(
            _Item(
                frames=data.frames[span],
                actions=data.actions[span],
                rewards=data.rewards[span],
                success=data.success[span],
                state=data.state[span],
                progress=data.progress[span] if header.has_progress else None,
                task=str(meta.get("task", "")),
                source_id=str(row.episode_id),
                source_start=int(row.source_start),
                split=str(row.split),
            )
        )
    return header, items


def _from_episodes(
    episodes: Mapping[str, Episode] | Iterable[Episode],
) -> tuple[_Header, list[_Item]]:
    """Whole episodes (all in the train split); they must agree on what the header holds
    and have timestamps on the fps grid, as LeRobot stores them."""
    if isinstance(episodes, Mapping):
        named = list(episodes.items())
    else:
        named = [(f"episode_{i:06d}", episode) for i, episode in enumerate(episodes)]
    header, items = None, []
    for episode_id, episode in named:
        attrs = episode.attrs
        fps = float(attrs["fps"])
        candidate = _Header(
            fps=_integer_fps(fps, f"episode {episode_id}"),
            frame_shape=tuple(episode.frames.shape[1:]),
            action_low=[float(x) for x in attrs["action_low"]],
            action_high=[float(x) for x in attrs["action_high"]],
            state_names=[str(n) for n in attrs.get("state_names", [])],
            has_progress=episode.progress is not None,
        )
        if header is None:
            header = candidate
        elif candidate != header:
            raise LeRobotFormatError(
                f"episode {episode_id} differs from {named[0][0]} in fps, frame shape, "
                "action bounds, state names or progress label; one LeRobot dataset holds one "
                "kind. Export the cleaned training set (the episodes pipeline reconciles "
                "them), or export them separately."
            )
        steps = np.abs(np.diff(episode.timestamps) - 1.0 / fps)
        if len(steps) and steps.max() > 1e-4:
            t = int(np.argmax(steps))
            raise LeRobotFormatError(
                f"episode {episode_id}: timestamps {episode.timestamps[t]:.4f} s and "
                f"{episode.timestamps[t + 1]:.4f} s are not 1/fps apart, and LeRobot keeps "
                "frames on the fps grid. Export the cleaned training set instead (cleaning "
                "splits episodes at gaps)."
            )
        state = episode.state
        if state is None:
            state = np.zeros((len(episode), 0), dtype=np.float32)
        items.append(
            _Item(
                frames=episode.frames,
                actions=episode.actions,
                rewards=episode.rewards,
                success=episode.success,
                state=state,
                progress=episode.progress,
                task=str(attrs.get("task", "")),
                source_id=episode_id,
                source_start=0,
                split="train",
            )
        )
    return header, items


def _stats(values: np.ndarray) -> dict[str, list]:
    """LeRobot's per-feature statistics over the first axis ((T,) or (T, K) values)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    stats = {
        "min": values.min(axis=0),
        "max": values.max(axis=0),
        "mean": values.mean(axis=0),
        "std": values.std(axis=0),
        "count": np.array([len(values)]),
    }
    for q in QUANTILES:
        stats[f"q{round(q * 100):02d}"] = np.quantile(values, q, axis=0)
    return {name: value.tolist() for name, value in stats.items()}


def _image_stats(frames: np.ndarray) -> dict[str, list]:
    """Per-channel statistics of every pixel, in [0, 1] and shaped (3, 1, 1) as LeRobot's.

    From each channel's 256-level histogram: one pass, and exactly what ``_stats`` (sorting
    for the quantiles, five times slower on 96 x 96 frames) would give for uint8 pixels.
    """
    pixels = np.asarray(frames).reshape(-1, frames.shape[-1])
    levels = np.arange(256, dtype=np.float64)
    channels = []
    for channel in pixels.T:
        counts = np.bincount(channel, minlength=256)
        # below[v] counts the pixels <= v, so the k-th smallest pixel (from 0) is the
        # first v with below[v] > k; quantiles interpolate linearly, as numpy's default.
        below = np.cumsum(counts)
        n = int(below[-1])
        ranks = np.array(QUANTILES) * (n - 1)
        low = np.searchsorted(below, np.floor(ranks), side="right")
        high = np.searchsorted(below, np.minimum(np.floor(ranks) + 1, n - 1), side="right")
        mean = counts @ levels / n
        present = np.flatnonzero(counts)
        channels.append(
            {
                "min": float(present[0]),
                "max": float(present[-1]),
                "mean": float(mean),
                "std": float(np.sqrt(counts @ (levels - mean) ** 2 / n)),
                **{
                    f"q{round(q * 100):02d}": float(v)
                    for q, v in zip(QUANTILES, low + (ranks % 1) * (high - low), strict=True)
                },
            }
        )
    values = {name: [[[c[name] / 255.0]] for c in channels] for name in channels[0]}
    return {**values, "count": [len(frames)]}


def _aggregate(episode_stats: list[dict[str, list]]) -> dict[str, list]:
    """Dataset statistics from per-episode ones, as LeRobot aggregates them: exact min,
    max, mean and std (pooled by count); quantiles as the count-weighted mean."""
    counts = np.array([s["count"][0] for s in episode_stats], dtype=np.float64)
    weights = counts / counts.sum()

    def stack(name: str) -> tuple[np.ndarray, np.ndarray]:  # (values, broadcast weights)
        array = np.array([s[name] for s in episode_stats], dtype=np.float64)
        return array, weights.reshape(-1, *([1] * (array.ndim - 1)))

    means, w = stack("mean")
    mean = (w * means).sum(axis=0)
    stds, _ = stack("std")
    total = {
        "min": stack("min")[0].min(axis=0),
        "max": stack("max")[0].max(axis=0),
        "mean": mean,
        "std": np.sqrt((w * (stds**2 + (means - mean) ** 2)).sum(axis=0)),
        "count": np.array([int(counts.sum())]),
    }
    for q in QUANTILES:
        name = f"q{round(q * 100):02d}"
        values, w = stack(name)
        total[name] = (w * values).sum(axis=0)
    return {name: value.tolist() for name, value in total.items()}


def _file_indices(n: int, chunks_size: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the n-th file: chunks of ``chunks_size`` files."""
    return divmod(n, chunks_size)


class _DataFiles:
    """Writes data rows to data/chunk-*/file-*.parquet, starting a new file at an
    episode boundary once the current one holds ``data_files_size_in_mb``."""

    def __init__(self, root: Path, config: LeRobotExportConfig) -> None:
        self._root, self._config = root, config
        self._tables: list[pa.Table] = []
        self._bytes = 0
        self._count = 0

    def add(self, table: pa.Table) -> tuple[int, int]:
        if self._tables and self._bytes >= self._config.data_files_size_in_mb * 2**20:
            self.close()
        self._tables.append(table)
        self._bytes += table.nbytes
        return _file_indices(self._count, self._config.chunks_size)

    def close(self) -> None:
        if not self._tables:
            return
        chunk, file = _file_indices(self._count, self._config.chunks_size)
        path = self._root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(self._tables), path)
        self._tables, self._bytes, self._count = [], 0, self._count + 1


class _VideoFiles:
    """Encodes frames to videos/<key>/chunk-*/file-*.mp4, episodes back to back (frame k
    of a file at k / fps), starting a new file at an episode boundary once the current
    one holds ``video_files_size_in_mb``."""

    def __init__(self, root: Path, fps: int, config: LeRobotExportConfig) -> None:
        self._root, self._fps, self._config = root, fps, config
        if config.codec == "lossless":
            # libx264rgb at qp 0 codes the RGB planes themselves, with no lossy step:
            # decoding to rgb24 returns the input bit for bit.
            self._codec, self._pix_fmt, self._options = "libx264rgb", "rgb24", {"qp": "0"}
        else:
            self._codec, self._pix_fmt = "libx264", "yuv420p"
            self._options = {"crf": str(config.crf)}
        self._options["g"] = str(config.gop)
        self._container: Any = None
        self._stream: Any = None
        self._count = 0
        self._bytes = 0
        self._frames = 0
        self.first_file: Path | None = None

    def add(self, frames: np.ndarray) -> tuple[int, int, float, float]:
        """Encode one episode; returns (chunk, file, from_timestamp, to_timestamp)."""
        limit = self._config.video_files_size_in_mb * 2**20
        if self._container is None or self._bytes >= limit:
            self._open(frames.shape[2], frames.shape[1])
        chunk, file = _file_indices(self._count - 1, self._config.chunks_size)  # the open file
        start = self._frames
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = self._frames, Fraction(1, self._fps)
            self._mux(self._stream.encode(frame))
            self._frames += 1
        return chunk, file, start / self._fps, self._frames / self._fps

    def _open(self, width: int, height: int) -> None:
        self.close()
        chunk, file = _file_indices(self._count, self._config.chunks_size)
        path = self._root / VIDEO_PATH.format(
            video_key=self._config.camera_key, chunk_index=chunk, file_index=file
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        # faststart: the index goes first, so a reader can seek before the file is read
        self._container = av.open(str(path), "w", options={"movflags": "faststart"})
        self._stream = self._container.add_stream(self._codec, self._fps, options=self._options)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = self._pix_fmt
        self.first_file = self.first_file or path
        self._count += 1
        self._bytes = self._frames = 0

    def _mux(self, packets: list) -> None:
        for packet in packets:
            self._bytes += packet.size
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is not None:
            self._mux(self._stream.encode())  # flush the frames the encoder holds back
            self._container.close()
        self._container = self._stream = None


def _arrow(values: np.ndarray) -> pa.Array:
    if values.ndim == 2:
        flat = pa.array(np.ascontiguousarray(values).ravel())
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    return pa.array(values)


def _video_info(path: Path, fps: int) -> dict[str, Any]:
    """The ``info`` entry of a video feature, probed from the file as LeRobot does."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.name,
            "video.pix_fmt": stream.pix_fmt,
            "video.fps": fps,
            "video.channels": 3,
            "is_depth_map": False,
            "has_audio": False,
        }


def write_lerobot(
    source: TrainingSet | Mapping[str, Episode] | Iterable[Episode],
    folder: str | os.PathLike,
    config: LeRobotExportConfig | None = None,
) -> dict[str, Any]:
    """Write episodes, or the cleaned training set, as a LeRobot v3.0 dataset at ``folder``.

    A training set is written segment by segment (each a LeRobot episode, train split
    first, ``splits`` in info.json), with ``source_episode_id``/``source_start``/``split``
    columns in the episode metadata; episodes must share fps, frame shape, action bounds
    and state names. The action bounds are kept in info.json (``features.action.bounds``),
    and the progress label as ``next.progress`` (when logged). Everything is written to a
    temporary sibling folder that replaces ``folder`` at the end: a failure leaves the
    old folder (or none) and nothing half-written. Returns the info.json written.
    """
    config = config or LeRobotExportConfig()
    if isinstance(source, TrainingSet):
        header, items = _from_training_set(source)
    else:
        header, items = _from_episodes(source)
    if not items:
        raise LeRobotFormatError("no episodes to export")
    height, width = header.frame_shape[:2]
    if config.codec == "h264" and (height % 2 or width % 2):
        raise LeRobotFormatError(
            f"frames are {width}x{height}; h264 (yuv420p) needs even sizes. Use codec: "
            "lossless, or resize the frames."
        )
    tasks = {task: i for i, task in enumerate(dict.fromkeys(item.task for item in items))}
    video = f"videos/{config.camera_key}"
    with atomic_dir(folder) as tmp:
        data = _DataFiles(tmp, config)
        videos = _VideoFiles(tmp, header.fps, config)
        episode_rows, episode_stats, start = [], [], 0
        # On an error, atomic_dir removes the temporary folder with whatever is in it.
        for index, item in enumerate(items):
            columns = _data_columns(item, index, start, tasks[item.task], header)
            data_chunk, data_file = data.add(
                pa.table({name: _arrow(values) for name, values in columns.items()})
            )
            video_chunk, video_file, from_s, to_s = videos.add(np.asarray(item.frames))
            stats = {name: _stats(values) for name, values in columns.items()}
            stats[config.camera_key] = _image_stats(item.frames)
            episode_stats.append(stats)
            length = len(item.frames)
            episode_rows.append(
                {
                    "episode_index": index,
                    "tasks": [item.task],
                    "length": length,
                    "data/chunk_index": data_chunk,
                    "data/file_index": data_file,
                    "dataset_from_index": start,
                    "dataset_to_index": start + length,
                    f"{video}/chunk_index": video_chunk,
                    f"{video}/file_index": video_file,
                    f"{video}/from_timestamp": from_s,
                    f"{video}/to_timestamp": to_s,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                    "source_episode_id": item.source_id,
                    "source_start": item.source_start,
                    "split": item.split,
                    **{
                        f"stats/{feature}/{name}": value
                        for feature, feature_stats in stats.items()
                        for name, value in feature_stats.items()
                    },
                }
            )
            start += length
        videos.close()
        data.close()
        n_train = sum(item.split == "train" for item in items)
        splits = {"train": f"0:{n_train}"}
        if n_train < len(items):
            splits["val"] = f"{n_train}:{len(items)}"
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": config.robot_type,
            "total_episodes": len(items),
            "total_frames": start,
            "total_tasks": len(tasks),
            "chunks_size": config.chunks_size,
            "data_files_size_in_mb": config.data_files_size_in_mb,
            "video_files_size_in_mb": config.video_files_size_in_mb,
            "fps": header.fps,
            "splits": splits,
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": _features(header, config, _video_info(videos.first_file, header.fps)),
        }
        stats = {
            feature: _aggregate([episode[feature] for episode in episode_stats])
            for feature in episode_stats[0]
        }
        _write_metadata(tmp, info, stats, tasks, episode_rows)
    return info


def _data_columns(
    item: _Item, index: int, start: int, task_index: int, header: _Header
) -> dict[str, np.ndarray]:
    """The data-file columns of one episode (``start``: its first global row)."""
    length = len(item.frames)
    columns = {
        "action": np.asarray(item.actions, dtype=np.float32),
        "next.reward": np.asarray(item.rewards, dtype=np.float32),
        "next.success": np.asarray(item.success, dtype=bool),
        "next.done": np.arange(length) == length - 1,
        "timestamp": (np.arange(length) / header.fps).astype(np.float32),
        "frame_index": np.arange(length, dtype=np.int64),
        "episode_index": np.full(length, index, dtype=np.int64),
        "index": np.arange(start, start + length, dtype=np.int64),
        "task_index": np.full(length, task_index, dtype=np.int64),
    }
    if header.state_names:
        columns["observation.state"] = np.asarray(item.state, dtype=np.float32)
    if header.has_progress:
        columns[PROGRESS_KEY] = np.asarray(item.progress, dtype=np.float32)
    return columns


def _features(
    header: _Header, config: LeRobotExportConfig, video_info: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """info.json's ``features``: the camera, the vectors, and the scalar columns."""
    height, width = header.frame_shape[:2]
    action_dim = len(header.action_low)
    features: dict[str, dict[str, Any]] = {
        config.camera_key: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": video_info,
        },
        "action": {
            "dtype": "float32",
            "shape": [action_dim],
            "names": [f"action_{i}" for i in range(action_dim)],
            # not a LeRobot key: the bounds the robot accepts, for the way back in
            "bounds": {"low": header.action_low, "high": header.action_high},
        },
    }
    if header.state_names:
        features["observation.state"] = {
            "dtype": "float32",
            "shape": [len(header.state_names)],
            "names": header.state_names,
        }
    scalars = {"next.reward": "float32", "next.success": "bool", "next.done": "bool"}
    if header.has_progress:
        scalars[PROGRESS_KEY] = "float32"
    scalars |= {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64"}
    scalars |= {"index": "int64", "task_index": "int64"}
    features |= {key: {"dtype": d, "shape": [1], "names": None} for key, d in scalars.items()}
    return features


def _write_metadata(
    root: Path,
    info: dict[str, Any],
    stats: dict[str, dict[str, list]],
    tasks: dict[str, int],
    episode_rows: list[dict[str, Any]],
) -> None:
    """meta/info.json, stats.json, tasks.parquet and the episode metadata parquet."""
    meta = root / "meta"
    (meta / "info.json").parent.mkdir(parents=True, exist_ok=True)
    (meta / "info.json").write_text(json.dumps(info, indent=4))
    (meta / "stats.json").write_text(json.dumps(stats, indent=4))
    tasks_frame = pd.DataFrame(
        {"task_index": np.array(list(tasks.values()), dtype=np.int64)},
        index=pd.Index(list(tasks), name="task"),
    )
    tasks_frame.to_parquet(meta / "tasks.parquet")
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), path)
