"""Buy and sell levels in price terms, and the distance of the price to them in basis points.

The signal (SPEC R12/R13) is stated on the trend ratio r = close / trend - 1: enter ETH when
r < -entry_band, leave when r > -exit_band. A trader (and the Grafana "Proximity" panel, and
``ascii_levelbar.py``) wants the same thing in prices: the close at which each condition starts
to hold. One definition lives here so the metrics and the console show the same numbers.
"""

from __future__ import annotations

import math

BPS = 10_000.0


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def price_levels(
    close: float,
    trend_ratio: float,
    entry_band: float,
    exit_band: float,
    sma_lookback: int | None = None,
) -> tuple[float, float]:
    """Return ``(buy_level, sell_level)``: the closes at which entry / exit would trigger.

    With ``trend = close / (1 + trend_ratio)`` the levels are ``trend * (1 - band)``. That is
    exact for ``roc`` (the reference close does not move with today's close). For ``sma`` the
    mean includes today's close; pass ``sma_lookback`` (L) to solve for the close exactly,
    other closes of the window unchanged: ``level = (1 - band) * S / (L - 1 + band)`` where S
    is the sum of the other L-1 closes. The bands are held at this bar's values (with
    vol_adapt_k > 0 they move a little with the close too). Undefined inputs give NaN levels.
    """
    nan = float("nan")
    if not _finite(close, trend_ratio, entry_band, exit_band) or close <= 0 or trend_ratio <= -1:
        return nan, nan
    trend = close / (1.0 + trend_ratio)
    if sma_lookback is None:
        return trend * (1.0 - entry_band), trend * (1.0 - exit_band)
    if sma_lookback < 1:
        raise ValueError(f"sma_lookback must be >= 1, got {sma_lookback}")
    others = sma_lookback * trend - close

    def level(band: float) -> float:
        denom = sma_lookback - 1 + band
        return (1.0 - band) * others / denom if denom > 0 else nan

    return level(entry_band), level(exit_band)


def distance_bps(close: float, level: float) -> float:
    """Signed move from ``close`` to ``level`` in basis points of the close.

    ``(level / close - 1) * 10_000``: negative when the level is below the price (the price
    must fall to reach it), positive when above, zero at the level. NaN when undefined.
    """
    if not _finite(close, level) or close <= 0:
        return float("nan")
    return (level / close - 1.0) * BPS
