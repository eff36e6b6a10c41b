"""Several bar intervals, one meaning: OHLCV resampling and the parameter scaling rule.

Resampling (e.g. 15m -> 1h): bins aligned to multiples of the target interval since the Unix
epoch (so 1h bars open on the hour, 1d bars at 00:00 UTC); open = first open, high = max,
low = min, close = last close, volume = sum. Bins without any source bar are not invented
(SPEC R4: they stay gaps); incomplete first/last bins (data starting or ending inside a bin)
are dropped because they are not the real candle of that period.

Scaling rule, so one parameter set means the same thing on every interval. The search
space is defined in bars of a reference interval (``ref``, default 15m); on an interval of
``m`` minutes:

* bar counts keep their length in hours: ``trend_lookback_m = round(trend_lookback * ref/m)``
  (>= 1) and ``vol_window_m = round(vol_window * ref/m)`` (>= 2);
* the per-bar step keeps its speed per hour: ``step_m = 1 - (1 - step)^(m/ref)``;
* minutes and days (cooldown, gate window), bands, vol targets and weights are unchanged
  (volatility is annualised with the interval's bars per year, so it is comparable).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data.candles import Candles, DataReport, _fill_report
from ..errors import DataError


def resample(candles: Candles, minutes: int) -> Candles:
    src = candles.interval_minutes
    if minutes == src:
        return candles
    if minutes < src or minutes % src:
        raise DataError(f"cannot build {minutes}m bars from {src}m bars: the target must be a multiple of the source")
    df = candles.df
    rule = f"{minutes}min"
    grouped = df.resample(rule, origin="epoch", label="left", closed="left")
    out = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    count = grouped["close"].count()
    out = out[count > 0]
    per_bin = minutes // src
    bins = out.index
    if len(out) and count.loc[bins[0]] < per_bin and df.index[0] > bins[0]:
        out = out.iloc[1:]
    if len(out):
        last_bin_end = out.index[-1] + pd.Timedelta(minutes=minutes)
        if df.index[-1] + pd.Timedelta(minutes=src) < last_bin_end:
            out = out.iloc[:-1]
    if len(out) < 2:
        raise DataError(f"{candles.report.path}: too little data for {minutes}m bars")
    out.index.name = "open_time"
    report = DataReport(path=f"{candles.report.path} (resampled to {minutes}m)", interval_minutes=minutes)
    _fill_report(report, out.index)
    return Candles(out.astype("float64"), minutes, report)


def scale_params(params: dict[str, Any], ref_minutes: int, minutes: int) -> dict[str, Any]:
    """Parameters given in reference-interval bars -> the same hours on ``minutes`` bars."""
    if ref_minutes == minutes:
        return dict(params)
    f = ref_minutes / minutes
    out = dict(params)
    if "trend_lookback" in out:
        out["trend_lookback"] = max(1, round(out["trend_lookback"] * f))
    if "vol_window" in out:
        out["vol_window"] = max(2, round(out["vol_window"] * f))
    if "step_allocation" in out:
        s = float(out["step_allocation"])
        out["step_allocation"] = 1.0 if s >= 1.0 else min(1.0, max(1e-6, 1.0 - (1.0 - s) ** (minutes / ref_minutes)))
    return out


class Scaler:
    """Picklable ``to_config`` callable for the evaluation pool."""

    def __init__(self, ref_minutes: int, minutes: int):
        self.ref_minutes, self.minutes = ref_minutes, minutes

    def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        return scale_params(params, self.ref_minutes, self.minutes)
