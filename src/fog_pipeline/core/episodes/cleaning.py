"""Validate, repair, split or quarantine one raw episode.

Every defect found becomes a *reason* in the report. Repairs never invent data: a step
that cannot be trusted is dropped and the episode is split there, so no training window
ever bridges missing time. Outcomes per file:

- ``kept``: nothing to fix;
- ``repaired``: at least one fix (clip, drop duplicates, split), at least one segment kept;
- ``quarantined``: nothing usable (unreadable, schema violation, or no segment long enough).

The optional ``state`` and ``progress`` arrays are checked like the others (shape, dtype,
finite values, length). Every :class:`Segment` carries both, so downstream code needs no
special case: ``state`` is ``(n, 0)`` for an episode without proprioception, and an
episode without a progress label gets its reward label instead, with
``CleaningResult.progress_source == "rewards"`` (``"progress"`` otherwise) saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.episodes.schema import (
    REQUIRED_ARRAYS,
    REQUIRED_ATTRS,
    SUPPORTED_SCHEMA_VERSIONS,
    EpisodeReadError,
)

KEPT, REPAIRED, QUARANTINED = "kept", "repaired", "quarantined"


@dataclass
class CleaningConfig:
    """Thresholds of the cleaning rules (``parameters_episodes.yml: episodes.cleaning``)."""

    __pydantic_config__ = STRICT_KEYS

    # Shortest segment worth keeping, in steps: at least the world model's context + 1.
    min_segment_length: Annotated[int, Field(ge=2)] = 8
    # A step lasting longer than this many control periods is a gap (dropped frames).
    max_gap_factor: Annotated[float, Field(gt=1.0)] = 1.5
    # This many byte-identical consecutive frames means the camera froze.
    frozen_min_run: Annotated[int, Field(ge=2)] = 5
    # Actions beyond their bounds by at most this fraction of the range are clipped (the
    # robot clips them too); further out the record is corrupt and the step is dropped.
    action_clip_tolerance: Annotated[float, Field(ge=0.0)] = 0.1
    # Arrays whose lengths differ by at most this many trailing records are truncated to
    # the shortest (an interrupted write); larger mismatches are quarantined.
    max_length_mismatch: Annotated[int, Field(ge=0)] = 2


@dataclass
class Segment:
    """A contiguous, validated piece of one raw episode.

    ``state`` is float32 (n, P), (n, 0) without proprioception; ``progress`` is float32
    (n,). Left out, they default to no proprioception and the reward label as progress.
    """

    episode_id: str
    start: int  # index of the first step in the raw file
    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    state: np.ndarray | None = None
    progress: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = np.zeros((len(self), 0), dtype=np.float32)
        if self.progress is None:
            self.progress = np.asarray(self.rewards, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.frames.shape[0])


@dataclass
class CleaningResult:
    episode_id: str
    status: str
    reasons: list[str]
    length_before: int
    segments: list[Segment] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    # Where the segments' progress comes from: the file's "progress" label, or its
    # "rewards" when the file has none (set once the file passed the schema checks).
    progress_source: str = ""

    @property
    def length_after(self) -> int:
        return sum(len(s) for s in self.segments)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the proprioception channels; empty when the file logs none."""
        return tuple(str(name) for name in np.atleast_1d(self.attrs.get("state_names", [])))

    def quarantine(self, reason: str) -> CleaningResult:
        self.status, self.segments = QUARANTINED, []
        if reason not in self.reasons:
            self.reasons.append(reason)
        return self


