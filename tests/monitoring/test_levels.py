"""Buy/sell levels in price terms (SPEC R6, R12, R13): at the level, the trend ratio recomputed
with that close equals -band exactly; distances in bps are signed moves from the close."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ethbtc.monitoring.levels import distance_bps, price_levels

prices = st.floats(0.01, 0.1)
bands = st.floats(0.0, 0.2)


@given(st.lists(prices, min_size=2, max_size=60), bands, bands)
def test_sma_levels_are_the_exact_flip_closes(window: list[float], b1: float, b2: float) -> None:
    """Replacing today's close by the level makes close/SMA - 1 == -band (other closes fixed)."""
    entry, exit_ = max(b1, b2), min(b1, b2)
    lookback, close = len(window), window[-1]
    r = close / statistics.fmean(window) - 1
    buy, sell = price_levels(close, r, entry, exit_, sma_lookback=lookback)
    assert buy <= sell + 1e-15
    for level, band in ((buy, entry), (sell, exit_)):
        moved = [*window[:-1], level]
        assert level / statistics.fmean(moved) - 1 == pytest.approx(-band, abs=1e-9)


@given(prices, prices, bands, bands)
def test_roc_levels_hold_the_reference_close(close: float, ref: float, entry: float, exit_: float) -> None:
    buy, sell = price_levels(close, close / ref - 1, entry, exit_)
    assert buy / ref - 1 == pytest.approx(-entry)
    assert sell / ref - 1 == pytest.approx(-exit_)


def test_undefined_inputs_give_nan_levels() -> None:
    for args in [(0.05, float("nan"), 0.01, 0.0), (0.05, 0.0, float("nan"), 0.0), (float("nan"), 0.0, 0.01, 0.0),
                 (0.05, -1.0, 0.01, 0.0), (0.0, 0.0, 0.01, 0.0)]:
        assert all(math.isnan(x) for x in price_levels(*args))
    with pytest.raises(ValueError):
        price_levels(0.05, 0.0, 0.01, 0.0, sma_lookback=0)


@given(prices, st.floats(-0.5, 0.5))
def test_distance_bps_is_the_signed_move_to_the_level(close: float, move: float) -> None:
    assume(abs(move) > 1e-9)
    level = close * (1 + move)
    d = distance_bps(close, level)
    assert d == pytest.approx(move * 10_000, rel=1e-6)
    assert (d < 0) == (level < close)


def test_distance_bps_examples() -> None:
    assert distance_bps(0.05, 0.0495) == pytest.approx(-100)
    assert distance_bps(0.05, 0.05) == 0
    assert math.isnan(distance_bps(0.05, float("nan")))
    assert math.isnan(distance_bps(0.0, 0.05))
