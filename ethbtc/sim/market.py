"""Replayed market of the paper exchange: candle series, the market clock and the book.

The MARKET clock is a position in bar units, ``pos = bar index + fraction elapsed``, so gaps
in the history are skipped instead of replayed as dead time.

One time line: every time the exchange shows (kline open/close times, transactTime, order and
trade times, ledger, serverTime) is read off the same displayed bar times ``open_ms``. With the
time origin ``now`` (:meth:`CandleSeries.restamp`) the history is re-stamped onto a gapless grid
of bar intervals so that the replay's start position is the wall clock at start-up: in real-time
replay the market then runs on the wall clock, as Binance does; accelerated replay runs ahead
of it. With the origin ``data`` the candles keep their historical times (tests that compare
against the candle file). ``data_open_ms`` always holds the file's own times. Inside a bar the price follows
a fixed path through the candle (:mod:`ethbtc.fillmodel`, shared with the backtest
kernel, SPEC R22 v3): open -> low -> high -> close for
an up bar (close >= open), open -> high -> low -> close otherwise, each leg a third of the bar. Everything the exchange
shows (klines with a partial last bar, book ticker, fills of resting orders) is read off that
path, so a replay is deterministic and its fills never look at prices not yet reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from .. import fillmodel
from ..errors import DataError
from .rules import dec, floor_to

CLOCK_MODES = ("manual", "speed", "realtime")


def on_step(x: float, step: Decimal) -> Decimal:
    """A float quantity of the shared fill model (:mod:`ethbtc.fillmodel`, on the lot grid up to float
    noise) as the exact Decimal multiple of ``step``."""
    return (Decimal(repr(float(x))) / step).quantize(Decimal(1)) * step


def frame_of(candles: object) -> tuple[pd.DataFrame, int | None]:
    """Accept a ``Candles`` (``.df``/``.interval_minutes``) or a DataFrame indexed by open time."""
    df = getattr(candles, "df", candles)
    if not isinstance(df, pd.DataFrame):
        raise DataError("candles must be a DataFrame or a Candles object with .df")
    return df, getattr(candles, "interval_minutes", None)


class CandleSeries:
    """OHLCV arrays of one symbol plus the intrabar price path."""

    def __init__(self, candles: object, interval_minutes: int | None = None) -> None:
        df, loaded_interval = frame_of(candles)
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in df.columns]
        if missing:
            raise DataError(f"candles lack column(s) {', '.join(missing)}")
        if len(df) < 1:
            raise DataError("candles are empty")
        index = pd.DatetimeIndex(df.index)
        if index.tz is None:
            index = index.tz_localize("UTC")
        ns = index.as_unit("ns").asi8
        if len(ns) > 1 and not np.all(np.diff(ns) > 0):
            raise DataError("candle open times must be strictly increasing")
        self.open_ms = ns // 1_000_000
        self.data_open_ms = self.open_ms
        minutes = interval_minutes or loaded_interval
        if minutes is None and len(ns) < 2 and index.freq is not None:
            minutes = int(pd.Timedelta(index.freq).total_seconds() // 60)
        if minutes is None:
            if len(ns) < 2:
                raise DataError("cannot infer the bar interval from a single candle")
            minutes = int(round(float(np.median(np.diff(self.open_ms))) / 60000))
        self.interval_minutes = int(minutes)
        self.interval_ms = self.interval_minutes * 60_000
        self.o, self.h, self.l, self.c, self.v = (
            df[col].to_numpy(dtype=np.float64) for col in ("open", "high", "low", "close", "volume"))
        self.extra = {col: df[col].to_numpy(dtype=np.float64) for col in
                      ("quote_volume", "count", "taker_buy_base", "taker_buy_quote") if col in df.columns}

    def __len__(self) -> int:
        return len(self.open_ms)

    def restamp(self, anchor_open_ms: int, start: int) -> None:
        """Show bar ``start`` as opening at ``anchor_open_ms`` and every other bar on the gapless
        interval grid around it (historical gaps disappear from the displayed times)."""
        self.open_ms = anchor_open_ms + (np.arange(len(self.data_open_ms), dtype=np.int64) - start) * self.interval_ms

    def to_data_ms(self, ms: int) -> int:
        """A displayed time translated to the candle file's time (for other series of that file's era)."""
        i = min(max(self.index_at_ms(ms), 0), len(self) - 1)
        return int(self.data_open_ms[i]) + (ms - int(self.open_ms[i]))

    def round_to_tick(self, tick: float) -> None:
        """Put the replayed OHLC prices on the symbol's tick grid (Binance prices always are)."""
        if tick > 0:
            per_unit = round(1 / tick)  # ticks per unit: k / per_unit is the float nearest the decimal price
            exact = abs(per_unit * tick - 1) < 1e-9
            for name in ("o", "h", "l", "c"):
                ticks = np.maximum(np.round(getattr(self, name) / tick), 1.0)
                setattr(self, name, ticks / per_unit if exact else ticks * tick)

    def knots(self, i: int) -> list[tuple[float, float]]:
        k = fillmodel.path_knots(float(self.o[i]), float(self.h[i]), float(self.l[i]), float(self.c[i]))
        return [(0.0, k[0]), (1 / 3, k[1]), (2 / 3, k[2]), (1.0, k[3])]

    def price_at(self, i: int, f: float) -> float:
        """The shared intrabar path (:mod:`ethbtc.fillmodel`, SPEC R22 v3) at fraction ``f``."""
        return float(fillmodel.path_price(float(self.o[i]), float(self.h[i]), float(self.l[i]), float(self.c[i]), f))

    def resting_fill(self, i: int, f0: float, f1: float, level: float, is_buy: bool,
                     touch: bool) -> tuple[float, float]:
        """:func:`ethbtc.fillmodel.resting_fill` on bar ``i``: (first fraction or -1, volume traded through)."""
        first, vol = fillmodel.resting_fill(float(self.o[i]), float(self.h[i]), float(self.l[i]), float(self.c[i]),
                                            float(self.v[i]), f0, f1, level, is_buy, touch)
        return float(first), float(vol)

    def partial(self, i: int, f: float) -> tuple[float, float, float, float, float]:
        """(open, high, low, close, volume) of bar ``i`` as seen at fraction ``f``."""
        seen = [v for fk, v in self.knots(i) if fk <= f] + [self.price_at(i, f)]
        return float(self.o[i]), max(seen), min(seen), self.price_at(i, f), float(self.v[i]) * min(f, 1.0)

    def first_cross(self, i: int, f0: float, f1: float, level: float, below: bool, touch: bool) -> float | None:
        """Earliest fraction in [f0, f1] of bar ``i`` where the price trades through ``level``
        (the shared resting-order rule, :func:`ethbtc.fillmodel.resting_fill`).

        ``below``: a buy fills when the price goes under its limit (at it, with ``touch``);
        otherwise a sell fills when the price goes over its limit.
        """
        first, _ = self.resting_fill(i, f0, f1, level, below, touch)
        return None if first < 0 else first

    def index_at_ms(self, ms: int) -> int:
        """Index of the bar open at ``ms`` (last open_time <= ms), -1 before the first bar."""
        return int(np.searchsorted(self.open_ms, ms, side="right")) - 1

    def price_at_ms(self, ms: int) -> float | None:
        i = self.index_at_ms(ms)
        if i < 0:
            return None
        return self.price_at(i, min((ms - int(self.open_ms[i])) / self.interval_ms, 1.0))


