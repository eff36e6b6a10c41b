"""The intrabar fill model shared by the backtest kernel and the paper exchange (SPEC R22 v3).

ONE numba-compiled implementation of

- the PATH through a candle: open -> low -> high -> close for an up bar (close >= open),
  open -> high -> low -> close otherwise, each leg a third of the bar, linear in between
  (time runs linearly along it, so ``ttl_sec`` is the fraction ``ttl_sec / bar seconds``);
- the BOOK the paper exchange quotes around the path price: bid = floor(p·(1 − s/2), tick),
  ask = ceil(p·(1 + s/2), tick), at least a tick apart (s = ``spread_bps`` / 10 000);
- the RESTING-ORDER rule: a buy at ``level`` is traded through while the path is below it (at
  or below with ``touch``), a sell while it is above; the first such fraction is when it fills,
  at its own price (maker), and the volume traded through its price in a stretch of the bar is
  the bar volume times the share of the stretch spent beyond the level (the cap of a fill under
  the volume rule);
- the PARTIAL-FILL rule (:func:`resting_fill_qty`): how much of a resting order fills when the
  path trades through it: at most ``partial_fill`` of its quantity per bar (at least one lot), and
  with the volume rule at most the volume traded through its price so far, on the lot grid;
- the MARKET order: with the depth book (:func:`book_walk`, the paper exchange's default) it takes
  the levels from the touch outwards, level ``k`` ``k`` ticks out holding ``(1 + growth·k)·q0``,
  ``q0 = top_share ·`` the last complete bar's volume (at least ``min_top``); with the flat book
  (``--ideal-fills``) it fills whole at the touch moved by the slippage against the taker;
- :func:`intrabar_fill`: what the live executor's post-only order achieves in one bar (rests at
  the touch from the bar's open for ``ttl``, then the rest as MARKET or cancelled).

The paper exchange (:mod:`ethbtc.sim.market`, :mod:`ethbtc.sim.engine`) and the backtest loop
(:func:`ethbtc.kernel.simulate`) both call these functions; there is no second copy of the rule.
Pure float functions of one candle, no objects: they compile in nopython mode and are callable
from Python too.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

THIRD = 1.0 / 3.0
FRACTION_DIGITS = 9  # bar fractions (clock positions, ttl) are compared at this resolution
GRID_EPS = 1e-6  # in ticks: a price this close to a grid point is on it (float noise of p / tick)


@njit(cache=True)
def bar_fraction(pos: float, bar: int) -> float:
    """The fraction of bar ``bar`` at clock position ``pos`` (bar index + fraction), in [0, 1], rounded
    to FRACTION_DIGITS: the paper exchange's clock accumulates float noise (an absolute position
    near 2000 resolves only ~2e-13), and both sides must see the same ttl (SPEC R22 v3)."""
    return min(max(round(round(pos, FRACTION_DIGITS) - bar, FRACTION_DIGITS), 0.0), 1.0)


@njit(cache=True)
def clock_pos(pos: float) -> float:
    """A clock position at the resolution fractions are compared at (see :func:`bar_fraction`)."""
    return round(pos, FRACTION_DIGITS)


@njit(cache=True)
def path_knots(o: float, h: float, lo: float, c: float) -> tuple[float, float, float, float]:
    """Prices at fractions 0, 1/3, 2/3, 1 of the bar."""
    if c >= o:
        return o, lo, h, c
    return o, h, lo, c


@njit(cache=True)
def path_price(o: float, h: float, lo: float, c: float, f: float) -> float:
    """The path price at fraction ``f`` (clipped to [0, 1]) of the bar."""
    k0, k1, k2, k3 = path_knots(o, h, lo, c)
    f = min(max(f, 0.0), 1.0)
    if f <= THIRD:
        return k0 + (k1 - k0) * f / THIRD
    if f <= 2 * THIRD:
        return k1 + (k2 - k1) * (f - THIRD) / THIRD
    return k2 + (k3 - k2) * (f - 2 * THIRD) / THIRD


@njit(cache=True)
def _beyond(p: float, level: float, is_buy: bool, touch: bool) -> bool:
    if is_buy:
        return p <= level if touch else p < level
    return p >= level if touch else p > level


@njit(cache=True)
def resting_fill(o: float, h: float, lo: float, c: float, v: float, f0: float, f1: float, level: float,
                 is_buy: bool, touch: bool) -> tuple[float, float]:
    """``(first, volume)`` for a resting order at ``level`` over the stretch [f0, f1] of one bar.

    ``first``: the earliest fraction in [f0, f1] at which the path trades through the level, or
    -1.0 if it never does; ``volume``: the bar volume ``v`` times the share of the bar, within
    [f0, f1], that the path spends beyond the level (the volume traded through the order's price).
    """
    first, share = -1.0, 0.0
    if f1 <= f0:
        return first, share
    k0, k1, k2, k3 = path_knots(o, h, lo, c)
    for leg in range(3):
        fa, fb = leg * THIRD, (leg + 1) * THIRD
        a_f, b_f = max(fa, f0), min(fb, f1)
        if a_f >= b_f:
            continue
        if leg == 0:
            va, vb = k0, k1
        elif leg == 1:
            va, vb = k1, k2
        else:
            va, vb = k2, k3
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


@njit(cache=True)
def grid_floor(x: float, tick: float) -> float:
    """Ticks at or below ``x`` (an integer-valued float); a value within GRID_EPS of a grid point is on it."""
    n = x / tick
    r = math.floor(n + 0.5)
    return r if abs(n - r) < GRID_EPS else math.floor(n)


@njit(cache=True)
def grid_ceil(x: float, tick: float) -> float:
    n = x / tick
    r = math.floor(n + 0.5)
    return r if abs(n - r) < GRID_EPS else math.ceil(n)


@njit(cache=True)
def tick_price(n: float, tick: float) -> float:
    """The price of ``n`` ticks as the nearest double to the exact decimal (n / 10^k for a tick of
    10^-k: IEEE division rounds correctly), i.e. the float a Decimal price or a CSV field gives;
    ``n * tick`` can be an ulp off, which turns a touch into a trade-through on one side only."""
    inv = math.floor(1.0 / tick + 0.5)
    if abs(inv * tick - 1.0) < 1e-12:
        return n / inv
    return n * tick


@njit(cache=True)
def touch_ticks(price: float, spread_bps: float, tick: float) -> tuple[float, float]:
    """(bid, ask) in ticks around the path ``price``: -/+ half the spread, at least a tick apart."""
    half = spread_bps / 20000.0
    bid = max(grid_floor(price * (1.0 - half), tick), 1.0)
    ask = grid_ceil(price * (1.0 + half), tick)
    if ask <= bid:
        ask = bid + 1.0
    return bid, ask


@njit(cache=True)
def market_ticks(bid_t: float, ask_t: float, is_buy: bool, slip: float, tick: float) -> float:
    """A MARKET order's fill price in ticks: the touch moved by ``slip`` (a fraction) against the taker."""
    if is_buy:
        return grid_ceil(tick_price(ask_t, tick) * (1.0 + slip), tick)
    return max(grid_floor(tick_price(bid_t, tick) * (1.0 - slip), tick), 1.0)


@njit(cache=True)
def floor_step(x: float, step: float) -> float:
    """``x`` rounded down onto the lot grid of ``step`` (the float nearest the decimal); ``step`` <= 0:
    no grid (``x`` itself)."""
    if step <= 0.0:
        return x
    return tick_price(grid_floor(x, step), step)


@njit(cache=True)
def resting_fill_qty(remaining: float, orig_qty: float, bar_done: float, through: float, maker_done: float,
                     share: float, volume_cap: bool, step: float) -> float:
    """The partial-fill rule (SPEC R22 v3, paper exchange ``--partial-fill`` / ``--volume-fills``): how
    much of a resting order fills when the path trades through its price.

    At most ``share`` of ``orig_qty`` per bar (floored to the lot, at least one lot; share 1: all of
    it), less ``bar_done`` already filled in this bar, and never more than ``remaining``. With
    ``volume_cap`` (the volume rule) also at most ``through``, the volume traded through the
    order's price while it rested, floored to the lot, less ``maker_done`` it already got. 0 when
    nothing may fill (a bar of zero volume under the volume rule)."""
    cap = orig_qty
    if share < 1.0:
        cap = max(floor_step(orig_qty * share, step), step)
    q = min(cap - bar_done, remaining)
    if volume_cap:
        q = min(q, floor_step(through, step) - maker_done)
    return max(q, 0.0)


@njit(cache=True)
def book_top_qty(v_prev: float, top_share: float, min_top: float, step: float) -> float:
    """Quantity at the touch of the depth book: ``top_share`` of the last COMPLETE bar's volume
    ``v_prev`` (never the bar in progress: no look-ahead), floored to the lot, at least ``min_top``."""
    return max(floor_step(v_prev * top_share, step), min_top)


@njit(cache=True)
def book_level_qty(q0: float, growth: float, k: int, step: float) -> float:
    """Quantity at level ``k`` (``k`` ticks beyond the touch) of the depth book: ``(1 + growth·k)·q0``
    floored to the lot."""
    return floor_step(q0 * (1.0 + growth * k), step)


@njit(cache=True)
def book_walk(qty: float, quote: float, is_buy: bool, touch_t: float, tick: float, q0: float, growth: float,
              levels: int, step: float, taken: np.ndarray) -> np.ndarray:
    """A taker order walking one side of the depth book (SPEC R22 v3; the paper exchange's MARKET
    order and crossing LIMIT, the backtest's taker fallback).

    The book side starts at ``touch_t`` (ticks: the ask for a buy, the bid for a sell) and goes
    ``levels`` levels outwards (a tick each; bids stop above price 0); level ``k`` holds
    :func:`book_level_qty` less ``taken[k]`` (what takers removed from that price in this bar;
    ``taken`` may be shorter than ``levels``). The order takes ``qty`` base units (``quote`` NaN) or
    spends up to ``quote`` (``qty`` NaN; each level's cost rounded up to 1e-8 as the exchange
    charges it), level by level, each take floored to the lot. Returns the quantity taken per
    level (length ``levels``); what it cannot take (the book ran out) is not filled."""
    out = np.zeros(levels)
    got, spent = 0.0, 0.0
    for k in range(levels):
        n = touch_t + k if is_buy else touch_t - k
        if n <= 0:
            break
        avail = book_level_qty(q0, growth, k, step)
        if k < len(taken):
            avail -= taken[k]
        if avail <= 0:
            continue
        price = tick_price(n, tick)
        if math.isnan(quote):
            take = min(avail, qty - got)
        else:
            take = min(avail, floor_step((quote - spent) / price, step))
        if take <= 0:
            break
        out[k] = take
        got += take
        spent += tick_price(grid_ceil(price * take, 1e-8), 1e-8)
    return out


@njit(cache=True)
def taker_fill(o: float, h: float, lo: float, c: float, v_prev: float, f: float, is_buy: bool, qty: float,
               spread_bps: float, tick: float, slip: float, depth: bool, top_share: float, growth: float,
               min_top: float, levels: int, step: float) -> tuple[float, float]:
    """A MARKET order of ``qty`` at fraction ``f`` of the bar, against a fresh book of that bar
    (``v_prev``: the volume of the bar before): ``(filled, average price)``. ``depth``: it walks the
    depth book (:func:`book_walk`, no slippage on top: the book is the slippage), else it fills whole
    at the touch moved by ``slip`` (:func:`market_ticks`)."""
    b_t, a_t = touch_ticks(path_price(o, h, lo, c, f), spread_bps, tick)
    if not depth:
        return qty, tick_price(market_ticks(b_t, a_t, is_buy, slip, tick), tick)
    q0 = book_top_qty(v_prev, top_share, min_top, step)
    takes = book_walk(qty, math.nan, is_buy, a_t if is_buy else b_t, tick, q0, growth, levels, step, np.zeros(0))
    got, notional = 0.0, 0.0
    for k in range(levels):
        if takes[k] > 0:
            got += takes[k]
            notional += takes[k] * tick_price(a_t + k if is_buy else b_t - k, tick)
    if got <= 0:
        return 0.0, math.nan
    return got, notional / got


@njit(cache=True)
def intrabar_fill(o: float, h: float, lo: float, c: float, v: float, is_buy: bool, qty: float, ttl: float,
                  spread_bps: float, tick: float, slip: float, fallback: bool, touch: bool,
                  volume_cap: bool, share: float = 1.0, step: float = 0.0, v_prev: float = 0.0,
                  depth: bool = False, top_share: float = 0.02, growth: float = 0.5, min_top: float = 0.5,
                  levels: int = 100) -> tuple[float, float, float, float, float]:
    """One bar of the live executor's post-only execution (SPEC R22 v3, R32).

    The order goes out at the bar's open as a LIMIT_MAKER at the touch (a buy at the bid, a sell
    at the ask of the path price there); it fills at its price where the path trades through it
    within ``ttl`` (bar fraction), as much as the partial-fill rule allows (:func:`resting_fill_qty`:
    ``share`` per bar, the volume traded through when ``volume_cap``, lot ``step``). At ``ttl``
    the rest goes as MARKET (:func:`taker_fill`: the depth book when ``depth``, ``v_prev`` the
    volume of the bar before, else the touch ± ``slip``) when ``fallback``, else it is cancelled.
    Returns (maker_qty, maker_price, taker_qty, taker_price, maker_fraction) with maker_fraction -1
    when the resting order did not fill; taker_price is the average over the levels taken.
    """
    bid_t, ask_t = touch_ticks(o, spread_bps, tick)
    level = tick_price(bid_t if is_buy else ask_t, tick)
    first, vol = resting_fill(o, h, lo, c, v, 0.0, min(ttl, 1.0), level, is_buy, touch)
    maker_q = 0.0
    if first >= 0.0:
        maker_q = resting_fill_qty(qty, qty, 0.0, vol, 0.0, share, volume_cap, step)
    taker_q, taker_px = 0.0, math.nan
    rest = qty - maker_q
    if fallback and rest > 0.0:
        taker_q, taker_px = taker_fill(o, h, lo, c, v_prev, ttl, is_buy, rest, spread_bps, tick, slip, depth,
                                       top_share, growth, min_top, levels, step)
    return maker_q, level, taker_q, taker_px, first
