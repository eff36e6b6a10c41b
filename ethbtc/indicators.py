"""Vectorised indicators (SPEC R6-R10), computed from data up to and including bar t only.

Each building block is its own function so the optimiser can cache the expensive ones
(volatility per window, daily gate per window) across trials; :func:`compute` assembles them
for one parameter set. The per-bar arithmetic is compiled once (``_trend_into``,
``_derive_into``) and called both by :func:`compute` (backtest, live) and by the optimiser's
batched evaluation (:mod:`ethbtc.search`), so the two can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from .config import StrategyParams

MS_PER_DAY = 86_400_000


def trend_ratio(close: pd.Series | np.ndarray, kind: str, lookback: int) -> np.ndarray:
    """R6: sma -> close / mean(last L closes incl. t) - 1; roc -> close_t / close_{t-L} - 1."""
    if kind not in ("sma", "roc"):
        raise ValueError(f"unknown trend_kind {kind!r}")
    c = np.ascontiguousarray(close, dtype=np.float64)
    out = np.empty(len(c))
    _trend_into(c, kind == "sma", int(lookback), out)
    return out


@njit(cache=True, error_model="numpy")
def _trend_into(c: np.ndarray, sma: bool, lookback: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """R6 into ``out`` (NaN where undefined)."""
    n = len(c)
    if sma:
        _rolling_mean_into(c, lookback, out)
        for i in range(lookback - 1, n):
            out[i] = c[i] / out[i] - 1.0
        return
    for i in range(min(lookback, n)):
        out[i] = np.nan
    for i in range(lookback, n):
        out[i] = c[i] / c[i - lookback] - 1.0


def realized_vol(close: pd.Series | np.ndarray, window: int, bar_minutes: int) -> np.ndarray:
    """R7: sample std (ddof=1) of simple returns over the last ``window`` returns, annualised."""
    c = np.asarray(close, dtype=np.float64)
    rets = np.empty(len(c))
    rets[:1] = np.nan
    rets[1:] = c[1:] / c[:-1] - 1.0  # what pandas' pct_change computes, without the Series overhead
    return _rolling_std(rets, window) * np.sqrt(525_600.0 / bar_minutes)


@njit(cache=True, error_model="numpy")
def _rolling_mean(x: np.ndarray, w: int) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(len(x))
    _rolling_mean_into(x, w, out)
    return out


@njit(cache=True, error_model="numpy")
def _rolling_mean_into(x: np.ndarray, w: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Mean of the last ``w`` values (NaN before), running sum refreshed every 128 bars."""
    n = len(x)
    for i in range(min(w - 1, n)):
        out[i] = np.nan
    s = 0.0
    for i in range(w - 1, n):
        if i == w - 1 or (i - w + 1) % 128 == 0:
            s = 0.0
            for j in range(i - w + 1, i + 1):
                s += x[j]
        else:
            s += x[i] - x[i - w]
        out[i] = s / w


@njit(cache=True, error_model="numpy")
def _rolling_std(x: np.ndarray, w: int) -> np.ndarray:  # pragma: no cover - compiled
    """Sample std (ddof=1) over the last ``w`` values; ``x[0]`` is NaN (no return for bar 0).

    Running sums of deviations from a fixed shift (good conditioning for returns), refreshed
    from scratch every 128 bars so rounding cannot drift; a window of identical values is
    exactly 0 (SPEC R10 treats sigma = 0 specially). Agrees with pandas' rolling std to
    ~1e-12 in absolute terms.
    """
    n = len(x)
    out = np.full(n, np.nan)
    if n <= w:
        return out
    shift = x[1]
    s1 = 0.0
    s2 = 0.0
    same = 1  # length of the run of identical values ending at i
    for i in range(2, w):
        same = same + 1 if x[i] == x[i - 1] else 1
    for i in range(w, n):
        same = same + 1 if x[i] == x[i - 1] else 1
        if i == w or (i - w) % 128 == 0:
            s1 = 0.0
            s2 = 0.0
            for j in range(i - w + 1, i + 1):
                d = x[j] - shift
                s1 += d
                s2 += d * d
        else:
            d_in = x[i] - shift
            d_out = x[i - w] - shift
            s1 += d_in - d_out
            s2 += d_in * d_in - d_out * d_out
        var = (s2 - s1 * s1 / w) / (w - 1)
        out[i] = np.sqrt(var) if var > 0 and same < w else 0.0
    return out


def day_numbers(open_ms: np.ndarray) -> np.ndarray:
    """Calendar-day number of each bar counted from the first bar's UTC day (R9 gate lookup)."""
    day = open_ms // MS_PER_DAY
    return day - day[0]


def gate_per_day(open_ms: np.ndarray, close: np.ndarray, window_days: int) -> np.ndarray:
    """R9 per calendar day (index: :func:`day_numbers`): D_{d-1} / D_{d-1-W} - 1, daily closes
    forward-filled."""
    k = day_numbers(open_ms)
    n_days = int(k[-1]) + 1
    daily = np.full(n_days, np.nan)
    daily[k] = close  # rows are time-sorted, so the last bar of each day wins
    daily = pd.Series(daily).ffill().to_numpy()
    per_day = np.full(n_days, np.nan)  # the gate of day k, from days k-1 and k-1-W
    if n_days > window_days + 1:
        per_day[window_days + 1 :] = daily[window_days:-1] / daily[: n_days - window_days - 1] - 1.0
    return per_day


def gate_value(open_ms: np.ndarray, close: np.ndarray, window_days: int) -> np.ndarray:
    """R9: g = D_{d-1} / D_{d-1-W} - 1 for a bar on UTC day d, daily closes forward-filled."""
    return gate_per_day(open_ms, close, window_days)[day_numbers(open_ms)]


