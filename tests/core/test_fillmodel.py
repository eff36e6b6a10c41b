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
from tests.support.helpers import candles

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
    # the bid of the path price at ttl (0.9998 -> 0.99) and below, taker fee
    o = c.df.loc[sell.time]
    p = FM.path_price(o.open, o.high, o.low, o.close, 60 / 900)
    assert p == pytest.approx(0.9998)
    assert sell.fee_btc == pytest.approx(sell.notional_btc * 0.002)
    # the depth book (default): the bid 0.99 holds q0 = max(0.02 * 1 (last bar's volume), 0.5) = 0.5 ETH,
    # the next level 0.98 holds 0.75; the ~1.11 ETH sell takes both, at their average
    q = sell.qty_eth
    assert 0.5 < q < 1.25 and sell.price == pytest.approx((0.5 * 0.99 + (q - 0.5) * 0.98) / q)
    flat = run_backtest(cfg.with_overrides({"book_depth": False}), c).trades
    assert flat[flat.side == "SELL"].price.iloc[0] == pytest.approx(0.98)  # --ideal-fills: touch - 1 bp, on the grid


def test_next_open_keeps_the_v2_model():
    close = np.array([1.0] * 6 + [0.9, 0.9, 0.9] + [1.0] * 5)
    base = {"trend_kind": "sma", "trend_lookback": 4, "vol_window": 3, "cooldown_minutes": 0, "min_trade_btc": 0.0,
            "flip_band_entry": 0.05, "flip_band_exit": 0.0, "slippage_bps": 10, "fill_model": "next_open"}
    res = run_backtest(build_config(base), candles(close))
    assert res.trades.price.iloc[0] == pytest.approx(0.9 * 1.001) and len(res.trades) == 2


# -- the partial-fill rule (issue 20: one rule for the simulator's --partial-fill and the backtest) ---------
STEP = 0.001


def test_partial_fill_rule_caps_a_share_per_bar_at_least_one_lot():
    """SPEC R22 v3: at most ``partial_fill`` of the order per bar, floored to the lot, never below one lot."""
    assert FM.resting_fill_qty(1.0, 1.0, 0.0, 0.0, 0.0, 1.0, False, STEP) == 1.0  # share 1: all at once
    assert FM.resting_fill_qty(1.0, 1.0, 0.0, 0.0, 0.0, 0.5, False, STEP) == 0.5
    assert FM.resting_fill_qty(0.5, 1.0, 0.5, 0.0, 0.5, 0.5, False, STEP) == 0.0  # this bar's half is done
    assert FM.resting_fill_qty(0.5, 1.0, 0.0, 0.0, 0.5, 0.5, False, STEP) == 0.5  # next bar: the other half
    assert FM.resting_fill_qty(0.003, 0.003, 0.0, 0.0, 0.0, 0.3, False, STEP) == STEP  # 0.0009 -> one lot
    assert FM.resting_fill_qty(0.0015, 1.0, 0.0, 0.0, 0.0, 0.5, False, STEP) == 0.0015  # never more than left


def test_volume_rule_fills_at_most_the_volume_traded_through():
    """SPEC R22 v3 volume rule: the volume traded through the price (floored to the lot) less what filled."""
    assert FM.resting_fill_qty(2.0, 2.0, 0.0, 0.7349, 0.0, 1.0, True, STEP) == 0.734
    assert FM.resting_fill_qty(1.266, 2.0, 0.734, 1.5, 0.734, 1.0, True, STEP) == pytest.approx(0.766)
    assert FM.resting_fill_qty(2.0, 2.0, 0.0, 0.0, 0.0, 1.0, True, STEP) == 0.0  # a bar of zero volume fills nothing
    assert FM.resting_fill_qty(2.0, 2.0, 0.0, 0.0, 0.0, 1.0, False, STEP) == 2.0  # ... unless the rule is off
    # a volume share that exactly fills the order: all of it (0.1 * 3 is 0.30000000000000004: on the grid)
    assert FM.resting_fill_qty(0.3, 0.3, 0.0, 0.1 * 3, 0.0, 1.0, True, STEP) == 0.3
    assert FM.resting_fill_qty(1.0, 1.0, 0.0, 5.0, 0.0, 0.5, True, STEP) == 0.5  # both caps: the smaller


def test_zero_volume_bar_gives_no_volume_and_no_maker_fill_under_the_volume_rule():
    first, vol = FM.resting_fill(*UP, 0.0, 0.0, 1.0, 0.0498, True, False)
    assert first > 0 and vol == 0.0  # traded through, but nothing traded
    mq, _, tq, _, _ = FM.intrabar_fill(*UP, 0.0, True, 2.0, 1.0, 0.0, TICK, 0.0, False, False, True, 1.0, STEP)
    assert (mq, tq) == (0.0, 0.0)


