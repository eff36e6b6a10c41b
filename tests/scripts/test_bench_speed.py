"""Smoke test of bench/backtest_speed.py's pure functions on a small input (no timings asserted)."""

import importlib.util

import numpy as np
import pytest

from ethbtc import kernel as K
from ethbtc.config import build_config
from ethbtc.strategy import EthBtcStrategy
from tests.support.helpers import frame, random_walk


@pytest.fixture(scope="module")
def bench(root):
    spec = importlib.util.spec_from_file_location("backtest_speed", root / "bench" / "backtest_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def setup():
    cfg = build_config({"trend_lookback": 20, "vol_window": 10, "flip_band_entry": 0.01, "flip_band_exit": 0.002,
                        "cooldown_minutes": 0, "step_allocation": 0.5, "max_dd_frac": 0.0, "fill_model": "next_open"})
    df = frame(random_walk(600, seed=5, vol=0.01))
    strat = EthBtcStrategy(cfg, 15)
    return cfg, df, strat, strat.run(df)


def test_naive_loop_reproduces_the_kernel(bench, setup):
    cfg, df, strat, a = setup
    assert len(a.tr_f) > 5  # the comparison covers real fills
    naive = bench.naive_loop(strat, df)
    assert bench.naive_matches_kernel(naive, a)
    naive.iat[300, 3] *= 1.001  # a wrong wealth must be caught
    assert not bench.naive_matches_kernel(naive, a)


def test_vbt_orders_place_our_weights_on_the_fill_bar(bench, setup):
    cfg, df, strat, a = setup
    size, fees = bench.vbt_orders(cfg, df, a)
    fill_bars = a.tr_i[:, K.TI_BAR]
    assert list(np.flatnonzero(size.notna().to_numpy())) == list(fill_bars)
    decided = a.tr_i[:, K.TI_DECISION_BAR]
    np.testing.assert_array_equal(size.to_numpy()[fill_bars], a.out_f[decided, K.O_DESIRED])
    buys = a.tr_i[:, K.TI_SIDE] > 0
    disc = 1.0 - cfg.fees.bnb_discount if cfg.fees.pay_fees_in_bnb else 1.0
    assert np.allclose(fees.to_numpy()[fill_bars[buys]], cfg.fees.taker_fee * disc)
    assert np.allclose(fees.to_numpy()[fill_bars[~buys]], cfg.fees.maker_fee * disc)


def test_interleaved_reports_median_and_best(bench):
    calls = []
    t = bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then alternating
    assert all(med >= best >= 0 for med, best in t.values())


def test_vectorbt_replays_our_orders(bench, setup):
    vbt = pytest.importorskip("vectorbt")  # only inside bench/.venv-vbt
    cfg, df, strat, a = setup
    size, fees = bench.vbt_orders(cfg, df, a)
    pf = vbt.Portfolio.from_orders(df["close"], size=size, size_type="targetpercent", direction="longonly",
                                   price=df["open"], fees=fees, init_cash=cfg.risk.basis_btc, freq="15min")
    assert int(pf.orders.count()) == len(a.tr_f)
