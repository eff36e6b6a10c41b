"""Liveness of the bar loop, as served on ``/health`` (also the Docker HEALTHCHECK).

The executor owns one ``HealthState`` and tells it what happens: ``loop_tick()`` on every loop
iteration, ``bar_processed(open_time)`` after deciding a bar, ``record_error(msg)`` on failures,
``set_breakers(...)``. ``check()`` answers healthy or not with a small JSON-able document:

- healthy (HTTP 200) while the loop ticked within ``max_loop_age_seconds`` (default two bar
  intervals) and the last decided bar closed at most two intervals ago;
- otherwise 503 with ``status`` ``starting`` (nothing decided yet), ``stalled`` (no loop tick),
  ``stale_bar`` (loop runs but bars are not being decided) or ``stopped``.

A latched risk breaker is reported but does not make the bot unhealthy: a restart would not help.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from ..data.timeframes import epoch_seconds
from .logs import redact

STALE_BARS = 2.0  # the last bar may be at most this many intervals old


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HealthState:
    """Thread-safe record of the loop's last signs of life; ``clock`` is injectable for tests."""

    def __init__(
        self,
        mode: str,
        interval_seconds: float,
        max_loop_age_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.mode = mode
        self.interval_seconds = float(interval_seconds)
        self.max_loop_age_seconds = float(max_loop_age_seconds or STALE_BARS * interval_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_loop: float | None = None
        self._last_bar_open: float | None = None
        self._last_error: tuple[float, str] | None = None
        self._breakers = {"max_drawdown": False, "daily_loss": False}
        self._stopped = False

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Measure ages on this clock (epoch seconds), e.g. the exchange's clock once it is known:
        bar times are the exchange's, so a paper exchange replaying faster than real time is
        judged on its own time line."""
        with self._lock:
            self._clock = clock

    def loop_tick(self) -> None:
        with self._lock:
            self._last_loop = self._clock()

    def bar_processed(self, bar_open_time: float | int | dt.datetime) -> None:
        """``bar_open_time``: datetime or epoch s/ms/us of the bar just decided (SPEC R3)."""
        with self._lock:
            self._last_bar_open = epoch_seconds(bar_open_time)
            self._last_loop = self._clock()

    def record_error(self, message: str) -> None:
        """Remember the latest error (redacted; shown on /health until replaced)."""
        with self._lock:
            self._last_error = (self._clock(), redact(str(message))[:500])

    def set_breakers(self, maxdd_hit: bool, daily_paused: bool) -> None:
        with self._lock:
            self._breakers = {"max_drawdown": bool(maxdd_hit), "daily_loss": bool(daily_paused)}

    def mark_stopped(self) -> None:
        """The loop has ended (clean shutdown): /health answers 503 from now on."""
        with self._lock:
            self._stopped = True

    def check(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, document)`` at the current clock time."""
        with self._lock:
            now = self._clock()
            last_loop, last_bar, err = self._last_loop, self._last_bar_open, self._last_error
            breakers, stopped = dict(self._breakers), self._stopped
        loop_age = None if last_loop is None else max(0.0, now - last_loop)
        bar_close = None if last_bar is None else last_bar + self.interval_seconds
        bar_age = None if bar_close is None else max(0.0, now - bar_close)
        if stopped:
            status = "stopped"
        elif loop_age is None or bar_age is None:
            status = "starting"
        elif loop_age > self.max_loop_age_seconds:
            status = "stalled"
        elif bar_age > STALE_BARS * self.interval_seconds:
            status = "stale_bar"
        else:
            status = "ok"
        doc: dict[str, Any] = {
            "status": status,
            "mode": self.mode,
            "last_bar": _iso(last_bar),
            "last_bar_age_seconds": None if bar_age is None else round(bar_age, 3),
            "last_loop": _iso(last_loop),
            "last_loop_age_seconds": None if loop_age is None else round(loop_age, 3),
            "last_error": None if err is None else {"time": _iso(err[0]), "message": err[1]},
            "breakers": breakers,
        }
        return status == "ok", doc
