"""atomic_dir: a crash at any step leaves the old version or the new one, never nothing."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from fog_pipeline.core import io
from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.io import atomic_dir, old_path, recover


class Crash(BaseException):
    """The process dies: nothing after it runs (a handler's own renames fail too)."""


def write(path, version: str) -> None:
    with atomic_dir(path) as tmp:
        (tmp / "version.txt").write_text(version)
        (tmp / "part").mkdir()
        (tmp / "part" / "data.txt").write_text(version * 3)


def version_at(path) -> str | None:
    """The version whole at ``path``, None if there is none (a half one fails the test)."""
    if not path.exists():
        return None
    version = (path / "version.txt").read_text()
    assert (path / "part" / "data.txt").read_text() == version * 3, "a half-written version"
    return version


def no_exchange(a, b) -> bool:
    return False


def has_exchange(folder) -> bool:
    probe = [folder / name for name in ("a", "b")]
    for path in probe:
        path.mkdir()
    return io.exchange(*probe)


@pytest.fixture(params=["exchange", "two_renames"])
def swap(request, monkeypatch, tmp_path_factory):
    """Run each test with the one-step exchange and with the two-rename fallback."""
    if request.param == "exchange":
        if not has_exchange(tmp_path_factory.mktemp("probe")):
            pytest.skip("no renameat2(RENAME_EXCHANGE) on this OS or filesystem")
    else:
        monkeypatch.setattr(io, "exchange", no_exchange)
    return request.param


@contextmanager
def crash_at(step: int):
    """Make the ``step``-th step of a swap (0-based: a rename, or an exchange that is
    done) and every later one crash, inside the block."""
    calls: list[str] = []
    rename, exchange = os.rename, io.exchange

    def crashing_rename(*args):
        calls.append("rename")
        if len(calls) > step:
            raise Crash("rename")
        rename(*args)

    def crashing_exchange(a, b):
        if exchange is no_exchange:
            return False  # does nothing: not a step
        calls.append("exchange")
        if len(calls) > step:
            raise Crash("exchange")
        return exchange(a, b)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io.os, "rename", crashing_rename)
        patch.setattr(io, "exchange", crashing_exchange)
        yield calls


def leftovers(parent, name="artifact"):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}"))


def test_a_write_replaces_the_old_version_and_leaves_nothing_beside_it(tmp_path, swap):
    path = tmp_path / "artifact"
    write(path, "old")
    (path / "only_in_old.txt").write_text("stale")
    write(path, "new")
    assert version_at(path) == "new"
    assert not (path / "only_in_old.txt").exists(), "the folder is replaced, not merged"
    assert leftovers(tmp_path) == [], "no temporary or .old folder left"


# The version whole at the path after a crash at each step, once recover() has run.
AFTER_CRASH = {
    ("exchange", 0): "old",  # the exchange never happened
    ("exchange", 1): "new",  # exchanged; the old version not yet moved aside
    ("two_renames", 0): "old",  # nothing renamed
    ("two_renames", 1): "old",  # old moved to .old, new not in place: recover() puts old back
}


@pytest.mark.parametrize("step", range(3))
def test_a_crash_at_any_step_leaves_the_old_or_the_new_version(tmp_path, swap, step):
    """Both swaps take two steps (exchange then rename aside, or two renames): a crash
    at step 2 is no crash."""
    path = tmp_path / "artifact"
    write(path, "old")
    crashed = False
    with crash_at(step):
        try:
            write(path, "new")
        except Crash:
            crashed = True
    # The next process: renames work again.
    assert crashed == (step < 2)
    assert version_at(recover(path)) == AFTER_CRASH.get((swap, step), "new")
    write(path, "newer")  # the next write goes through, and cleans up after the crash
    assert version_at(path) == "newer"
    # (a crash right after the exchange leaves a temporary folder holding the old version;
    # a real crash mid-write leaves one too: only .old is cleaned up by the next write)
    assert [name for name in leftovers(tmp_path) if ".tmp-" not in name] == []


def test_the_path_never_disappears_with_the_exchange(tmp_path, tmp_path_factory, monkeypatch):
    if not has_exchange(tmp_path_factory.mktemp("probe")):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this OS or filesystem")
    path = tmp_path / "artifact"
    write(path, "old")
    seen = []

    def watching(name, function):
        def call(*args):
            seen.append((name, version_at(path)))
            result = function(*args)
            seen.append((name, version_at(path)))
            return result

        return call

    monkeypatch.setattr(io.os, "rename", watching("rename", os.rename))
    monkeypatch.setattr(io, "exchange", watching("exchange", io.exchange))
    write(path, "new")
    assert seen == [("exchange", "old"), ("exchange", "new"), ("rename", "new"), ("rename", "new")]


def test_a_crash_between_the_two_renames_is_recovered_by_readers_and_writers(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "exchange", no_exchange)
    path = tmp_path / "artifact"
    write(path, "old")
    with crash_at(1), pytest.raises(Crash):  # old -> .old done, new -> path never done
        write(path, "new")
    assert not path.exists() and version_at(old_path(path)) == "old"  # the gap itself

    assert recover(path) == path
    assert version_at(path) == "old" and not old_path(path).exists()
    assert recover(path) == path and version_at(path) == "old", "recover twice: no change"


def test_a_stale_old_copy_is_ignored_by_readers_and_removed_by_the_next_write(tmp_path):
    path = tmp_path / "artifact"
    write(path, "new")
    write(old_path(path), "old")  # as left by a crash after the last rename
    assert version_at(recover(path)) == "new"
    write(path, "newer")
    assert version_at(path) == "newer" and leftovers(tmp_path) == []


def test_a_failed_block_keeps_the_old_version_and_removes_its_temporary(tmp_path):
    path = tmp_path / "artifact"
    write(path, "old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_dir(path) as tmp:
            (tmp / "version.txt").write_text("new")
            raise RuntimeError("half way")
    assert version_at(path) == "old" and leftovers(tmp_path) == []


@dataclass
class TinyConfig:
    width: int = 3


class Tiny(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.layer = nn.Linear(config.width, 1)


def test_a_checkpoint_reader_recovers_the_old_model(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "exchange", no_exchange)
    path = tmp_path / "model"
    old = Tiny(TinyConfig())
    save_model(path, old, old.config)
    with crash_at(1), pytest.raises(Crash):
        save_model(path, Tiny(TinyConfig()), TinyConfig())
    assert not path.exists()
    loaded = load_model(path, Tiny, TinyConfig)
    torch.testing.assert_close(loaded.state_dict(), old.state_dict())


def test_exchange_swaps_two_folders_in_place(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "f").write_text("a")
    (b / "f").write_text("b")
    if not io.exchange(a, b):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this OS or filesystem")
    assert ((a / "f").read_text(), (b / "f").read_text()) == ("b", "a")
    with pytest.raises(FileNotFoundError):
        io.exchange(a, tmp_path / "missing")
