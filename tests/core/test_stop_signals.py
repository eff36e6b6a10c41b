"""SIGTERM/SIGINT stop the long-running scripts gracefully, whenever they arrive
(``ethbtc.cli.stop_on_signals``; the executor's R31 promise: finish or cancel the in-flight order,
save, exit 0, also under ``docker stop``).

The hazard it removes: a signal handler calling ``stop.set()`` runs in the main thread between two
bytecodes, possibly while that thread holds the event's lock inside ``stop.wait()``; it then waits
for that lock forever. CI saw the paper exchange hang after SIGTERM until it was killed; the
subprocess cases below put the signal exactly inside that window.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from ethbtc.cli import stop_on_signals
from tests.conftest import ROOT

# the main thread holds the event's lock (as inside stop.wait()) when the signal is handled
INSIDE_THE_WAIT = textwrap.dedent("""
    import signal, sys, threading
    from ethbtc.cli import stop_on_signals
    stop = threading.Event()
    {install}
    with stop._cond:  # the lock Event.wait holds around its checks
        signal.raise_signal(signal.{sig})
    print("stopped" if stop.wait(10) else "not stopped", flush=True)
""")


def run_child(install: str, sig: str = "SIGTERM", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    code = INSIDE_THE_WAIT.format(install=install, sig=sig)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_inside_the_wait_stops_instead_of_hanging(sig: str) -> None:
    res = run_child("stack = stop_on_signals(stop); stack.__enter__()", sig)
    assert (res.returncode, res.stdout.strip(), res.stderr) == (0, "stopped", "")


def test_control_the_naive_handler_hangs_in_that_window() -> None:
    """The case above is the real hazard: ``stop.set()`` inside the handler never returns."""
    with pytest.raises(subprocess.TimeoutExpired):
        run_child("signal.signal(signal.SIGTERM, lambda *_: stop.set())", timeout=3)


def test_handlers_and_wakeup_fd_are_restored_and_nothing_is_set_without_a_signal() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fd_before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd_before)
    stop = threading.Event()
    with stop_on_signals(stop):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        ours = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(ours)
        assert ours not in (-1, fd_before)  # its pipe is registered
        assert not stop.wait(0.2)
    assert {s: signal.getsignal(s) for s in before} == before
    assert signal.set_wakeup_fd(fd_before) == fd_before  # the earlier fd (or none) is back
    assert not stop.is_set()


def test_a_signal_it_does_not_watch_leaves_the_event_alone() -> None:
    stop = threading.Event()
    old = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        with stop_on_signals(stop, signals=(signal.SIGTERM,)):
            signal.raise_signal(signal.SIGUSR1)
            assert not stop.wait(0.3)
            signal.raise_signal(signal.SIGTERM)
            assert stop.wait(5)
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_outside_the_main_thread_it_installs_nothing() -> None:
    """Tests call the scripts' ``main`` from threads, where Python allows no signal handlers."""
    seen: list[object] = []

    def body() -> None:
        with stop_on_signals(threading.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [before]