def _schema_problems(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[str]:
    problems = [f"missing_dataset:{name}" for name in REQUIRED_ARRAYS if name not in arrays]
    problems += [f"missing_attribute:{name}" for name in REQUIRED_ATTRS if name not in attrs]
    if "state" in arrays and "state_names" not in attrs:
        problems.append("missing_attribute:state_names")
    if problems:
        return problems
    if attrs["schema_version"] not in SUPPORTED_SCHEMA_VERSIONS:
        return [f"unsupported_schema_version:{attrs['schema_version']}"]
    if not np.isfinite(attrs["fps"]) or attrs["fps"] <= 0:
        return ["bad_attribute:fps"]
    low, high = np.atleast_1d(attrs["action_low"]), np.atleast_1d(attrs["action_high"])
    if low.shape != high.shape or low.ndim != 1 or not np.all(high > low):
        return ["bad_attribute:action_bounds"]

    frames, actions = arrays["frames"], arrays["actions"]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        problems.append("bad_shape:frames")
    elif frames.dtype != np.uint8:
        problems.append("bad_dtype:frames")
    if actions.ndim != 2 or actions.shape[1] != low.shape[0]:
        problems.append("bad_shape:actions")
    for name in ("actions", "rewards", "timestamps"):
        if not np.issubdtype(arrays[name].dtype, np.floating):
            problems.append(f"bad_dtype:{name}")
    for name in ("rewards", "success", "timestamps"):
        if arrays[name].ndim != 1:
            problems.append(f"bad_shape:{name}")
    if arrays["success"].dtype.kind not in "bui":
        problems.append("bad_dtype:success")
    if "state" in arrays:
        state, names = arrays["state"], attrs["state_names"]
        if isinstance(names, str) or not all(isinstance(n, str) for n in np.atleast_1d(names)):
            problems.append("bad_attribute:state_names")
        elif state.ndim != 2 or state.shape[1] != len(np.atleast_1d(names)):
            problems.append("bad_shape:state")
        if not np.issubdtype(state.dtype, np.floating):
            problems.append("bad_dtype:state")
    if "progress" in arrays:
        if arrays["progress"].ndim != 1:
            problems.append("bad_shape:progress")
        if not np.issubdtype(arrays["progress"].dtype, np.floating):
            problems.append("bad_dtype:progress")
    return problems


def clean_file(
    episode_id: str,
    load: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
    config: CleaningConfig,
) -> CleaningResult:
    """Read one file with ``load`` (e.g. ``partial(read_raw, path)``) and clean it; a file
    that cannot be read is quarantined, never raised."""
    try:
        arrays, attrs = load()
    except EpisodeReadError as exc:
        return clean_episode(episode_id, None, None, config, read_error=str(exc))
    return clean_episode(episode_id, arrays, attrs, config)


def _identical_runs(frames: np.ndarray) -> np.ndarray:
    """same[t] is True when frames[t] is byte-identical to frames[t-1]."""
    same = np.zeros(len(frames), dtype=bool)
    if len(frames) > 1:
        flat = frames.reshape(len(frames), -1)
        same[1:] = np.all(flat[1:] == flat[:-1], axis=1)
    return same


def clean_episode(
    episode_id: str,
    arrays: dict[str, np.ndarray] | None,
    attrs: dict[str, Any] | None,
    config: CleaningConfig,
    read_error: str | None = None,
) -> CleaningResult:
    """Apply the cleaning rules to the raw contents of one file (never modifies inputs)."""
    if read_error is not None or arrays is None or attrs is None:
        return CleaningResult(episode_id, QUARANTINED, ["unreadable"], 0)
    lengths = {name: len(a) for name, a in arrays.items() if np.ndim(a) > 0}
    result = CleaningResult(episode_id, KEPT, [], max(lengths.values(), default=0), attrs=attrs)

    problems = _schema_problems(arrays, attrs)
    if problems:
        result.reasons.extend(problems)
        return result.quarantine(problems[0])

    # Length mismatch: truncate a short tail, quarantine anything worse.
    n = min(lengths.values())
    if max(lengths.values()) != n:
        if max(lengths.values()) - n > config.max_length_mismatch:
            return result.quarantine("length_mismatch")
        result.reasons.append("length_mismatch")
    frames = arrays["frames"][:n]
    actions = arrays["actions"][:n].astype(np.float32)
    rewards = arrays["rewards"][:n].astype(np.float32)
    success = arrays["success"][:n].astype(bool)
    timestamps = arrays["timestamps"][:n].astype(np.float64)
    if "state" in arrays:
        state = arrays["state"][:n].astype(np.float32)
    else:
        state = np.zeros((n, 0), dtype=np.float32)
    result.progress_source = "progress" if "progress" in arrays else "rewards"
    progress = arrays[result.progress_source][:n].astype(np.float32)
    reasons = result.reasons

    def flag(mask: np.ndarray, reason: str) -> np.ndarray:
        if mask.any() and reason not in reasons:
            reasons.append(reason)
        return mask

    # Steps that cannot be used at all (the episode is split around them).
    bad = flag(~np.all(np.isfinite(actions), axis=1), "nonfinite_action")
    bad |= flag(~np.isfinite(rewards), "nonfinite_reward")
    bad |= flag(~np.isfinite(timestamps), "nonfinite_timestamp")
    bad |= flag(~np.all(np.isfinite(state), axis=1), "nonfinite_state")
    if result.progress_source == "progress":  # the reward stand-in was checked above
        bad |= flag(~np.isfinite(progress), "nonfinite_progress")

    low = np.asarray(attrs["action_low"], dtype=np.float32)
    high = np.asarray(attrs["action_high"], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        overshoot = np.max(np.maximum(low - actions, actions - high) / (high - low), axis=1)
    bad |= flag((overshoot > config.action_clip_tolerance) & ~bad, "action_out_of_range")
    clip = flag((overshoot > 0) & ~bad, "action_clipped")
    if clip.any():
        actions = actions.copy()
        actions[clip] = np.clip(actions[clip], low, high)

    same_frame = _identical_runs(frames)
    # A record repeated verbatim (same time, frame, action and state) is a duplicate
    # write: drop it.
    dt = np.diff(timestamps, prepend=-np.inf)
    same_record = np.zeros(n, dtype=bool)
    same_record[1:] = np.all(actions[1:] == actions[:-1], axis=1) & np.all(
        state[1:] == state[:-1], axis=1
    )
    duplicate = flag((dt == 0) & same_frame & same_record & ~bad, "duplicate_step")

    # Frozen camera: in a run of identical frames only the first is a real observation.
    run_length = np.zeros(n, dtype=int)
    for t in range(1, n):
        if duplicate[t]:
            run_length[t] = run_length[t - 1]
        elif same_frame[t]:
            run_length[t] = run_length[t - 1] + 1
    frozen = np.zeros(n, dtype=bool)
    longest = 0  # length of the run containing t, found by walking each run backwards
    for t in range(n - 1, -1, -1):
        longest = 0 if run_length[t] == 0 else max(longest, run_length[t])
        frozen[t] = longest >= config.frozen_min_run - 1 and run_length[t] > 0
    bad |= flag(frozen & ~duplicate, "frozen_camera")

    # Time between consecutive surviving steps: gaps and backward jumps cut the episode.
    keep = ~(bad | duplicate)
    kept_idx = np.flatnonzero(keep)
    cut = np.zeros(len(kept_idx), dtype=bool)
    if len(kept_idx) > 1:
        period = 1.0 / float(attrs["fps"])
        step_dt = np.diff(timestamps[kept_idx])
        # Steps dropped above already split the episode; judge time only between neighbours.
        adjacent = np.diff(np.cumsum(bad)[kept_idx]) == 0
        backwards = flag((step_dt <= 0) & adjacent, "non_monotonic_timestamps")
        gap = flag((step_dt > config.max_gap_factor * period) & adjacent, "time_gap")
        cut[1:] = ~adjacent | backwards | gap
    pieces = np.split(kept_idx, np.flatnonzero(cut)) if len(kept_idx) else []

    long_enough = [idx for idx in pieces if len(idx) >= config.min_segment_length]
    if not long_enough:
        return result.quarantine("too_short")
    if len(long_enough) < len(pieces):
        reasons.append("short_segment_dropped")
    for idx in long_enough:
        result.segments.append(
            Segment(
                episode_id,
                int(idx[0]),
                frames[idx],
                actions[idx],
                rewards[idx],
                success[idx],
                state=state[idx],
                progress=progress[idx],
            )
        )
    result.status = REPAIRED if reasons else KEPT
    return result


class NoUsableEpisodesError(RuntimeError):
    """Raised when cleaning leaves nothing to train on."""


def _signature(result: CleaningResult) -> tuple:
    segment = result.segments[0]
    return (
        tuple(segment.frames.shape[1:]),
        segment.actions.shape[1],
        float(result.attrs["fps"]),
        segment.state.shape[1],
        result.state_names,
        result.progress_source,
    )


def reconcile(results: list[CleaningResult]) -> list[CleaningResult]:
    """Quarantine usable episodes whose frame shape, action size, fps, proprioception
    (width and channel names; none counts as width 0) or progress label (logged, or the
    reward stand-in) differ from the majority: one training set has one camera resolution,
    one control rate, one state vector and one meaning of progress."""
    usable = [r for r in results if r.segments]
    if not usable:
        counts: dict[str, int] = {}
        for result in results:
            for reason in result.reasons:
                counts[reason] = counts.get(reason, 0) + 1
        listing = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
        raise NoUsableEpisodesError(
            f"No usable episode among {len(results)} file(s); reasons: {listing or 'no files'}. "
            "See docs/episodes.md for the schema and data/08_reporting/episodes_report.csv for "
            "each file's reason; fix the recorder or relax "
            "parameters_episodes.yml:episodes.cleaning."
        )
    signatures = [_signature(r) for r in usable]
    majority = max(set(signatures), key=lambda s: (signatures.count(s), -signatures.index(s)))
    names = ("frame_shape", "action_dim", "fps", "state_dim", "state_names", "progress_source")
    for result, signature in zip(usable, signatures, strict=True):
        for name, value, expected in zip(names, signature, majority, strict=True):
            if value != expected:
                result.quarantine(f"inconsistent_{name}")
    return results
