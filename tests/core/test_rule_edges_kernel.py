"""The kernel's use of the intrabar fill model's switches (issue 22, survivors of ``make
mutation`` over ``ethbtc/kernel.py``): ``fill_on_touch`` and ``volume_fills`` reach the
backtest's resting-order rule (SPEC R22 v3). Candles are built so that each switch alone decides
whether, or how much, the post-only buy fills; no taker fallback, so an unfilled rest stays
unfilled.
"""

from __future__ import annotations

import numpy as np
import pytest

from ethbtc.backtest import run_backtest
from ethbtc.config import build_config
from tests.support.helpers import candles

CLOSE = np.array([1.0] * 6 + [0.9, 0.9, 0.9] + [1.0] * 5)  # the buy is decided at bar 6, rests in bar 7
BASE = {"trend_kind": "sma", "trend_lookback": 4, "vol_window": 3, "cooldown_minutes": 0, "min_trade_btc": 0.0,
        "flip_band_entry": 0.05, "flip_band_exit": 0.0, "maker_fee": 0.0005, "taker_fee": 0.002,
        "tick_size": 0.01, "ttl_sec": 900, "taker_fallback": False, "fill_model": "intrabar"}


def _touch_only() -> object:
    """Bar 7 opens at 0.9 (the buy rests at the bid 0.90) and its low is exactly 0.90: the path
    touches the order's price but never trades through it."""
    c = candles(CLOSE)
    t7 = c.df.index[7]
    c.df.loc[t7, ["open", "low", "high", "close"]] = [0.9, 0.9, 0.95, 0.9]
    return c


@pytest.mark.parametrize("touch", [False, True])
def test_r22_a_resting_buy_fills_on_a_touch_only_with_fill_on_touch(touch: bool) -> None:
    """SPEC R22 v3 (paper exchange --fill-on-touch): a buy at 0.90 fills when the path only
    touches 0.90 with fill_on_touch, and not without (post-only, no fallback: nothing)."""
    res = run_backtest(build_config(BASE | {"fill_on_touch": touch}), _touch_only())  # type: ignore[arg-type]
    c7 = res.trades[res.trades.time == res.bars.index[7]]
    if touch:
        assert len(c7) == 1 and c7.side.iloc[0] == "BUY" and c7.price.iloc[0] == pytest.approx(0.9)
    else:
        assert c7.empty


@pytest.mark.parametrize("cap", [False, True])
def test_r22_volume_fills_caps_the_maker_fill_at_the_volume_traded_through(cap: bool) -> None:
    """SPEC R22 v3 (the volume rule): with volume_fills, a resting order fills at most the bar
    volume traded through its price; bar 7 trades 0.001 ETH in all, far less than the order."""
    c = candles(CLOSE)
    c.df.loc[c.df.index[7], "volume"] = 0.001
    res = run_backtest(build_config(BASE | {"volume_fills": cap}), c)
    buy = res.trades[res.trades.time == c.df.index[7]]
    assert len(buy) == 1 and buy.side.iloc[0] == "BUY"
    if cap:
        assert 0 < buy.qty_eth.iloc[0] <= 0.001
    else:
        assert buy.qty_eth.iloc[0] > 0.5  # the whole step of a 1 BTC account


def test_r19_no_snap_when_the_stepped_move_equals_the_dead_band() -> None:
    """SPEC R19 (v2): snap to the target when the stepped move is SMALLER than the dead band. A
    0.25 step (half of a 0.5 gap) with a 0.25 band is exactly on the band: no snap, the step is
    taken (and trades, R20: not smaller than the band); a hair wider band snaps to the target."""
    from ethbtc import kernel as K
    from ethbtc.strategy import EthBtcStrategy

    for thresh, want in ((0.25, 0.25), (0.25 + 1e-9, 0.5)):
        p = EthBtcStrategy(build_config({"min_trade_btc": 0.0, "step_allocation": 0.5, "max_position": 0.5,
                                         "rebalance_threshold_w": thresh}), 15).params_array()
        s = K.new_state()
        s[K.S_SIGNAL] = 1.0
        reason, target, desired, w_cur, delta, *_ = K.decide(s, p, 900_000.0, 0.0, 0.0625, -0.05, 0.03, 0.02, True,
                                                             1.0, 1.0, 0.0, 0.0)
        assert (target, w_cur, desired) == (0.5, 0.0, want) and K.REASONS[reason] == "trade", thresh
        assert delta == want * 1.0 / 0.0625
