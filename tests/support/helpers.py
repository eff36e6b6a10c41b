"""Small builders shared by tests: synthetic candle frames and Candles objects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ethbtc.data.candles import Candles, DataReport


def frame(close, start="2024-01-01", minutes=15, open_=None) -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    open_ = np.concatenate([[close[0]], close[:-1]]) if open_ is None else np.asarray(open_, dtype=float)
    idx = pd.date_range(start, periods=len(close), freq=f"{minutes}min", tz="UTC", name="open_time")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close,
                         "volume": np.ones(len(close))}, index=idx)


def candles(close, minutes=15, **kw) -> Candles:
    df = frame(close, minutes=minutes, **kw)
    rep = DataReport(path="test", rows=len(df), first=df.index[0], last=df.index[-1], interval_minutes=minutes)
    return Candles(df, minutes, rep)


def random_walk(n: int, seed: int = 0, vol: float = 0.004, start: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start * np.exp(np.cumsum(rng.normal(0, vol, n)))
