"""Parameter search space and train/test evaluation shared by every optimiser.

``SEARCH_SPACE`` is the documented default sampler (ranges of the operations manual);
``sample`` draws one candidate; ``evaluate`` backtests it on a prepared :class:`Window`.
A window prepares everything that does not depend on the parameters once (time arrays,
output buffers, HODL figures) and caches the expensive indicator series per (kind, lookback)
/ vol window / gate window in a memory-bounded LRU, so thousands of trials cost little more
than the compiled kernel itself. ``evaluate`` returns the SPEC R29 summary computed straight
from the kernel's arrays (no per-bar frames); ``evaluate(..., full=True)`` goes through
:func:`ethbtc.backtest.build_result` and must agree with it (tests check this).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from . import indicators as I
from . import kernel as K
from .backtest import build_result, fee_model
from .config import Config
from .data import Candles
from .strategy import EthBtcStrategy, KernelInputs, RunArrays, RunBuffers

# name -> ("int", lo, hi) | ("float", lo, hi) | ("choice", [values]) | ("fixed", value)
# Bar counts (trend_lookback, vol_window) are bars of the data being searched; cooldown is
# minutes, the gate window days. flip_band_exit is always drawn at or below flip_band_entry.
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "trend_kind": ("choice", ["sma", "roc"]),
    "trend_lookback": ("int", 20, 400),
    "flip_band_entry": ("float", 0.005, 0.08),
    "flip_band_exit": ("float", 0.0, 0.04),
    "vol_window": ("int", 20, 200),
    "vol_adapt_k": ("float", 0.0, 0.02),
    "target_vol": ("choice", [0.0, 0.3, 0.5, 0.8]),
    "cooldown_minutes": ("int", 0, 1440),
    "step_allocation": ("float", 0.2, 1.0),
    "max_position": ("float", 0.5, 1.0),
    "gate_window_days": ("int", 0, 60),
    "gate_roc_threshold": ("float", 0.0, 0.05),
    "rebalance_threshold_w": ("float", 0.0, 0.1),
}


def sample(rng: np.random.Generator, space: dict[str, tuple[Any, ...]] = SEARCH_SPACE) -> dict[str, Any]:
    """One random candidate; never an impossible one (exit band is drawn below the entry band)."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "int":
            out[name] = int(rng.integers(spec[1], spec[2] + 1))
        elif kind == "float":
            out[name] = float(rng.uniform(spec[1], spec[2]))
        elif kind == "fixed":
            out[name] = spec[1]
        else:
            out[name] = spec[1][int(rng.integers(len(spec[1])))]
    if "flip_band_exit" in out and "flip_band_entry" in out:
        out["flip_band_exit"] = min(out["flip_band_exit"], out["flip_band_entry"])
    return out


class _Lru:
    """A small least-recently-used map with a fixed number of entries."""

    def __init__(self, max_entries: int):
        self.max_entries = max(1, max_entries)
        self._d: OrderedDict[Any, np.ndarray] = OrderedDict()

    def get(self, key: Any, make: Any) -> np.ndarray:
        hit = self._d.get(key)
        if hit is not None:
            self._d.move_to_end(key)
            return hit
        value = make()
        self._d[key] = value
        if len(self._d) > self.max_entries:
            self._d.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._d)