# -- the depth book and the MARKET walk (issue 20: one walk for the simulator and the backtest fallback) ----
def test_depth_book_levels_grow_from_the_last_complete_bars_volume():
    assert FM.book_top_qty(1000.0, 0.02, 0.5, STEP) == 20.0
    assert FM.book_top_qty(10.0, 0.02, 0.5, STEP) == 0.5  # at least min_top
    assert FM.book_top_qty(123.4567, 0.02, 0.5, STEP) == 2.469  # floored to the lot
    assert [FM.book_level_qty(2.0, 0.5, k, STEP) for k in range(3)] == [2.0, 3.0, 4.0]


def test_market_walk_takes_levels_from_the_touch_outwards():
    nan, none = float("nan"), np.zeros(0)
    takes = FM.book_walk(2.0, nan, True, 5001.0, TICK, 2.0, 0.5, 5, STEP, none)
    assert list(takes) == [2.0, 0, 0, 0, 0]  # exactly the touch's depth: the touch alone, not a lot more
    takes = FM.book_walk(5.0, nan, True, 5001.0, TICK, 2.0, 0.5, 5, STEP, none)
    assert list(takes) == [2.0, 3.0, 0, 0, 0]  # exactly two levels' depth: nothing from the third
    takes = FM.book_walk(5.001, nan, False, 5000.0, TICK, 2.0, 0.5, 5, STEP, none)
    assert list(takes) == pytest.approx([2.0, 3.0, 0.001, 0, 0])  # one lot past the boundary: the next level
    takes = FM.book_walk(100.0, nan, True, 5001.0, TICK, 2.0, 0.5, 3, STEP, none)
    assert takes.sum() == 2.0 + 3.0 + 4.0  # the book ran out: the rest is not filled
    takes = FM.book_walk(3.0, nan, True, 5001.0, TICK, 2.0, 0.5, 3, STEP, np.array([1.5, 0.0]))
    assert list(takes) == [0.5, 2.5, 0.0]  # what a taker removed earlier in the bar is gone
    takes = FM.book_walk(100.0, nan, False, 2.0, TICK, 2.0, 0.5, 5, STEP, none)
    assert list(takes) == [2.0, 3.0, 0, 0, 0]  # bids stop above price 0
    takes = FM.book_walk(nan, 2.0 * 0.05001 + 1e-9, True, 5001.0, TICK, 2.0, 0.5, 5, STEP, none)
    assert list(takes) == [2.0, 0, 0, 0, 0]  # quote to spend: the touch's cost, not enough for a lot more


def test_taker_fill_walks_the_book_of_the_path_price_at_ttl_without_look_ahead():
    """The fallback's book: the touch of the path price at ttl; its depth from the bar before (v_prev),
    not the bar being filled; no slippage on top (the book is the slippage)."""
    p = FM.path_price(*UP, 0.1)
    _, ask = FM.touch_ticks(p, 0.0, TICK)
    got, avg = FM.taker_fill(*UP, 100.0, 0.1, True, 5.0, 0.0, TICK, 0.01, True, 0.02, 0.5, 0.5, 100, STEP)
    assert got == 5.0 and avg == pytest.approx((2.0 * ask + 3.0 * (ask + 1)) * TICK / 5.0)  # q0 = 2% of 100
    got, flat = FM.taker_fill(*UP, 100.0, 0.1, True, 5.0, 0.0, TICK, 0.01, False, 0.02, 0.5, 0.5, 100, STEP)
    assert flat == FM.tick_price(FM.market_ticks(ask - 1, ask, True, 0.01, TICK), TICK)  # --ideal-fills
    # the bar's own volume does not size the book: a 5-ETH bar before makes the touch min_top deep
    _, avg_thin = FM.taker_fill(*UP, 5.0, 0.1, True, 5.0, 0.0, TICK, 0.0, True, 0.02, 0.5, 0.5, 100, STEP)
    assert avg_thin > avg


