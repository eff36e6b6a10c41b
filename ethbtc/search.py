"""Parameter search space and train/test evaluation shared by every optimiser.

``SEARCH_SPACE`` is the documented default sampler (ranges of the operations manual);
``sample`` draws one candidate; ``evaluate`` backtests it on a train and a test window with
indicators cached per (kind, lookback) / vol window / gate window across trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import indicators as I
from .backtest import build_result
from .config import Config
from .data import Candles
from .strategy import EthBtcStrategy

# name -> ("int", lo, hi) | ("float", lo, hi) | ("choice", [values])
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
        else:
            out[name] = spec[1][int(rng.integers(len(spec[1])))]
    if "flip_band_exit" in out and "flip_band_entry" in out:
        out["flip_band_exit"] = min(out["flip_band_exit"], out["flip_band_entry"])
    return out


@dataclass
class IndicatorCache:
    """Caches the expensive indicator pieces of one candle window across trials."""

    df: pd.DataFrame
    bar_minutes: int
    _trend: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    _vol: dict[int, np.ndarray] = field(default_factory=dict)
    _gate: dict[int, np.ndarray] = field(default_factory=dict)

    def get(self, cfg: Config) -> I.Indicators:
        p = cfg.strategy
        key = (p.trend_kind, p.trend_lookback)
        if key not in self._trend:
            self._trend[key] = I.trend_ratio(self.df["close"], *key)
        if p.vol_window not in self._vol:
            self._vol[p.vol_window] = I.realized_vol(self.df["close"], p.vol_window, self.bar_minutes)
        if p.gate_window_days not in self._gate:
            self._gate[p.gate_window_days] = I.gate_value(
                I.index_ms(self.df.index), self.df["close"].to_numpy(np.float64), p.gate_window_days)
        sigma, g = self._vol[p.vol_window], self._gate[p.gate_window_days]
        entry, exit_ = I.bands(sigma, p.flip_band_entry, p.flip_band_exit, p.vol_adapt_k)
        return I.Indicators(self._trend[key], sigma, entry, exit_, g,
                            I.gate_open(g, p.gate_window_days, p.gate_roc_threshold),
                            I.vol_multiplier(sigma, p.target_vol, p.min_mult, p.max_mult))


@dataclass
class Window:
    """A candle window prepared for repeated evaluation."""

    candles: Candles
    bnb_px: np.ndarray | None
    cache: IndicatorCache

    @classmethod
    def of(cls, candles: Candles, bnb_px: np.ndarray | None = None) -> Window:
        return cls(candles, bnb_px, IndicatorCache(candles.df, candles.interval_minutes))


def evaluate(cfg: Config, window: Window) -> dict[str, Any]:
    """Backtest ``cfg`` on ``window`` with cached indicators; returns the R29 summary."""
    strat = EthBtcStrategy(cfg, window.candles.interval_minutes)
    ind = window.cache.get(cfg)
    bnb = window.bnb_px if cfg.fees.pay_fees_in_bnb else None
    arrays = strat.run(window.candles.df, bnb, ind=ind)
    return build_result(cfg, window.candles, arrays, bnb).summary
