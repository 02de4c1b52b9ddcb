"""Data-parallel training on one machine: spawned processes, one process group, clear errors.

``run_processes`` starts N processes (start method spawn) joined in a torch.distributed
group on a free loopback port: NCCL with one GPU each on CUDA, gloo on the CPU, where
the processes share the parent's threads. A child's exception is raised again in the
parent, with the child's traceback; the moment one process fails the others are
stopped, so nothing waits forever on a collective that a dead peer will never join.
"""

from __future__ import annotations

import hashlib
import pickle
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessRaisedException

Worker = Callable[..., None]


class Channel:
    """Rank 0's line to the parent: ``send`` returns once the parent has handled the item,
    so a parent-side callback (live metrics, an interruption) acts at the same step as in
    a single process."""

    def __init__(self) -> None:
        context = mp.get_context("spawn")
        self.items, self.acks = context.SimpleQueue(), context.SimpleQueue()

    def send(self, item: Any) -> None:
        self.items.put(item)
        self.acks.get()


def rank_device(device: torch.device, rank: int) -> torch.device:
    """Rank r of a CUDA run takes the r-th GPU from the configured one; CPU ranks share."""
    if device.type != "cuda":
        return device
    return torch.device("cuda", (device.index or 0) + rank)


def check_devices(device: torch.device, processes: int) -> None:
    if device.type == "cuda":
        first, count = device.index or 0, torch.cuda.device_count()
        if first + processes > count:
            raise ValueError(
                f"{processes} training processes on {device} need GPUs {first}.."
                f"{first + processes - 1}, but {count} are visible: lower processes."
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def average(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over the processes, in one all-reduce (gloo has no
    AVG op, hence SUM and divide)."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for tensor, part in zip(tensors, flat.split([t.numel() for t in tensors]), strict=True):
        tensor.copy_(part.view_as(tensor))


def average_metrics(metrics: dict[str, float], device: torch.device) -> dict[str, float]:
    values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=device)
    average([values])
    return dict(zip(metrics, values.tolist(), strict=True))


def assert_identical(tensors: list[torch.Tensor], what: str) -> None:
    """Raise on every rank unless all ranks hold bitwise the same ``tensors``: averaged
    gradients keep them so, unless some step depends on a rank's own randomness."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest.hexdigest())
    if len(set(digests)) > 1:
        raise RuntimeError(f"The data-parallel processes ended with different {what}.")


def _process(
    rank: int,
    worker: Worker,
    processes: int,
    port: int,
    device: torch.device,
    threads: int,
    errors: Path,
    channel: Channel,
    args: bytes,
) -> None:
    torch.set_num_threads(threads)
    try:
        device = rank_device(device, rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=processes,
        )
        try:
            worker(rank, device, channel, *pickle.loads(args))
        finally:
            dist.destroy_process_group()
    except Exception as error:
        # The parent raises the first failure: a peer's error ("connection closed")
        # follows the one that caused it.
        try:
            raised = pickle.dumps(error)
        except Exception:
            raised = None  # not picklable: the parent reports the traceback alone
        record = {"time": time.monotonic_ns(), "traceback": traceback.format_exc()}
        partial = errors / f"{rank}.partial"  # renamed whole: a killed peer leaves no half
        partial.write_bytes(pickle.dumps({**record, "error": raised}))
        partial.rename(errors / f"{rank}.pkl")
        raise


def run_processes(
    worker: Worker,
    processes: int,
    device: torch.device,
    args: tuple = (),
    on_message: Callable[[Any], None] | None = None,
) -> None:
    """Run ``worker(rank, device, channel, *args)`` in ``processes`` spawned processes.

    ``worker`` must be importable (a module-level function) and ``args`` picklable. Items
    that rank 0 sends on ``channel`` reach ``on_message`` here in the parent. Returns when
    every process has finished; raises the first process's exception otherwise.
    """
    check_devices(device, processes)
    threads = max(1, torch.get_num_threads() // processes)  # no oversubscribed cores
    # Plain pickle: torch.multiprocessing would hand every process the same shared-memory
    # tensors, so that each rank's optimiser step would move all ranks' weights.
    payload = pickle.dumps(args)
    channel = Channel()
    with tempfile.TemporaryDirectory(prefix="fog-ddp-") as tmp:
        errors = Path(tmp)
        context = mp.start_processes(
            _process,
            args=(worker, processes, free_port(), device, threads, errors, channel, payload),
            nprocs=processes,
            join=False,
            start_method="spawn",
        )
        try:
            while not context.join(timeout=0.05):
                while not channel.items.empty():
                    item = channel.items.get()
                    if on_message is not None:
                        on_message(item)
                    channel.acks.put(None)
        except ProcessRaisedException as failure:
            raise _first_error(errors) or failure from None
        finally:
            for process in context.processes:  # after a parent-side error: stop them
                if process.is_alive():
                    process.terminate()
                process.join()


def _first_error(errors: Path) -> BaseException | None:
    records = [
        pickle.loads(path.read_bytes()) | {"rank": path.stem} for path in errors.glob("*.pkl")
    ]
    if not records:
        return None
    first = min(records, key=lambda record: record["time"])
    message = f"Raised in data-parallel training process {first['rank']}:\n{first['traceback']}"
    try:
        error = pickle.loads(first["error"]) if first["error"] is not None else None
    except Exception:
        error = None
    if error is None:
        return RuntimeError(message)
    error.add_note(message)
    return error