def test_paper_exchange_market_order_fills_as_the_model_walks():
    """SPEC R22 v3 (issue 20): the simulator's MARKET order takes exactly the levels and quantities of
    ethbtc.fillmodel.book_walk (the backtest fallback's walk), at the prices the model gives."""
    df = pd.DataFrame({"open": [0.05, 0.05], "high": [0.0502, 0.0502], "low": [0.0499, 0.0499],
                       "close": [0.0501, 0.0501], "volume": [150.0, 80.0]},
                      index=pd.date_range("2024-01-01", periods=2, freq="15min", tz="UTC"))
    eng = build_engine(df, SimConfig(balances={"BTC": "10", "ETH": "100"}, start=1, rules=SymbolRules()))
    for buy, qty in ((True, "9.5"), (False, "3"), (True, "1")):
        bid, ask = eng.market.bid_ask(eng.pos)
        touch = ask if buy else bid
        order = eng.place(side="BUY" if buy else "SELL", order_type="MARKET", quantity=Decimal(qty))
        # 2% of the last complete bar (150) = 3 ETH at the touch; a second buy meets what the first left
        taken = np.zeros(0) if qty != "1" else np.array([3.0, 4.5, 2.0])
        want = FM.book_walk(float(qty), float("nan"), buy, float(touch / Decimal("0.00001")), TICK, 3.0, 0.5,
                            100, 0.0001, taken)
        got = [(float(f.price), float(f.qty)) for f in order.fills]
        model = [(FM.tick_price(float(touch / Decimal("0.00001")) + (k if buy else -k), TICK), float(q))
                 for k, q in enumerate(want) if q > 0]
        assert got == model
    assert [float(f.qty) for f in eng.fills[:3]] == [3.0, 4.5, 2.0]  # 9.5 ETH: the touch and two levels


def test_backtest_partial_fill_share_and_depth_book_keys():
    """SPEC R22 v3: config partial_fill 0.5 fills half the post-only order as maker, the rest goes MARKET."""
    close = np.array([1.0] * 6 + [0.9, 0.9, 0.9] + [1.0] * 5)
    base = {"trend_kind": "sma", "trend_lookback": 4, "vol_window": 3, "cooldown_minutes": 0, "min_trade_btc": 0.0,
            "flip_band_entry": 0.05, "flip_band_exit": 0.0, "tick_size": 0.01, "ttl_sec": 60, "taker_fallback": True}
    c = candles(close)
    whole = run_backtest(build_config(base), c).trades
    half = run_backtest(build_config(base | {"partial_fill": 0.5, "step_size": 0.001}), c).trades
    buys = half[half.side == "BUY"]
    q = whole[whole.side == "BUY"].qty_eth.iloc[0]
    assert len(buys) == 2 and buys.qty_eth.iloc[0] == pytest.approx(int(q * 500) / 1000)  # maker: half, on the lot
    # the taker fallback buys the rest up the book (from the ask at ttl, 0.90, and beyond), as much as the BTC
    # left pays (R22 cap)
    assert buys.price.iloc[1] > 0.90 and buys.qty_eth.iloc[1] <= q - buys.qty_eth.iloc[0]
    assert buys.notional_btc.sum() == pytest.approx(1.0)


def test_simulator_flags_map_onto_the_backtest_fill_keys(tmp_path):
    """Issue 20: --partial-fill, --volume-fills and the --book-* flags set the simulator's side of the one
    rule, as the config keys set the backtest's (sim_fill_options maps a config onto them)."""
    from ethbtc.live.replay import sim_fill_options
    from ethbtc.sim.__main__ import build_parser, config_from_args

    data = tmp_path / "c.csv"
    candles(np.ones(5)).df.reset_index().to_csv(data, index=False)
    parse = build_parser().parse_args
    default = config_from_args(parse(["--data", str(data)]))
    assert default.volume_fills is None and not default.ideal_fills and default.partial_fill == 1.0
    sim = config_from_args(parse(["--data", str(data), "--partial-fill", "0.5", "--volume-fills", "on",
                                  "--book-min-top-qty", "2", "--book-top-share", "0.01"]))
    assert (sim.partial_fill, sim.volume_fills, sim.book.min_top_qty, sim.book.top_share) == (0.5, True, 2, 0.01)
    cfg = build_config({"partial_fill": 0.5, "volume_fills": True, "book_min_top_qty": 2.0, "book_top_share": 0.01})
    opts = sim_fill_options(cfg)
    assert (opts["partial_fill"], opts["volume_fills"], opts["book"].min_top_qty, opts["book"].top_share,
            opts["ideal_fills"]) == (0.5, True, 2, 0.01, False)
    assert sim_fill_options(build_config({"book_depth": False}))["ideal_fills"]  # --ideal-fills
    # the engine's default volume rule: on with the depth book, off with ideal fills, unless set
    df = candles(np.ones(3)).df
    assert build_engine(df, SimConfig(start=0)).volume_fills
    assert not build_engine(df, SimConfig(start=0, ideal_fills=True)).volume_fills
    assert build_engine(df, SimConfig(start=0, ideal_fills=True, volume_fills=True)).volume_fills