class Clock:
    """Market clock in bar units: manual, accelerated (``bars_per_second``) or real time."""

    def __init__(self, start: float, end: float, mode: str = "manual", bars_per_second: float = 1.0,
                 interval_minutes: int = 15, now: Callable[[], float] = time.monotonic) -> None:
        self.interval_minutes = interval_minutes
        self.mode, self.bars_per_second = self._checked(mode, bars_per_second)
        self.end = end
        self._now = now
        self._lock = threading.Lock()
        self._base_pos = min(max(start, 0.0), end)
        self._base_wall = now()

    def _checked(self, mode: str, bars_per_second: float) -> tuple[str, float]:
        """(mode, speed) after validation; real time is one bar per bar interval."""
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock mode must be one of {CLOCK_MODES}, got {mode!r}")
        if mode == "realtime":
            bars_per_second = 1.0 / (self.interval_minutes * 60)
        if not bars_per_second > 0:
            raise ValueError("replay speed must be positive")
        return mode, bars_per_second

    def _pos_at(self, now: float) -> float:  # the caller holds the lock
        if self.mode == "manual":
            return self._base_pos
        return min(self._base_pos + (now - self._base_wall) * self.bars_per_second, self.end)

    def _rebase(self) -> None:
        """Make the current position the base, so a change of mode or a jump starts from it."""
        now = self._now()
        self._base_pos, self._base_wall = self._pos_at(now), now

    def pos(self) -> float:
        with self._lock:
            return self._pos_at(self._now())

    def set_mode(self, mode: str, bars_per_second: float | None = None) -> None:
        """Switch to ``mode`` from the current position on (``manual`` freezes the market; the
        position never moves backwards). ``bars_per_second`` applies to ``speed``."""
        with self._lock:
            checked = self._checked(mode, self.bars_per_second if bars_per_second is None else bars_per_second)
            self._rebase()
            self.mode, self.bars_per_second = checked

    def advance(self, bars: float) -> float:
        """Jump forward ``bars`` bars (any mode); returns the new position."""
        with self._lock:
            self._rebase()
            self._base_pos = min(self._base_pos + max(bars, 0.0), self.end)
            return self._base_pos


