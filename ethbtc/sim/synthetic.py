"""Synthetic ETH/BTC-like candles for tests, examples and offline runs without a data file.

A seeded geometric random walk sampled into OHLCV bars; the frame has the same shape as
``ethbtc.data.load_candles(...).df`` (UTC DatetimeIndex ``open_time``, float64 columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_candles(bars: int = 500, *, interval_minutes: int = 15, start: str = "2021-01-01",
                      price: float = 0.05, bar_vol: float = 0.004, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = 4  # sub-steps per bar, so highs and lows differ from open and close
    log_path = np.log(price) + np.cumsum(rng.normal(0.0, bar_vol / np.sqrt(steps), bars * steps))
    path = np.exp(log_path).reshape(bars, steps)
    opens = np.concatenate([[price], path[:-1, -1]])
    closes = path[:, -1]
    highs = np.maximum(path.max(axis=1), opens)
    lows = np.minimum(path.min(axis=1), opens)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=bars, freq=f"{interval_minutes}min",
                          name="open_time")
    frame = pd.DataFrame({"open": opens, "high": highs, "low": lows, "close": closes,
                          "volume": rng.uniform(50.0, 500.0, bars)}, index=index)
    return frame.round({"open": 5, "high": 5, "low": 5, "close": 5, "volume": 4})