def gate_open(g: np.ndarray, window_days: int, threshold: float) -> np.ndarray:
    out = np.empty(len(g), dtype=np.bool_)
    _gate_open_into(np.ascontiguousarray(g, dtype=np.float64), window_days, threshold, out)
    return out


def bands(sigma: np.ndarray, entry: float, exit_: float, k: float) -> tuple[np.ndarray, np.ndarray]:
    """R8: entry/exit bands widened by k * sigma; constants when k == 0."""
    e, x = np.empty(len(sigma)), np.empty(len(sigma))
    _bands_into(np.ascontiguousarray(sigma, dtype=np.float64), entry, exit_, k, e, x)
    return e, x


def vol_multiplier(sigma: np.ndarray, target_vol: float, min_mult: float, max_mult: float) -> np.ndarray:
    """R10: clip(target_vol / sigma, min, max); 1 when target_vol = 0; NaN -> min; 0 -> max."""
    m = np.empty(len(sigma))
    _mult_into(np.ascontiguousarray(sigma, dtype=np.float64), target_vol, min_mult, max_mult, m)
    return m


@njit(cache=True, error_model="numpy", inline="always")
def _band_at(band: float, k: float, sigma: float) -> float:  # pragma: no cover - compiled
    """R8: the band widened by k * sigma; the constant itself when k == 0 (also while sigma is NaN)."""
    return band if k == 0 else band + k * sigma


@njit(cache=True, error_model="numpy", inline="always")
def _gate_open_at(g: float, window_days: int, threshold: float) -> bool:  # pragma: no cover - compiled
    """R9: the gate is open when |g| >= threshold; always open when off; NaN (undefined) is closed."""
    if window_days == 0 or threshold <= 0:
        return True
    return abs(g) >= threshold


@njit(cache=True, error_model="numpy", inline="always")
def _mult_at(sigma: float, target_vol: float, min_mult: float, max_mult: float) -> float:  # pragma: no cover
    """R10 for one bar (clip as numpy does: min(max(x, lo), hi))."""
    if target_vol == 0:
        return 1.0
    if math.isnan(sigma):
        return min_mult
    if sigma == 0:
        return max_mult
    return min(max(target_vol / sigma, min_mult), max_mult)


@njit(cache=True, error_model="numpy")
def _gate_open_into(g, window_days, threshold, out):  # pragma: no cover - compiled
    for i in range(len(g)):
        out[i] = _gate_open_at(g[i], window_days, threshold)


@njit(cache=True, error_model="numpy")
def _bands_into(sigma, entry, exit_, k, e_out, x_out):  # pragma: no cover - compiled
    for i in range(len(sigma)):
        e_out[i] = _band_at(entry, k, sigma[i])
        x_out[i] = _band_at(exit_, k, sigma[i])


@njit(cache=True, error_model="numpy")
def _mult_into(sigma, target_vol, min_mult, max_mult, out):  # pragma: no cover - compiled
    for i in range(len(sigma)):
        out[i] = _mult_at(sigma[i], target_vol, min_mult, max_mult)


@njit(cache=True, error_model="numpy")
def _derive_into(sigma, gate_days, day_k, entry, exit_, k, window_days, threshold, target_vol, min_mult,
                 max_mult, e_out, x_out, open_out, m_out):  # pragma: no cover - compiled
    """R8-R10 of one parameter set in one pass: bands, gate open (from the per-day gate
    ``gate_days[day_k[i]]``) and vol multiplier; the same arithmetic as :func:`bands`,
    :func:`gate_open` and :func:`vol_multiplier`."""
    for i in range(len(sigma)):
        s = sigma[i]
        e_out[i] = _band_at(entry, k, s)
        x_out[i] = _band_at(exit_, k, s)
        open_out[i] = _gate_open_at(gate_days[day_k[i]], window_days, threshold)
        m_out[i] = _mult_at(s, target_vol, min_mult, max_mult)


@dataclass
class Indicators:
    """Per-bar inputs of the decision step, aligned with the candles."""

    ratio: np.ndarray
    sigma: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    gate: np.ndarray
    gate_open: np.ndarray
    mult: np.ndarray

    def frame(self, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(self.__dict__, index=index)


def compute(df: pd.DataFrame, p: StrategyParams, bar_minutes: int) -> Indicators:
    close = df["close"].to_numpy(dtype=np.float64)
    open_ms = index_ms(df.index)
    sigma = realized_vol(close, p.vol_window, bar_minutes)
    day_k = day_numbers(open_ms)
    per_day = gate_per_day(open_ms, close, p.gate_window_days)
    n = len(close)
    entry, exit_, opened, mult = np.empty(n), np.empty(n), np.empty(n, dtype=np.bool_), np.empty(n)
    _derive_into(sigma, per_day, day_k, p.flip_band_entry, p.flip_band_exit, p.vol_adapt_k, p.gate_window_days,
                 p.gate_roc_threshold, p.target_vol, p.min_mult, p.max_mult, entry, exit_, opened, mult)
    return Indicators(ratio=trend_ratio(close, p.trend_kind, p.trend_lookback), sigma=sigma, entry=entry, exit=exit_,
                      gate=per_day[day_k], gate_open=opened, mult=mult)


_MS_DIVISOR = {"ns": 1_000_000, "us": 1_000, "ms": 1}


def index_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch milliseconds of a UTC DatetimeIndex, whatever its resolution (floored, as as_unit)."""
    i8 = index.tz_convert("UTC").asi8.astype(np.int64)
    unit = index.unit
    return i8 * 1_000 if unit == "s" else i8 // _MS_DIVISOR[unit]
