"""The edges of the indicators (issue 22, survivors of ``make mutation`` over
``ethbtc/indicators.py``): a window of identical returns has exactly zero volatility from the
very first such window (SPEC R7/R10), and the regime gate opens at |g| equal to the threshold
(SPEC R9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethbtc import indicators as I


@pytest.mark.parametrize("window", [3, 20])
def test_r7_r10_the_first_window_of_identical_returns_has_exactly_zero_vol(window: int) -> None:
    """SPEC R7/R10: sigma = 0 is special (m = max_mult), so a window of identical returns must
    give exactly 0, not rounding noise -- also when the run of identical returns starts inside
    the first window. Closes 10, 13, then doubling: returns 0.3, then exactly 1.0 forever; the
    running sums alone leave a variance of about +1e-16 for these windows."""
    close = np.array([10.0, 13.0] + [13.0 * 2.0**k for k in range(1, window + 8)])
    vol = I.realized_vol(close, window, 15)
    assert np.isnan(vol[:window]).all()
    assert vol[window] > 0.01  # the first window still holds the 0.3 return
    assert (vol[window + 1 :] == 0.0).all(), vol[window + 1 :]
    assert (I.vol_multiplier(vol, 0.5, 0.5, 1.5)[window + 1 :] == 1.5).all()


def test_r9_the_gate_opens_at_a_gate_value_exactly_at_the_threshold() -> None:
    """SPEC R9: open when |g| >= gate_roc_threshold (equality opens, on either sign)."""
    g = np.array([0.5, -0.5, np.nextafter(0.5, 0.0), -np.nextafter(0.5, 0.0), np.nan])
    assert I.gate_open(g, 1, 0.5).tolist() == [True, True, False, False, False]


def test_r9_a_daily_rise_of_exactly_the_threshold_opens_the_gate_through_compute() -> None:
    """SPEC R9 end to end: daily closes 2.0 then 3.0 (g = 3/2 - 1 = 0.5 exactly) open a gate of
    threshold 0.5 for every bar of the following UTC day, from its 00:00 bar on."""
    idx = pd.date_range("2024-03-01", periods=3 * 96, freq="15min", tz="UTC")
    close = np.r_[np.full(96, 2.0), np.full(96, 3.0), np.full(96, 3.0)]
    p = I.StrategyParams(gate_window_days=1, gate_roc_threshold=0.5, trend_lookback=4, vol_window=4)
    ind = I.compute(pd.DataFrame({"close": close}, index=idx), p, 15)
    day3 = slice(2 * 96, 3 * 96)
    assert (ind.gate[day3] == 0.5).all() and ind.gate_open[day3].all()
    assert not ind.gate_open[: 2 * 96].any()  # day 1: undefined; day 2: g = D1/D0 - 1 is undefined


def test_r7_volatility_does_not_drift_after_a_loud_period() -> None:
    """SPEC R7 over long histories: the running sums are rebuilt (every 128 bars), so a quiet
    stretch after a loud one has the volatility of each window computed from scratch -- not the
    residue of thousands of large squared returns added and taken away again (pandas' own
    rolling std, a running sum, is 1 % off here)."""
    rng = np.random.default_rng(7)
    rets = np.r_[0.0, rng.normal(0, 0.1, 3000), rng.normal(0, 1e-7, 3000)]  # first return 0: the sums' shift
    close = 0.05 * np.cumprod(1 + rets)
    vol = I.realized_vol(close, 16, 15)
    r = pd.Series(close).pct_change().to_numpy()
    ref = np.full(len(r), np.nan)
    ref[16:] = np.lib.stride_tricks.sliding_window_view(r[1:], 16).std(axis=1, ddof=1) * np.sqrt(525_600 / 15)
    quiet = slice(3200, None)  # a rebuild has happened since the last loud return (3001 + 16 + 128)
    assert np.allclose(vol[quiet], ref[quiet], rtol=1e-6, atol=0), np.abs(vol[quiet] / ref[quiet] - 1).max()
    assert np.allclose(vol[16:], ref[16:], rtol=1e-6, atol=1e-6)  # between rebuilds: ~1e-8 absolute


def test_r6_the_sma_does_not_drift_after_a_price_level_change() -> None:
    """SPEC R6 over long histories: the SMA's running sum is rebuilt (every 128 bars), so after a
    long stretch at a far higher price the ratio is that of the exact window mean."""
    rng = np.random.default_rng(3)
    close = np.r_[1000.0 * (1 + rng.normal(0, 0.01, 3000)), 0.001 * (1 + rng.normal(0, 0.01, 3000))]
    ratio = I.trend_ratio(close, "sma", 16)
    mean = np.lib.stride_tricks.sliding_window_view(close, 16).mean(axis=1)
    exact = close[15:] / mean - 1.0
    assert np.allclose(ratio[3200:], exact[3200 - 15 :], rtol=0, atol=1e-12)
    assert np.isnan(ratio[:15]).all()


@pytest.mark.parametrize("days", [5, 6])
def test_r9_a_gate_window_as_long_as_the_data_leaves_the_gate_closed(days: int) -> None:
    """SPEC R9: g needs the daily close W + 1 days back; with a window as long as the data (or one
    day shorter) no bar has it, so g is undefined and the gate closed everywhere -- not an error."""
    idx = pd.date_range("2024-03-01", periods=days * 96, freq="15min", tz="UTC")
    close = np.linspace(1.0, 2.0, len(idx))
    for window in (days, days - 1):
        g = I.gate_value(I.index_ms(idx), close, window)
        assert np.isnan(g).all() and not I.gate_open(g, window, 0.01).any()