@dataclass
class IndicatorCache:
    """Caches the expensive indicator pieces of one candle window across trials.

    Memory is bounded (``max_mb`` per window, split between volatility, gate and trend
    series; 256 MB holds every volatility window of the default space for 3.5 years of 15m
    bars); least recently used series are dropped first.
    """

    df: pd.DataFrame
    bar_minutes: int
    max_mb: float = 256.0
    _trend: _Lru = field(init=False)
    _vol: _Lru = field(init=False)
    _gate: _Lru = field(init=False)

    def __post_init__(self) -> None:
        per_series = max(1, len(self.df)) * 8
        entries = int(self.max_mb * 1e6 / per_series)
        # volatility windows repeat most across trials (every trial needs one), then gates
        self._vol = _Lru(int(entries * 0.7))
        self._gate = _Lru(int(entries * 0.24))
        self._trend = _Lru(int(entries * 0.06))
        self._close = self.df["close"]
        self._close_np = self._close.to_numpy(np.float64)
        self._open_ms = I.index_ms(self.df.index)

    def get(self, cfg: Config) -> I.Indicators:
        p = cfg.strategy
        ratio = self._trend.get((p.trend_kind, p.trend_lookback),
                                lambda: I.trend_ratio(self._close_np, p.trend_kind, p.trend_lookback))
        sigma = self._vol.get(p.vol_window, lambda: I.realized_vol(self._close_np, p.vol_window, self.bar_minutes))
        g = self._gate.get(p.gate_window_days,
                           lambda: I.gate_value(self._open_ms, self._close_np, p.gate_window_days))
        entry, exit_ = I.bands(sigma, p.flip_band_entry, p.flip_band_exit, p.vol_adapt_k)
        return I.Indicators(ratio, sigma, entry, exit_, g,
                            I.gate_open(g, p.gate_window_days, p.gate_roc_threshold),
                            I.vol_multiplier(sigma, p.target_vol, p.min_mult, p.max_mult))


@dataclass
class Window:
    """A candle window prepared for repeated evaluation."""

    candles: Candles
    bnb_px: np.ndarray | None
    cache: IndicatorCache
    inputs: KernelInputs | None = None
    _buffers: RunBuffers | None = None
    _scratch: np.ndarray | None = None

    @classmethod
    def of(cls, candles: Candles, bnb_px: np.ndarray | None = None, cache_mb: float = 256.0) -> Window:
        cache = IndicatorCache(candles.df, candles.interval_minutes, cache_mb)
        return cls(candles, bnb_px, cache, KernelInputs.of(candles.df, candles.interval_minutes))

    @property
    def buffers(self) -> RunBuffers:
        """Output arrays reused by every run in this process (created on first use)."""
        if self._buffers is None:
            self._buffers = RunBuffers.empty(len(self.candles.df))
        return self._buffers

    @property
    def scratch(self) -> np.ndarray:
        """A reusable float array of the window's length."""
        if self._scratch is None:
            self._scratch = np.empty(len(self.candles.df))
        return self._scratch

    def run(self, cfg: Config) -> RunArrays:
        """One kernel run of ``cfg`` on this window; arrays are views into reused buffers."""
        strat = EthBtcStrategy(cfg, self.candles.interval_minutes)
        bnb = self.bnb_px if cfg.fees.pay_fees_in_bnb else None
        return strat.run(self.candles.df, bnb, ind=self.cache.get(cfg), inputs=self.inputs, buffers=self.buffers)


@njit(cache=True)
def _path_pass(out_f: np.ndarray, out_i: np.ndarray, changed: np.ndarray) -> tuple[int, float, float, float]:
    """One pass over a run: copies the wealth values that differ from the previous bar into
    ``changed`` (flat-in-BTC bars repeat it) and returns (count, max drawdown, bars in ETH,
    sum of ETH weights)."""
    n = out_f.shape[0]
    prev = out_f[0, K.O_WEALTH]
    changed[0] = prev
    k = 1
    peak = prev
    max_dd = 0.0
    in_eth = 0
    w_sum = 0.0
    for t in range(n):
        in_eth += out_i[t, 1] == 1
        w_sum += out_f[t, K.O_WCUR]
        w = out_f[t, K.O_WEALTH]
        if w == prev:
            continue
        changed[k] = w
        k += 1
        prev = w
        if w > peak:
            peak = w
        else:
            dd = 1.0 - w / peak
            if dd > max_dd:
                max_dd = dd
    return k, max_dd, float(in_eth), w_sum


@njit(cache=True)
def _return_sums(log_w: np.ndarray) -> tuple[float, float, float]:
    """(sum, sum of squares, sum of squared negatives) of successive differences."""
    s = 0.0
    sq = 0.0
    down = 0.0
    for i in range(1, log_w.shape[0]):
        r = log_w[i] - log_w[i - 1]
        s += r
        sq += r * r
        if r < 0:
            down += r * r
    return s, sq, down


