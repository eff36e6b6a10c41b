"""Parameter search space and train/test evaluation shared by every optimiser.

``SEARCH_SPACE`` is the documented default sampler (ranges of the operations manual);
``sample`` draws one candidate; ``evaluate`` backtests it on a prepared :class:`Window`.
A window prepares everything that does not depend on the parameters once (time arrays,
output buffers, HODL figures) and caches the expensive indicator series per (kind, lookback)
/ vol window / gate window in a memory-bounded LRU, so thousands of trials cost little more
than the compiled kernel itself. ``evaluate`` returns the SPEC R29 summary computed straight
from the kernel's arrays (no per-bar frames); ``evaluate(..., full=True)`` goes through
:func:`ethbtc.backtest.build_result` and must agree with it (tests check this).

``evaluate_batch`` runs many parameter sets on one window in ONE compiled call: per set it
derives the indicators (the compiled R6-R10 arithmetic of :mod:`ethbtc.indicators`, volatility
and daily gate taken from per-window tables shared by all sets with the same window lengths),
calls the kernel's ``simulate`` (the one implementation of R11-R26, inlined by numba) and
reduces the run to the R29 metrics, without Python in between. It returns the same figures
as ``evaluate`` (to rounding, 1e-12; tests check this).
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
from .data.candles import Candles
from .strategy import EthBtcStrategy, KernelInputs, RunArrays, RunBuffers, finite_bnb_wallet

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
    tables: BatchTables | None = None  # evaluate_batch's shared volatility/gate rows (on first use)
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
    sharpe, sortino = _ratios(r_sum, r_sq, down, n, ann)
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


def _ratios(r_sum: float, r_sq: float, down: float, n: int, ann: float) -> tuple[float, float]:
    """Annualised Sharpe and Sortino from the sums of per-bar log returns (R29; NaN when undefined)."""
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
    return sharpe, sortino


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


# --- many parameter sets per compiled call --------------------------------------------------------
# per-set inputs (float64 columns of ``sets``)
(B_SMA, B_LOOKBACK, B_ENTRY, B_EXIT, B_K, B_VOL_ROW, B_GATE_DAYS, B_GATE_THR, B_GATE_ROW, B_TARGET_VOL,
 B_MIN_MULT, B_MAX_MULT, B_BTC, B_BNB) = range(14)
N_B = 14
# per-set results (float64 columns of ``res``)
(R_FINAL, R_MAXDD, R_CHANGED, R_IN_ETH, R_WSUM, R_TURNS, R_TRADES, R_FEES, R_TURNOVER, R_BNB_USED) = range(10)
N_R = 10


@njit(cache=True, error_model="numpy")
def _run_sets(open_, high, low, close, volume, close_ms, day, day_k, bnb_px, vol_tab, gate_tab, sets, prm, fee, res,
              ratio, entry, exit_, gate_ok, mult, out_f, out_i, tr_f, tr_i, changed):  # pragma: no cover
    """Backtest every row of ``sets``/``prm``/``fee`` on one window and write its R29 figures to
    ``res`` and the wealth values that changed to ``changed[j]`` (their logs are taken by numpy
    afterwards, as :func:`lean_summary` does). Indicators are derived by the compiled helpers of
    :mod:`ethbtc.indicators`; the run itself is ``kernel.simulate`` (called, not copied); the
    reduction is ``_path_pass``. The work arrays are reused from set to set."""
    for j in range(sets.shape[0]):
        b = sets[j]
        I._trend_into(close, b[B_SMA] != 0.0, int(b[B_LOOKBACK]), ratio)
        I._derive_into(vol_tab[int(b[B_VOL_ROW])], gate_tab[int(b[B_GATE_ROW])], day_k, b[B_ENTRY], b[B_EXIT],
                       b[B_K], int(b[B_GATE_DAYS]), b[B_GATE_THR], b[B_TARGET_VOL], b[B_MIN_MULT], b[B_MAX_MULT],
                       entry, exit_, gate_ok, mult)
        state = K.new_state()
        n_tr = K.simulate(open_, high, low, close, volume, close_ms, day, ratio, entry, exit_, gate_ok, mult, bnb_px,
                          prm[j], fee[j], state, b[B_BTC], 0.0, b[B_BNB], out_f, out_i, tr_f, tr_i)
        k, max_dd, in_eth, w_sum = _path_pass(out_f, out_i, changed[j])
        fees = 0.0
        turnover = 0.0
        bnb_used = 0.0
        for i in range(n_tr):
            fees += tr_f[i, K.T_FEE_BTC]
            turnover += tr_f[i, K.T_NOTIONAL]
            bnb_used += tr_f[i, K.T_FEE_BNB]
        r = res[j]
        r[R_FINAL] = out_f[out_f.shape[0] - 1, K.O_WEALTH]
        r[R_MAXDD] = max_dd
        r[R_CHANGED] = k
        r[R_IN_ETH] = in_eth
        r[R_WSUM] = w_sum
        r[R_TURNS] = state[K.S_TURNS]
        r[R_TRADES] = n_tr
        r[R_FEES] = fees
        r[R_TURNOVER] = turnover
        r[R_BNB_USED] = bnb_used


class RowTable:
    """Equal-length float rows computed on demand and kept in one 2-D array (so a compiled
    call can index them), least recently used rows reused first. ``max_rows`` bounds the
    memory; a batch that needs more distinct rows than that grows the table for itself."""

    def __init__(self, width: int, max_rows: int, make: Any):
        self.width = width
        self.max_rows = max(1, max_rows)
        self.make = make  # key -> float array of ``width``
        self.table = np.empty((0, width))
        self._rows: OrderedDict[Any, int] = OrderedDict()

    def rows(self, keys: list[Any]) -> np.ndarray:
        """Row index of every key (computing missing rows); int64 array aligned with ``keys``."""
        need = list(dict.fromkeys(keys))
        if len(need) > self.table.shape[0]:  # first use: every row at once (pages cost memory only once written)
            self._grow(max(len(need), self.max_rows))
        for key in need:
            if key in self._rows:
                self._rows.move_to_end(key)
        wanted = set(need)
        for key in need:
            if key in self._rows:
                continue
            if len(self._rows) < self.table.shape[0]:
                row = len(self._rows)
            else:
                old = next(k for k in self._rows if k not in wanted)  # least recently used, not needed now
                row = self._rows.pop(old)
            self.table[row] = self.make(key)
            self._rows[key] = row
        return np.array([self._rows[k] for k in keys], dtype=np.int64)

    def _grow(self, n: int) -> None:
        new = np.empty((n, self.width))
        new[: self.table.shape[0]] = self.table
        self.table = new

    def __len__(self) -> int:
        return len(self._rows)


@dataclass
class BatchTables:
    """Per-window inputs of :func:`evaluate_batch` that many parameter sets share."""

    vol: RowTable  # R7 sigma per vol_window
    gate: RowTable  # R9 gate per calendar day, per gate_window_days
    day_k: np.ndarray  # calendar-day number of each bar
    work: tuple[np.ndarray, ...]  # ratio, entry, exit, gate_ok, mult
    _changed: np.ndarray | None = None

    @classmethod
    def of(cls, window: Window, max_mb: float) -> BatchTables:
        df = window.candles.df
        n = len(df)
        close = window.inputs.close
        open_ms = I.index_ms(df.index)
        day_k = I.day_numbers(open_ms)
        n_days = int(day_k[-1]) + 1
        bm = window.candles.interval_minutes
        vol = RowTable(n, int(max_mb * 1e6 * 0.9 / (8 * n)), lambda w: I.realized_vol(close, w, bm))
        gate = RowTable(n_days, 4096, lambda d: I.gate_per_day(open_ms, close, d))
        work = (np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.bool_), np.empty(n))
        return cls(vol, gate, day_k, work)

    def changed(self, sets: int) -> np.ndarray:
        """A (sets x bars) scratch array for the changed wealth values, reused across calls."""
        if self._changed is None or self._changed.shape[0] < sets:
            self._changed = np.empty((sets, len(self.day_k)))
        return self._changed[:sets]


def _set_row(cfg: Config, vol_row: int, gate_row: int, start_bnb: float) -> list[float]:
    s = cfg.strategy
    row = [0.0] * N_B
    row[B_SMA] = 1.0 if s.trend_kind == "sma" else 0.0
    row[B_LOOKBACK], row[B_ENTRY], row[B_EXIT], row[B_K] = s.trend_lookback, s.flip_band_entry, s.flip_band_exit, s.vol_adapt_k
    row[B_VOL_ROW], row[B_GATE_DAYS], row[B_GATE_THR], row[B_GATE_ROW] = vol_row, s.gate_window_days, s.gate_roc_threshold, gate_row
    row[B_TARGET_VOL], row[B_MIN_MULT], row[B_MAX_MULT] = s.target_vol, s.min_mult, s.max_mult
    row[B_BTC], row[B_BNB] = cfg.risk.basis_btc, start_bnb
    return row


def evaluate_batch(cfgs: list[Config], window: Window) -> list[dict[str, Any]]:
    """The R29 metrics of every config on ``window`` (numeric keys of :func:`lean_summary`,
    same values to rounding), computed in one compiled call per fee setting."""
    if window.tables is None:
        window.tables = BatchTables.of(window, window.cache.max_mb)
    out: list[dict[str, Any]] = [{} for _ in cfgs]
    groups: dict[bool, list[int]] = {}
    for i, cfg in enumerate(cfgs):  # a BNB price series is per call: group by whether fees use it
        groups.setdefault(bool(cfg.fees.pay_fees_in_bnb and window.bnb_px is not None), []).append(i)
    for use_bnb, idx in groups.items():
        _evaluate_group([cfgs[i] for i in idx], window, use_bnb, [out[i] for i in idx])
    return out


def _evaluate_group(cfgs: list[Config], window: Window, use_bnb: bool, into: list[dict[str, Any]]) -> None:
    t = window.tables
    assert t is not None
    bm = window.candles.interval_minutes
    vol_rows = t.vol.rows([c.strategy.vol_window for c in cfgs])
    gate_rows = t.gate.rows([c.strategy.gate_window_days for c in cfgs])
    strats = [EthBtcStrategy(c, bm) for c in cfgs]
    # R23 as EthBtcStrategy.run sets it up: a finite BNB wallet only with start_bnb > 0 and prices
    finite = [finite_bnb_wallet(c, has_prices=use_bnb) for c in cfgs]
    sets = np.array([_set_row(c, v, g, c.fees.start_bnb if f else 0.0)
                     for c, v, g, f in zip(cfgs, vol_rows, gate_rows, finite, strict=True)], dtype=np.float64)
    prm = np.array([s.params_array() for s in strats]).reshape(len(cfgs), K.N_PARAM)
    fee = np.array([s.fees_array(f) for s, f in zip(strats, finite, strict=True)]).reshape(len(cfgs), K.N_FEE)
    n = len(window.candles.df)
    bnb_px = window.bnb_px if use_bnb else np.full(n, np.nan)
    res = np.empty((len(cfgs), N_R))
    buf = window.buffers
    inp = window.inputs
    assert inp is not None
    ratio, entry, exit_, gate_ok, mult = t.work
    changed = t.changed(len(cfgs))
    _run_sets(inp.open_, inp.high, inp.low, inp.close, inp.volume, inp.close_ms, inp.day, t.day_k, bnb_px, t.vol.table, t.gate.table, sets, prm,
              fee, res, ratio, entry, exit_, gate_ok, mult, buf.out_f, buf.out_i, buf.tr_f, buf.tr_i, changed)
    ann = math.sqrt(525_600.0 / bm)
    open0, close_last = float(inp.open_[0]), float(inp.close[-1])
    for cfg, r, row, d in zip(cfgs, res, changed, into, strict=True):
        start_w = float(cfg.risk.basis_btc + (cfg.fees.start_bnb * bnb_px[0] if use_bnb else 0.0))
        eth_hodl = start_w / open0 * close_last
        final = float(r[R_FINAL])
        k = int(r[R_CHANGED])
        log_w = np.log(row[:k], out=row[:k])  # numpy's log, as lean_summary takes it
        sharpe, sortino = _ratios(*_return_sums(log_w), n, ann)
        bnb_used = float(r[R_BNB_USED]) if use_bnb else None
        d.update({
            "start_btc": start_w, "eth_hodl_qty": start_w / open0, "final_btc": final,
            "return_btc": final / start_w - 1.0, "btc_hodl_btc": start_w, "eth_hodl_btc": eth_hodl,
            "vs_eth_hodl": final / eth_hodl - 1.0, "max_drawdown": float(r[R_MAXDD]),
            "sharpe": float(sharpe), "sortino": float(sortino), "turns": int(r[R_TURNS]), "trades": int(r[R_TRADES]),
            "fees_btc": float(r[R_FEES]), "fee_model": fee_model(cfg, bnb_used),
            "bnb_used": bnb_used if bnb_used is not None else float("nan"), "turnover_btc": float(r[R_TURNOVER]),
            "time_in_eth": float(r[R_IN_ETH]) / n, "avg_eth_weight": float(r[R_WSUM]) / n,
        })
