"""SPEC R22 v3: the intrabar fill model shared by the backtest kernel and the paper exchange.

The path and the resting-order rule are tested directly (ethbtc.fillmodel), then through the
paper exchange's matching engine (ethbtc.sim, which calls the same functions) and through the
backtest kernel (a maker fill at the limit price with the maker fee, the taker fallback at the
path price at ttl, post-only without fallback leaves the rest unfilled).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethbtc import fillmodel as FM
from ethbtc.backtest import run_backtest
from ethbtc.config import build_config
from ethbtc.sim.build import SimConfig, build_engine
from ethbtc.sim.rules import SymbolRules
from tests.helpers import candles

TICK = 1e-5
UP = (0.05000, 0.05100, 0.04950, 0.05050)  # o, h, l, c: open -> low -> high -> close
DOWN = (0.05000, 0.05050, 0.04900, 0.04950)  # open -> high -> low -> close


def test_path_goes_open_low_high_close_up_and_open_high_low_close_down():
    assert FM.path_knots(*UP) == (0.05, 0.0495, 0.051, 0.0505)
    assert FM.path_knots(*DOWN) == (0.05, 0.0505, 0.049, 0.0495)
    assert FM.path_price(*UP, 1 / 6) == pytest.approx((0.05 + 0.0495) / 2)  # time linear along a leg
    assert FM.path_price(*DOWN, 1.0) == 0.0495


def test_a_buy_at_a_price_the_bar_never_reaches_does_not_fill():
    first, vol = FM.resting_fill(*UP, 100.0, 0.0, 1.0, 0.0494, True, False)
    assert first == -1.0 and vol == 0.0
    first, _ = FM.resting_fill(*UP, 100.0, 0.0, 1.0, 0.0495, True, False)  # only touched: no trade-through
    assert first == -1.0
    first, _ = FM.resting_fill(*UP, 100.0, 0.0, 1.0, 0.0495, True, True)  # --fill-on-touch
    assert first == pytest.approx(1 / 3)


def test_a_sell_reached_after_ttl_does_not_fill():
    level = 0.0509  # the up bar passes it on its way from the low (1/3) to the high (2/3)
    crossed_at = 1 / 3 + (0.0509 - 0.0495) / (0.051 - 0.0495) / 3
    first, _ = FM.resting_fill(*UP, 100.0, 0.0, 0.7, level, False, False)
    assert first == pytest.approx(crossed_at)
    first, _ = FM.resting_fill(*UP, 100.0, 0.0, 0.6, level, False, False)
    assert crossed_at > 0.6 and first == -1.0


def test_the_volume_rule_counts_the_volume_traded_through_the_price():
    # the buy at 0.0498 is traded through from f=0.133 to the low at 1/3 and back up to 0.0498 at ~0.4
    first, vol = FM.resting_fill(*UP, 300.0, 0.0, 1.0, 0.0498, True, False)
    k = (0.0498 - 0.0495) / (0.051 - 0.0495) / 3  # time after 1/3 until the path is back at the level
    assert first == pytest.approx(0.4 / 3) and vol == pytest.approx(300.0 * (1 / 3 - 0.4 / 3 + k))


def test_book_is_the_path_price_on_the_tick_grid_a_tick_apart():
    assert FM.touch_ticks(0.05, 0.0, TICK) == (5000.0, 5001.0)  # on the grid: bid there, ask a tick up
    assert FM.touch_ticks(0.050004, 0.0, TICK) == (5000.0, 5001.0)
    bid, ask = FM.touch_ticks(0.05, 20.0, TICK)  # 20 bps: -/+ 10 bps
    assert (bid, ask) == (4995.0, 5005.0)
    assert FM.market_ticks(5000.0, 5001.0, True, 0.001, TICK) == 5007.0  # ceil(0.05001 * 1.001 = 0.05006001)
    assert FM.market_ticks(5000.0, 5001.0, False, 0.001, TICK) == 4995.0


def test_post_only_fills_at_its_limit_else_the_fallback_goes_at_the_path_price_at_ttl():
    # buy at the bid (0.05) in an up bar: traded through at once
    mq, mpx, tq, tpx, first = FM.intrabar_fill(*UP, 1e9, True, 2.0, 0.1, 0.0, TICK, 0.0, True, False, False)
    assert (mq, tq) == (2.0, 0.0) and mpx == pytest.approx(0.05) and first == pytest.approx(0.0)
    # sell at the ask (0.05001) in an up bar: the path goes down first, not back above within ttl 0.1
    mq, mpx, tq, tpx, first = FM.intrabar_fill(*UP, 1e9, False, 2.0, 0.1, 0.0, TICK, 0.0, True, False, False)
    p = FM.path_price(*UP, 0.1)
    assert mq == 0.0 and first == -1.0 and tq == 2.0
    assert tpx == pytest.approx(FM.touch_ticks(p, 0.0, TICK)[0] * TICK)  # sold at the bid of the path at ttl
    mq, _, tq, _, _ = FM.intrabar_fill(*UP, 1e9, False, 2.0, 0.1, 0.0, TICK, 0.0, False, False, False)
    assert mq == 0.0 and tq == 0.0  # post-only, no fallback: cancelled
    mq, _, tq, _, _ = FM.intrabar_fill(*UP, 10.0, True, 2.0, 0.1, 0.0, TICK, 0.0, True, False, True)
    assert 0 < mq < 2.0 and mq + tq == pytest.approx(2.0)  # volume rule: the rest goes as taker


def _one_bar_sim(bar: tuple[float, float, float, float], fill_on_touch: bool = False):
    df = pd.DataFrame({"open": [bar[0], bar[0]], "high": [bar[1], bar[0]], "low": [bar[2], bar[0]],
                       "close": [bar[3], bar[0]], "volume": [1e6, 1e6]},
                      index=pd.date_range("2024-01-01", periods=2, freq="15min", tz="UTC"))
    return build_engine(df, SimConfig(balances={"BTC": "10", "ETH": "100"}, start=0, fill_on_touch=fill_on_touch,
                                      rules=SymbolRules()))


@settings(max_examples=60, deadline=None)
@given(o=st.integers(4900, 5100), up=st.integers(0, 80), down=st.integers(0, 80), move=st.integers(-60, 60),
       buy=st.booleans(), ttl=st.floats(0.01, 1.0))
def test_the_paper_exchange_fills_a_resting_order_where_the_model_says(o, up, down, move, buy, ttl):
    """The simulator's matching engine and the kernel's model agree on whether, when and at what price
    a post-only order at the touch fills within ttl (one implementation)."""
    c = min(max(o + move, o - down), o + up)
    bar = (o / 1e5, (o + up) / 1e5, (o - down) / 1e5, c / 1e5)  # the doubles a CSV gives
    eng = _one_bar_sim(bar)
    bid, ask = eng.market.bid_ask(eng.pos)
    price = bid if buy else ask
    order = eng.place(side="BUY" if buy else "SELL", order_type="LIMIT_MAKER", quantity=Decimal("1"), price=price)
    eng.advance(ttl)
    mq, mpx, _, _, first = FM.intrabar_fill(*bar, 1e6, buy, 1.0, ttl, 0.0, TICK, 0.0, False, False, False)
    assert (order.executed_qty == 1) == (mq == 1.0)
    if mq:
        assert float(order.fills[0].price) == pytest.approx(mpx, abs=1e-12)
        assert order.fills[0].is_maker
        ms = int(eng.market.series.open_ms[0] + int(first * eng.market.series.interval_ms))
        assert abs(order.fills[0].time - ms) <= 1


def test_backtest_intrabar_maker_fill_at_the_limit_with_the_maker_fee():
    """SPEC R22 v3: the post-only buy rests at the bid of the next bar's open and fills there as maker."""
    close = np.array([1.0] * 6 + [0.9, 0.9, 0.9] + [1.0] * 5)
    cfg = build_config({"trend_kind": "sma", "trend_lookback": 4, "vol_window": 3, "cooldown_minutes": 0,
                        "min_trade_btc": 0.0, "flip_band_entry": 0.05, "flip_band_exit": 0.0, "maker_fee": 0.0005,
                        "taker_fee": 0.002, "tick_size": 0.01, "ttl_sec": 60, "taker_fallback": True})
    c = candles(close)  # helpers: high = max(o, c)*1.001, low = min(o, c)*0.999: every bar dips below its open
    res = run_backtest(cfg, c)
    buy = res.trades.iloc[0]
    assert buy.side == "BUY" and buy.time == c.df.index[7] and buy.price == pytest.approx(0.9)  # bid = open
    assert buy.fee_btc == pytest.approx(buy.notional_btc * 0.0005)
    sell = res.trades[res.trades.side == "SELL"].iloc[0]
    # the sell rests at the ask 1.01, which the flat bar (high 1.001) never reaches: the fallback sells at
    # the bid of the path price at ttl (0.9998 -> 0.99), moved by 1 bp slippage onto the grid (0.98), taker fee
    o = c.df.loc[sell.time]
    p = FM.path_price(o.open, o.high, o.low, o.close, 60 / 900)
    assert p == pytest.approx(0.9998)
    assert sell.price == pytest.approx(0.98) and sell.fee_btc == pytest.approx(sell.notional_btc * 0.002)


def test_next_open_keeps_the_v2_model():
    close = np.array([1.0] * 6 + [0.9, 0.9, 0.9] + [1.0] * 5)
    base = {"trend_kind": "sma", "trend_lookback": 4, "vol_window": 3, "cooldown_minutes": 0, "min_trade_btc": 0.0,
            "flip_band_entry": 0.05, "flip_band_exit": 0.0, "slippage_bps": 10, "fill_model": "next_open"}
    res = run_backtest(build_config(base), candles(close))
    assert res.trades.price.iloc[0] == pytest.approx(0.9 * 1.001) and len(res.trades) == 2
