"""SPEC R6-R10: indicators against hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from ethbtc import indicators as I
from tests.support.helpers import frame


def test_r6_sma_and_roc_ratio():
    close = pd.Series([1.0, 2.0, 3.0, 4.0, 6.0])
    sma = I.trend_ratio(close, "sma", 3)
    assert np.isnan(sma[:2]).all()
    assert sma[2] == pytest.approx(3 / 2 - 1) and sma[4] == pytest.approx(6 / ((3 + 4 + 6) / 3) - 1)
    roc = I.trend_ratio(close, "roc", 2)
    assert np.isnan(roc[:2]).all() and roc[4] == pytest.approx(6 / 3 - 1)


def test_r7_realized_vol_sample_std_annualised():
    close = pd.Series([1.0, 1.01, 0.99, 1.02, 1.0])
    vol = I.realized_vol(close, 3, 15)
    rets = np.array([1.01 / 1 - 1, 0.99 / 1.01 - 1, 1.02 / 0.99 - 1])
    assert np.isnan(vol[:3]).all()
    assert vol[3] == pytest.approx(np.std(rets, ddof=1) * np.sqrt(525600 / 15))


def test_r8_bands_constant_without_k_and_widen_with_k():
    sigma = np.array([np.nan, 0.5])
    e, x = I.bands(sigma, 0.03, 0.01, 0.0)
    assert list(e) == [0.03, 0.03] and list(x) == [0.01, 0.01]
    e, x = I.bands(sigma, 0.03, 0.01, 0.02)
    assert np.isnan(e[0]) and e[1] == pytest.approx(0.04) and x[1] == pytest.approx(0.02)


def test_r9_gate_uses_completed_days_only():
    # 4 bars a day (6h) for 5 days; daily close = last bar of the day
    closes = np.array([1, 1, 1, 10, 2, 2, 2, 20, 3, 3, 3, 30, 4, 4, 4, 40, 5, 5, 5, 50], dtype=float)
    df = frame(closes, minutes=360)
    g = I.gate_value(I.index_ms(df.index), closes, 1)
    # day 2 (bars 8-11): D1 / D0 - 1 = 20/10 - 1 ; day 0 and 1 undefined
    assert np.isnan(g[:8]).all()
    assert g[8] == pytest.approx(1.0) and g[11] == pytest.approx(1.0)  # no intraday look-ahead
    assert g[12] == pytest.approx(30 / 20 - 1)
    opened = I.gate_open(g, 1, 0.6)
    assert not opened[:8].any() and opened[8] and not opened[12]  # 0.5 < 0.6
    assert I.gate_open(g, 0, 0.6).all() and I.gate_open(g, 1, 0.0).all()


def test_r9_gate_forward_fills_empty_days():
    closes = np.array([1.0, 2.0, 4.0])
    idx = pd.DatetimeIndex(["2024-01-01 23:00", "2024-01-02 23:00", "2024-01-04 12:00"], tz="UTC")
    g = I.gate_value(I.index_ms(idx), closes, 1)
    # bar on Jan 4: D(Jan 3) = D(Jan 2) forward-filled = 2, D(Jan 2) = 2 -> 0
    assert g[2] == pytest.approx(0.0)


def test_r10_vol_multiplier_edges():
    sigma = np.array([np.nan, 0.0, 0.2, 1.0, 0.5])
    m = I.vol_multiplier(sigma, 0.5, 0.5, 1.5)
    assert list(m) == [0.5, 1.5, 1.5, 0.5, 1.0]
    assert (I.vol_multiplier(sigma, 0.0, 0.5, 1.5) == 1).all()


def test_indicators_never_look_ahead():
    rng = np.random.default_rng(3)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    from ethbtc.config import build_config

    p = build_config({"vol_adapt_k": 0.01, "target_vol": 0.4, "gate_window_days": 2, "gate_roc_threshold": 0.01,
                      "trend_lookback": 50, "vol_window": 20}).strategy
    full = I.compute(frame(close), p, 15).frame(frame(close).index)
    part = I.compute(frame(close[:400]), p, 15).frame(frame(close[:400]).index)
    pd.testing.assert_frame_equal(full.iloc[:400], part)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_index_ms_any_resolution_and_timezone(unit):
    idx = pd.date_range("2023-03-26 00:30", periods=6, freq="15min", tz="Europe/Berlin").as_unit(unit)
    ms = I.index_ms(idx)
    assert ms.dtype == np.int64
    assert list(ms) == list(idx.tz_convert("UTC").as_unit("ms").asi8)
    assert ms[0] == pd.Timestamp("2023-03-25 23:30", tz="UTC").value // 1_000_000


def test_numpy_returns_and_roc_bitwise_equal_to_pandas_definitions():
    """R6 on arrays gives exactly pandas' shift formulation; R7's compiled rolling std agrees
    with pandas' to rounding, for any lookback including ones longer than the data."""
    rng = np.random.default_rng(11)
    close = pd.Series(0.05 * np.exp(np.cumsum(rng.normal(0, 0.02, 3000))))
    want_vol = (close.pct_change().rolling(30, min_periods=30).std(ddof=1) * np.sqrt(525_600.0 / 15)).to_numpy()
    np.testing.assert_allclose(I.realized_vol(close, 30, 15), want_vol, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(I.realized_vol(close.to_numpy(), 30, 15), I.realized_vol(close, 30, 15))
    for lookback in (1, 7, 2999, 3000, 5000):
        np.testing.assert_array_equal(I.trend_ratio(close, "roc", lookback), (close / close.shift(lookback) - 1.0).to_numpy())


def test_r7_r10_flat_window_has_exactly_zero_vol():
    close = np.concatenate([0.05 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, 100))), np.full(50, 0.07)])
    vol = I.realized_vol(close, 10, 15)
    assert (vol[111:] == 0.0).all() and (vol[10:100] > 0).all()
    assert (I.vol_multiplier(vol, 0.5, 0.5, 1.5)[111:] == 1.5).all()  # R10: sigma = 0 -> max_mult
