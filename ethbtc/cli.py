"""Shared command-line plumbing: every script's ``main`` runs under :func:`run_main`.

User mistakes (:class:`~ethbtc.errors.UserError`, argparse errors, missing files, unwritable
paths, a full disk) become one line on stderr and exit code 2; Ctrl-C exits 130 without a traceback.
Long-running scripts (executor, paper exchange) turn SIGINT/SIGTERM into a graceful stop with
:func:`stop_on_signals`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2; ``type=float`` flags
    refuse nan and inf (they would otherwise flow silently into sizes, buckets and scores)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("type", float, finite_float)  # argparse looks types up in this registry

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {one_line(message)} (see --help)\n")


def one_line(text: str) -> str:
    """Newlines (e.g. from an argument or a file's header echoed back) shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def finite_float(text: str) -> float:
    """argparse type: a float that is not nan or inf."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def http_url(text: str) -> SplitResult | None:
    """``text`` split as an http(s) URL with a host and a valid port, else None (the caller
    names the flag in its error)."""
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises ValueError for a port outside 0..65535 or not a number
    except ValueError:  # also e.g. 'http://[::1' (unbalanced IPv6 bracket)
        return None
    return parts if parts.scheme in ("http", "https") and parts.hostname else None


def number(kind: type[int] | type[float] = float, low: float | None = None, high: float | None = None,
           *, above: bool = False) -> Callable[[str], Any]:
    """argparse ``type=``: a finite int/float within [low, high] (``above``: strictly > low).

    A bad value reads ``argument --speed: must be a number > 0, got 'nan'`` (never nan/inf).
    """
    what = "an integer" if kind is int else "a number"
    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    parts = [f"{'>' if above else '>='} {show(low)}"] if low is not None else []
    parts += [f"<= {show(high)}"] if high is not None else []
    expect = f"{what} {' and '.join(parts)}".strip()

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expect}, got {text!r}") from None
        ok = math.isfinite(value) and (low is None or (value > low if above else value >= low))
        if not ok or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {expect}, got {text!r}")
        return value

    return parse


def _error(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    try:
        rc = main(argv)
    except UserError as exc:
        _error(str(exc))
        return exc.exit_code
    except FileNotFoundError as exc:
        _error(f"file not found: {exc.filename}")
        return 2
    except IsADirectoryError as exc:
        _error(f"expected a file, got a directory: {exc.filename}")
        return 2
    except PermissionError as exc:
        _error(f"permission denied: {exc.filename}")
        return 2
    except BrokenPipeError:
        # stdout closed early (output piped into `head`): stop quietly, as other CLI tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        # any other file-system failure the user can fix: a path through a file (ENOTDIR),
        # an existing non-folder, a full disk (ENOSPC) or file-size limit (EFBIG)
        where = f": {exc.filename}" if exc.filename else ""
        text = " ".join(str(exc.strerror or exc).split())
        _error(f"{text}{where}")
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event,
                    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """While active, SIGINT/SIGTERM set ``stop`` (a graceful stop) without the signal handler
    touching a lock.

    A Python signal handler runs in the main thread between two bytecodes, possibly while that
    thread holds ``stop``'s own lock inside ``stop.wait()``; ``stop.set()`` called there waits
    for that lock forever, and a ``docker stop`` then ends in SIGKILL instead of a saved state.
    Here the interpreter's C handler writes the signal number to a pipe
    (:func:`signal.set_wakeup_fd`) and a watcher thread sets the event. Outside the main thread
    (a test calling ``main`` from a thread) Python allows no handlers: this then does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = {int(s) for s in signals}
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # required by set_wakeup_fd; a full pipe drops bytes, never blocks

    def watch() -> None:
        while data := os.read(read_end, 512):  # b"" once the write end is closed
            if wanted & set(data):
                stop.set()

    watcher = threading.Thread(target=watch, name="stop-on-signals", daemon=True)
    watcher.start()
    old_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    old = {s: signal.signal(s, _note_signal) for s in signals}  # a Python handler makes the C one write
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(old_fd)
        os.close(write_end)
        watcher.join(timeout=5)
        os.close(read_end)


def _note_signal(signum: int, frame: object) -> None:
    """Deliberately empty: the wakeup pipe carries the signal to the watcher thread."""
