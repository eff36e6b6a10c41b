"""Closed candles for the live decision: paged history, then incremental updates.

Binance returns the still-open current candle as the last kline; a decision must only see
closed bars (SPEC R3, R30). A row counts as closed when its close time has passed on the
exchange's clock, and the newest row of an open-ended query is treated as still open when
the exchange's newest candle ended more than one interval ago (a replayed market, such as the
project's simulator, or a market with no trades yet in the current interval). History is paged
backwards until the longest indicator has enough bars (e.g. a 60-day gate on 15m needs about
5,800), then only new bars are fetched. Gaps stay gaps (SPEC R4).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .errors import ExchangeError

log = logging.getLogger("ethbtc.live.klines")
PAGE = 1000


class KlineSource(Protocol):
    def klines(self, interval: str, *, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 1000) -> list[list[Any]]: ...

    def now_ms(self) -> int: ...


class KlineFeed:
    def __init__(self, source: KlineSource, interval: str, interval_ms: int, history: int) -> None:
        self.source = source
        self.interval = interval
        self.interval_ms = interval_ms
        self.history = history
        self.open_ms = np.empty(0, dtype=np.int64)
        self.ohlcv = np.empty((0, 5))

    def _closed(self, rows: list[list[Any]], open_ended: bool) -> list[list[Any]]:
        now = self.source.now_ms()
        out = [r for r in rows if int(r[0]) + self.interval_ms <= now]
        if open_ended and rows and out and out[-1] is rows[-1] and now - (int(rows[-1][0]) + self.interval_ms) >= self.interval_ms:
            out.pop()  # newest candle is stale by the clock: a replay's (or a quiet market's) current bar
        return out

    def _fetch_newer(self, after_ms: int | None) -> list[list[Any]]:
        if after_ms is None:
            rows = self.source.klines(self.interval, limit=PAGE)
            return self._closed(rows, open_ended=True)
        got: list[list[Any]] = []
        start = after_ms + 1
        while True:
            rows = self.source.klines(self.interval, start_ms=start, limit=PAGE)
            full = len(rows) >= PAGE
            got.extend(self._closed(rows, open_ended=not full))
            if not full:
                return got
            start = int(rows[-1][0]) + 1

    def _fetch_older(self, before_ms: int, need: int) -> list[list[Any]]:
        got: list[list[Any]] = []
        end = before_ms - 1
        while need > 0:
            rows = self.source.klines(self.interval, end_ms=end, limit=min(PAGE, max(need, 2)))
            rows = [r for r in rows if int(r[0]) <= end]
            if not rows:
                break
            got = rows + got
            need -= len(rows)
            end = int(rows[0][0]) - 1
        return got

    def refresh(self) -> pd.DataFrame:
        """Fetch what is new and return the closed bars (at most ``history``, oldest first).

        Which bars are closed is judged on the exchange's clock, measured afresh first (GET
        /api/v3/time, weight 1) when the source can: a drifting local clock, or a paper exchange
        replaying faster than real time, is followed instead of trusted."""
        sync = getattr(self.source, "sync_time", None)
        if callable(sync):
            sync()
        last = int(self.open_ms[-1]) if len(self.open_ms) else None
        rows = self._fetch_newer(last)
        if last is None and rows and len(rows) < self.history:
            rows = self._fetch_older(int(rows[0][0]), self.history - len(rows)) + rows
        if rows:
            self._append(rows)
        return self.frame()

    def _append(self, rows: list[list[Any]]) -> None:
        try:
            t = np.array([int(r[0]) for r in rows], dtype=np.int64)
            v = np.array([[float(x) for x in r[1:6]] for r in rows], dtype=np.float64)
        except (TypeError, ValueError, IndexError) as exc:
            raise ExchangeError(f"klines: malformed row from the exchange ({exc})") from None
        if not np.all(np.isfinite(v)) or np.any(v[:, :4] <= 0):
            raise ExchangeError("klines: non-positive or non-finite price from the exchange")
        keep = t > (self.open_ms[-1] if len(self.open_ms) else -1)
        t, v = t[keep], v[keep]
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        if len(t) > 1 and np.any(np.diff(t) <= 0):
            raise ExchangeError("klines: duplicate open times from the exchange")
        self.open_ms = np.concatenate([self.open_ms, t])[-self.history:]
        self.ohlcv = np.concatenate([self.ohlcv, v])[-self.history:]

    def frame(self) -> pd.DataFrame:
        index = pd.DatetimeIndex(pd.to_datetime(self.open_ms, unit="ms", utc=True), name="open_time")
        return pd.DataFrame(self.ohlcv, index=index, columns=["open", "high", "low", "close", "volume"])