@dataclass(frozen=True)
class BookModel:
    """The synthetic order book around the replayed price (both sides alike).

    Level 0 is the touch (best bid / best ask, see :meth:`Market.bid_ask`); level ``k`` lies
    ``k`` ticks further out and holds ``(1 + growth * k) * q0``, where ``q0 = top_share *`` the
    volume of the last COMPLETE bar (never the bar in progress: no look-ahead), at least
    ``min_top_qty``, quantities on the step grid, ``levels`` levels per side. ETHBTC defaults: a
    15m bar trades a few hundred to a few thousand ETH, so the touch holds ~2% of that (a few to a
    few tens of ETH) and the first ten ticks ~0.5 of a bar's volume. Liquidity a taker removes
    stays removed until the next bar (the book refills each bar).
    """

    top_share: float = 0.02
    growth: float = 0.5
    min_top_qty: Decimal = Decimal("0.5")
    levels: int = 100


class Market:
    """The replayed symbol: clock position -> time, price, book, klines."""

    def __init__(self, series: CandleSeries, clock: Clock, tick_size: Decimal, spread_bps: float = 0.0,
                 book_qty: Decimal = Decimal("25"), step_size: Decimal = Decimal("0.0001"),
                 book: BookModel | None = None) -> None:
        self.series = series
        self.clock = clock
        self.tick = tick_size
        self.step = step_size
        self.spread_bps = spread_bps
        self.book_qty = book_qty  # ideal fills: every level shows this much
        self.book_model = book or BookModel()

    def book_top(self, pos: float) -> Decimal:
        """Quantity at the touch of the depth book (:func:`ethbtc.fillmodel.book_top_qty`): from the
        volume of the last COMPLETE bar before the one at ``pos`` (bar 0: its own)."""
        m = self.book_model
        i, _ = self.locate(pos)
        ref = float(self.series.v[i - 1] if i > 0 else self.series.v[0])
        return on_step(fillmodel.book_top_qty(ref, m.top_share, float(m.min_top_qty), float(self.step)), self.step)

    def levels(self, pos: float, buy_side: bool, ideal: bool = False) -> list[tuple[Decimal, Decimal]]:
        """One side of the book, best first: bids (``buy_side``) or asks, (price, qty) per level
        (:func:`ethbtc.fillmodel.book_level_qty`, the rule the backtest's taker fallback walks)."""
        bid, ask = self.bid_ask(pos)
        m = self.book_model
        q0 = self.book_top(pos)
        out: list[tuple[Decimal, Decimal]] = []
        for k in range(m.levels):
            price = bid - self.tick * k if buy_side else ask + self.tick * k
            if price <= 0:
                break
            qty = self.book_qty if ideal else on_step(
                fillmodel.book_level_qty(float(q0), m.growth, k, float(self.step)), self.step)
            out.append((price, qty))
        return out

    def locate(self, pos: float) -> tuple[int, float]:
        """(bar index, fraction) of a clock position; the end of data is the last bar at 1.0."""
        n = len(self.series)
        i = min(int(fillmodel.clock_pos(pos)), n - 1)
        return i, fillmodel.bar_fraction(pos, i)

    def time_ms(self, pos: float) -> int:
        i, f = self.locate(pos)
        return int(self.series.open_ms[i]) + int(f * self.series.interval_ms)

    def price(self, pos: float) -> float:
        return self.series.price_at(*self.locate(pos))

    def last_price(self, pos: float) -> Decimal:
        """The path price on the tick grid, as a last trade price would be."""
        return (dec(self.price(pos)) / self.tick).quantize(Decimal(1)) * self.tick

    def avg_price(self, pos: float, mins: int, samples: int = 60) -> Decimal:
        """Weighted average price of the last ``mins`` minutes (GET /api/v3/avgPrice and the
        PERCENT_PRICE_BY_SIDE reference): the replayed path sampled at ``samples`` even instants,
        each weighted by the volume rate of its bar (bar volume / bar length). ``mins`` 0, or no
        volume in the window: the last price. 8 decimals, like Binance's reply."""
        if mins <= 0:
            return self.last_price(pos)
        span = mins * 60_000 / self.series.interval_ms  # in bars
        num = den = 0.0
        for k in range(samples):
            p = pos - span * (k + 0.5) / samples
            if p < 0:
                break
            i, f = self.locate(p)
            w = float(self.series.v[i])
            num += w * self.series.price_at(i, f)
            den += w
        if den <= 0:
            return self.last_price(pos)
        return dec(num / den).quantize(Decimal("1e-8"))

    def bid_ask(self, pos: float) -> tuple[Decimal, Decimal]:
        """Best bid/ask: the path price -/+ half the spread, on the tick grid, at least a tick apart
        (:func:`ethbtc.fillmodel.touch_ticks`, the rule the backtest uses too)."""
        bid_t, ask_t = fillmodel.touch_ticks(self.price(pos), self.spread_bps, float(self.tick))
        return self.tick * int(bid_t), self.tick * int(ask_t)

    TRADES_PER_BAR = 30

    def tape(self, pos: float, from_id: int | None, start_ms: int | None, end_ms: int | None,
             limit: int) -> list[tuple[int, Decimal, Decimal, int, bool]]:
        """The market's public trade tape: (id, price, qty, time, isBuyerMaker), oldest first.

        Synthetic: ``TRADES_PER_BAR`` trades evenly spread over each bar's path (price on the
        tick grid, each a share of the bar volume), the seller the maker when the path rises,
        up to the current position; id = bar * TRADES_PER_BAR + k. Own fills are not on it.
        """
        s, n = self.series, self.TRADES_PER_BAR
        last = int(pos * n)  # trades strictly before the current instant
        if last <= 0:
            return []
        if from_id is not None:
            first = max(from_id, 0)
            stop = min(first + limit, last)
        elif start_ms is not None or end_ms is not None:
            lo = 0 if start_ms is None else max(int(np.searchsorted(s.open_ms, start_ms, side="right")) - 1, 0) * n
            first = lo
            while first < last and self._trade_time(first) < (start_ms or 0):
                first += 1
            stop = first
            while stop < last and stop - first < limit and (end_ms is None or self._trade_time(stop) <= end_ms):
                stop += 1
        else:
            stop, first = last, max(last - limit, 0)
        out = []
        for t in range(first, stop):
            i, k = divmod(t, n)
            f = (k + 0.5) / n
            price = (dec(s.price_at(i, f)) / self.tick).quantize(Decimal(1)) * self.tick
            rising = s.price_at(i, f) >= s.price_at(i, max(f - 1 / n, 0.0))
            qty = max(floor_to(dec(float(s.v[i]) / n), self.step), self.step)
            out.append((t, price, qty, self._trade_time(t), not rising))
        return out

    def _trade_time(self, t: int) -> int:
        i, k = divmod(t, self.TRADES_PER_BAR)
        return int(self.series.open_ms[i]) + int((k + 0.5) / self.TRADES_PER_BAR * self.series.interval_ms)

    def klines(self, pos: float, start_ms: int | None, end_ms: int | None, limit: int) -> list[list[object]]:
        """Binance 12-field kline rows up to and including the current (partial) bar."""
        s = self.series
        cur, frac = self.locate(pos)
        lo, hi = 0, cur + 1
        if start_ms is not None:
            lo = max(lo, int(np.searchsorted(s.open_ms, start_ms, side="left")))
        if end_ms is not None:
            hi = min(hi, int(np.searchsorted(s.open_ms, end_ms, side="right")))
        if start_ms is not None:
            hi = min(hi, lo + limit)
        else:
            lo = max(lo, hi - limit)
        rows: list[list[object]] = []
        for i in range(lo, hi):
            if i == cur:  # the open bar so far: its knots passed plus the current price, all on the grid
                c = float(self.last_price(pos))
                seen = [p for fk, p in s.knots(i) if fk <= frac] + [c]
                o, h, low, v = float(s.o[i]), max(seen), min(seen), float(s.v[i]) * min(frac, 1.0)
            else:
                o, h, low, c, v = s.o[i], s.h[i], s.l[i], s.c[i], s.v[i]
            share = v / s.v[i] if s.v[i] > 0 else 0.0
            quote = s.extra["quote_volume"][i] * share if "quote_volume" in s.extra else v * (h + low + c) / 3
            # without the file's trade count: the synthetic tape's (TRADES_PER_BAR per bar, see tape())
            count = int(s.extra["count"][i] * share) if "count" in s.extra else int(
                self.TRADES_PER_BAR * (frac if i == cur else 1.0))
            tb = s.extra["taker_buy_base"][i] * share if "taker_buy_base" in s.extra else v / 2
            tq = s.extra["taker_buy_quote"][i] * share if "taker_buy_quote" in s.extra else quote / 2
            open_ms = int(s.open_ms[i])
            rows.append([open_ms, f"{o:.8f}", f"{h:.8f}", f"{low:.8f}", f"{c:.8f}", f"{v:.8f}",
                         open_ms + s.interval_ms - 1, f"{quote:.8f}", count, f"{tb:.8f}", f"{tq:.8f}", "0"])
        return rows
