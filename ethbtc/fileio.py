"""Atomic file writes: write to a temp file in the same folder, fsync, rename.

A reader (or a crash) sees either the old complete file or the new complete file, never a
partial one. Used for state, configs and every report the toolkit writes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync it and rename it over ``path``."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write {target}: {target.parent} is not a folder") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        if exc.filename is None or exc.filename == str(tmp_path):  # name the real output, not the temp
            exc.filename = str(target)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail now (UserError/OSError) if ``path`` could not be written by :func:`atomic_path` later:
    for outputs written at the end of a long run (a session ledger, a report)."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"cannot write {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write {target}: {target.parent} is not a folder") from None
    with tempfile.TemporaryFile(dir=target.parent):
        pass
    return target


def check_outputs(*paths: str | os.PathLike[str] | None) -> None:
    """:func:`check_writable` for every output a command was given, before it does any work: a
    failure never leaves some outputs new and others old, nor loses hours of work at the end."""
    for path in paths:
        if path:
            check_writable(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[str]], None]) -> None:
    """Call ``writer(fh)`` on a text handle of a temp file, then publish it atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer(fh)


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
