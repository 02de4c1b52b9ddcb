"""Atomic writes: an artifact is either the old version or the complete new one.

:func:`atomic_dir` writes a new version beside the artifact, then swaps it in. On Linux
the swap is one ``renameat2(RENAME_EXCHANGE)``, so the artifact's path never stops
existing. Elsewhere (or on a filesystem without the exchange) it takes two renames, old
to ``.<name>.old`` then new to the path; a crash between them leaves only the ``.old``
copy, which :func:`recover` puts back. Writers recover before they write, and readers
call :func:`recover` before they look, so that crash loses the new version, never both.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# The OS or the filesystem has no exchange: swap in two steps instead.
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def old_path(path: str | os.PathLike) -> Path:
    """Where :func:`atomic_dir` keeps the previous version of ``path`` while it swaps."""
    path = Path(path)
    return path.with_name(f".{path.name}.old")


def recover(path: str | os.PathLike) -> Path:
    """Put back the previous version of ``path`` if a swap was cut between its two renames
    (``path`` is missing but its ``.old`` copy is there). Returns ``path``."""
    path = Path(path)
    old = old_path(path)
    if not os.path.lexists(path) and old.is_dir():
        try:
            os.rename(old, path)
        except FileNotFoundError:
            pass  # another process recovered it first
    return path


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        function.argtypes += [ctypes.c_uint]
        function.restype = ctypes.c_int
    return function


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap two existing paths in one step; False (nothing done) where that is unsupported."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _swap_in(new: Path, path: Path) -> None:
    old = old_path(path)
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    if exchange(new, path):
        os.rename(new, old)  # ``new`` now holds the previous version
    else:
        os.rename(path, old)
        try:
            os.rename(new, path)
        except BaseException:
            os.rename(old, path)
            raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` when the block succeeds.

    If the block raises, the temporary directory is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    if old_path(path).exists():
        # Left by a swap that was cut after its last rename: the artifact is whole without it.
        shutil.rmtree(old_path(path))
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
