"""Single-instance guard: an OS lock on ``<state file>.lock`` held for the process lifetime.

Two executors on one state file would trade one account twice. The lock is an ``flock`` on
a side file (the state file itself is replaced atomically, so it cannot carry a lock); the
holder writes its PID there so a refused second start can name it. The kernel drops the lock
when the holder dies, even by ``kill -9``, so a stale lock never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import UserError


class InstanceLock:
    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.path = Path(f"{state_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"another executor (PID {holder}) is running on state file "
                            f"{self.path.with_suffix('')}; stop it first (two bots on one state would "
                            "trade the account twice)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
