"""The intrabar price path and the resting-order fill rule of the paper exchange, in one place.

Pure float functions of one candle (no Decimal, no objects), so they can be shared with the
backtest kernel (numba) later without change of meaning:

- the PATH through a candle: open -> low -> high -> close for an up bar (close >= open),
  open -> high -> low -> close otherwise, each leg a third of the bar, linear in between;
- the volume of the bar trades evenly in time along that path;
- a resting BUY at ``level`` is traded through while the path is below it (at or below with
  ``touch``), a SELL while the path is above it; the volume traded through its price in a
  stretch of the bar is the bar volume times the share of that stretch spent beyond the level.
  A resting order fills at its own price up to that volume (the ideal rule of earlier versions
  filled it whole at the first trade-through; :class:`~ethbtc.sim.engine.Engine` keeps that
  behind ``ideal_fills``).
"""

from __future__ import annotations

THIRD = 1.0 / 3.0


def path_knots(o: float, h: float, lo: float, c: float) -> tuple[float, float, float, float]:
    """Prices at fractions 0, 1/3, 2/3, 1 of the bar."""
    if c >= o:
        return o, lo, h, c
    return o, h, lo, c


def path_price(o: float, h: float, lo: float, c: float, f: float) -> float:
    """The path price at fraction ``f`` (clipped to [0, 1]) of the bar."""
    k0, k1, k2, k3 = path_knots(o, h, lo, c)
    f = min(max(f, 0.0), 1.0)
    if f <= THIRD:
        return k0 + (k1 - k0) * f / THIRD
    if f <= 2 * THIRD:
        return k1 + (k2 - k1) * (f - THIRD) / THIRD
    return k2 + (k3 - k2) * (f - 2 * THIRD) / THIRD


def _beyond(p: float, level: float, is_buy: bool, touch: bool) -> bool:
    if is_buy:
        return p <= level if touch else p < level
    return p >= level if touch else p > level


def resting_fill(o: float, h: float, lo: float, c: float, v: float, f0: float, f1: float, level: float,
                 is_buy: bool, touch: bool) -> tuple[float, float]:
    """``(first, volume)`` for a resting order at ``level`` over the stretch [f0, f1] of one bar.

    ``first``: the earliest fraction in [f0, f1] at which the path trades through the level,
    or -1.0 if it never does; ``volume``: the bar volume ``v`` times the share of the bar, within
    [f0, f1], that the path spends beyond the level (the volume traded through the order's price).
    """
    first, share = -1.0, 0.0
    if f1 <= f0:
        return first, share
    k = path_knots(o, h, lo, c)
    for leg in range(3):
        fa, fb = leg * THIRD, (leg + 1) * THIRD
        a_f, b_f = max(fa, f0), min(fb, f1)
        if a_f >= b_f:
            continue
        va, vb = k[leg], k[leg + 1]
        pa = va + (vb - va) * (a_f - fa) / THIRD
        pb = va + (vb - va) * (b_f - fa) / THIRD
        ina, inb = _beyond(pa, level, is_buy, touch), _beyond(pb, level, is_buy, touch)
        if ina and inb:
            seg_a, seg_b = a_f, b_f
        elif ina or inb:
            cross = a_f + (b_f - a_f) * (level - pa) / (pb - pa) if pb != pa else a_f
            seg_a, seg_b = (a_f, cross) if ina else (cross, b_f)
        else:
            continue
        if first < 0:
            first = seg_a
        share += seg_b - seg_a
    return first, v * share