def _path_stats(out_f: np.ndarray, out_i: np.ndarray, scratch: np.ndarray,
                ann: float) -> tuple[float, float, float, float, float, float]:
    """(final, max drawdown, Sharpe, Sortino, time in ETH, mean ETH weight) of one run (R29).
    Per-bar log returns are zero while the wealth does not change, so logs (vectorised by
    numpy) are only taken of the changed values."""
    n = out_f.shape[0]
    k, max_dd, in_eth, w_sum = _path_pass(out_f, out_i, scratch)
    log_w = np.log(scratch[:k], out=scratch[:k])
    r_sum, r_sq, down = _return_sums(log_w)
    sharpe = sortino = float("nan")
    m = n - 1  # number of per-bar returns, zeros included
    if n >= 3:
        mean = r_sum / m
        sd = math.sqrt(max(0.0, (r_sq - r_sum * mean) / (m - 1)))
        downside = math.sqrt(down / m)
        if sd > 0:
            sharpe = mean / sd * ann
        if downside > 0:
            sortino = mean / downside * ann
    return float(out_f[n - 1, K.O_WEALTH]), max_dd, sharpe, sortino, in_eth / n, w_sum / n


def lean_summary(cfg: Config, window: Window, a: RunArrays) -> dict[str, Any]:
    """The R29 summary of a run, computed from the kernel arrays (same keys and values as
    :func:`ethbtc.backtest.summarize`, without building per-bar frames)."""
    c = window.candles
    df = c.df
    bnb = window.bnb_px if cfg.fees.pay_fees_in_bnb else None
    start_w = float(cfg.risk.basis_btc + (cfg.fees.start_bnb * bnb[0] if bnb is not None else 0.0))
    open0, close_last = float(window.inputs.open_[0]), float(window.inputs.close[-1])
    eth_hodl = start_w / open0 * close_last
    bnb_used = float(a.tr_f[:, K.T_FEE_BNB].sum()) if bnb is not None else None
    final, max_dd, sharpe, sortino, in_eth, avg_w = _path_stats(a.out_f, a.out_i, window.scratch,
                                                                math.sqrt(525_600.0 / c.interval_minutes))
    return {
        "start": str(df.index[0]), "end": str(df.index[-1]), "bars": int(len(df)),
        "interval_minutes": c.interval_minutes,
        "start_btc": start_w, "eth_hodl_qty": start_w / open0, "final_btc": float(final),
        "return_btc": final / start_w - 1.0, "btc_hodl_btc": start_w, "eth_hodl_btc": eth_hodl,
        "vs_eth_hodl": final / eth_hodl - 1.0, "max_drawdown": float(max_dd),
        "sharpe": float(sharpe), "sortino": float(sortino),
        "turns": int(a.state[K.S_TURNS]), "trades": int(len(a.tr_f)),
        "fees_btc": float(a.tr_f[:, K.T_FEE_BTC].sum()), "fee_model": fee_model(cfg, bnb_used),
        "bnb_used": bnb_used if bnb_used is not None else float("nan"),
        "turnover_btc": float(a.tr_f[:, K.T_NOTIONAL].sum()), "time_in_eth": float(in_eth), "avg_eth_weight": float(avg_w),
        "gaps": len(c.report.gaps), "missing_bars": c.report.missing_bars,
    }


def evaluate(cfg: Config, window: Window, full: bool = False) -> dict[str, Any]:
    """Backtest ``cfg`` on ``window`` with cached indicators; returns the R29 summary.

    The default lean path skips the per-bar/trade frames; ``full=True`` builds them through
    the backtester (slow; for checks)."""
    a = window.run(cfg)
    if full:
        bnb = window.bnb_px if cfg.fees.pay_fees_in_bnb else None
        return build_result(cfg, window.candles, a, bnb).summary
    return lean_summary(cfg, window, a)


def wealth_path(cfg: Config, window: Window) -> np.ndarray:
    """Per-bar wealth in BTC (R27 ``wealth_btc``) of ``cfg`` on ``window`` (a copy)."""
    return window.run(cfg).out_f[:, K.O_WEALTH].copy()
