"""Intervals and timestamps: Binance interval strings, epoch units by magnitude, UTC.

SPEC R2: numeric timestamps are read by magnitude (< 1e11 seconds, < 1e14 milliseconds,
otherwise microseconds), so one merged Binance Vision file may mix ms and us rows.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:  # numpy loads on first use: the command-line parsers import this module (fast --help)
    import numpy as np

BINANCE_INTERVALS: dict[str, int] = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30,
    "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480, "12h": 720,
    "1d": 1440, "3d": 4320, "1w": 10080,
}

_UNIT_MINUTES = {"m": 1, "min": 1, "t": 1, "h": 60, "d": 1440, "w": 10080}
_PATTERN = re.compile(r"^\s*(\d+)\s*(m|min|t|h|d|w)\s*$", re.IGNORECASE)


def interval_minutes(text: str | int) -> int:
    """Parse '15m', '15min', '15T', '1h', '1d' (or a plain number of minutes) into minutes."""
    if isinstance(text, numbers.Integral):  # int, numpy integers
        minutes = int(text)
    else:
        s = str(text).strip()
        if s.isdigit():
            minutes = int(s)
        else:
            if s in ("1M",):
                raise UserError("interval '1M' (one month) is not supported: bars must have a fixed length")
            m = _PATTERN.match(s)
            if not m:
                raise UserError(f"invalid interval {text!r}: use e.g. 15m, 15min, 15T, 1h, 4h, 1d")
            minutes = int(m.group(1)) * _UNIT_MINUTES[m.group(2).lower()]
    if minutes <= 0:
        raise UserError(f"invalid interval {text!r}: must be positive")
    return minutes


def binance_interval(minutes: int) -> str:
    """Minutes -> Binance interval string ('15m', '1h', ...); error when Binance has none."""
    for name, mins in BINANCE_INTERVALS.items():
        if mins == minutes:
            return name
    raise UserError(f"{minutes} minutes is not a Binance kline interval ({', '.join(BINANCE_INTERVALS)})")


def epoch_to_ms(values: np.ndarray) -> np.ndarray:
    """Convert numeric epoch timestamps of mixed units (s/ms/us, by magnitude) to int64 ms."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise UserError("timestamp column has empty or non-numeric values")
    out = np.where(v < 1e11, v * 1000.0, np.where(v < 1e14, v, v / 1000.0))
    return np.floor(out + 1e-6).astype(np.int64)


def epoch_seconds(t: float | int | dt.datetime) -> float:
    """One timestamp -> unix seconds: a datetime / pandas Timestamp (naive = UTC) or an epoch
    number in s / ms / us by magnitude (SPEC R2)."""
    if isinstance(t, dt.datetime):
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
    x = float(t)
    return x if abs(x) < 1e11 else x / 1e3 if abs(x) < 1e14 else x / 1e6
