"""Atomic file writes: a temporary file in the same directory, fsync, then rename over the target.

The temporary file is created with the mode asked for (0666 by default) less the process umask, as
``open()`` would create the target itself: an index built with the usual umask (022) is readable by
the service's own user (the container's, for example), not only by whoever built it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

#: Files anyone the umask allows may read; reports of people's results pass 0o600 instead.
DEFAULT_MODE = 0o666


def fsync_dir(directory: str | os.PathLike) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_beside(target: Path, mode: int) -> Path:
    """A new, empty file beside ``target`` with a name nobody else uses (O_EXCL), mode less umask."""
    while True:
        candidate = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, mode: int = DEFAULT_MODE) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    Whoever writes the temporary path must close it before the block ends. On error the temporary
    file is removed and ``target`` is untouched. The file gets ``mode`` less the process umask.
    """
    target = Path(target)
    tmp_path = _create_beside(target, mode)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_atomic(target: str | os.PathLike, data: bytes, *, mode: int = DEFAULT_MODE) -> None:
    with atomic_path(target, mode=mode) as tmp:
        tmp.write_bytes(data)
