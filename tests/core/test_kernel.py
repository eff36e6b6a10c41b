"""SPEC R11-R26: the compiled decision step, one rule at a time."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ethbtc import kernel as K
from ethbtc.config import build_config
from ethbtc.strategy import EthBtcStrategy

MIN = 60_000.0


def prm(**kw):
    base = {"min_trade_btc": 0.0}
    return EthBtcStrategy(build_config(base | kw), 15).params_array()


def step(state, p, *, t=0, price=1.0, ratio=0.0, entry=0.03, exit_=0.01, gate=True, mult=1.0, btc=1.0, eth=0.0,
         extra=0.0, day=0.0):
    r = K.decide(state, p, t * 15 * MIN, day, price, ratio, entry, exit_, gate, mult, btc, eth, extra)
    return dict(zip(("reason", "target", "desired", "w_cur", "delta", "flipped", "forced"), r, strict=True)) | {
        "reason_name": K.REASONS[r[0]]}


def test_r11_r12_entry_flip_and_r16_target():
    s, p = K.new_state(), prm(max_position=0.8)
    out = step(s, p, ratio=-0.02)
    assert out["reason_name"] == "hold" and s[K.S_SIGNAL] == 0  # not cheap enough
    out = step(s, p, t=1, ratio=-0.031, mult=1.2)
    assert out["flipped"] and s[K.S_SIGNAL] == 1
    assert out["target"] == 0.8  # clip(1 * 1.2, 0, max_position)
    assert out["reason_name"] == "trade" and out["delta"] == pytest.approx(0.8)


def test_r13_exit_and_gate_never_blocks_exit():
    s, p = K.new_state(), prm(cooldown_minutes=0)
    step(s, p, ratio=-0.05)
    out = step(s, p, t=1, ratio=-0.02, gate=False, btc=0.0, eth=1.0)
    assert s[K.S_SIGNAL] == 1 and out["reason_name"] == "hold"  # -0.02 < -exit: still cheap
    out = step(s, p, t=2, ratio=-0.005, gate=False, btc=0.0, eth=1.0)
    assert out["flipped"] and s[K.S_SIGNAL] == 0 and out["delta"] == pytest.approx(-1.0)


def test_r12_gate_blocks_entry_with_reason():
    s, p = K.new_state(), prm()
    out = step(s, p, ratio=-0.05, gate=False)
    assert out["reason_name"] == "gate" and s[K.S_SIGNAL] == 0


def test_r14_cooldown_counts_wall_clock_between_flip_closes():
    s, p = K.new_state(), prm(cooldown_minutes=60)
    step(s, p, t=0, ratio=-0.05)  # first flip always allowed
    out = step(s, p, t=3, ratio=0.0, btc=0.0, eth=1.0)  # 45 minutes later
    assert out["reason_name"] == "cooldown" and s[K.S_SIGNAL] == 1
    out = step(s, p, t=4, ratio=0.0, btc=0.0, eth=1.0)  # 60 minutes: allowed
    assert out["flipped"] and s[K.S_LAST_FLIP_MS] == 4 * 15 * MIN


def test_r15_undefined_inputs_never_flip_and_report_warmup():
    s, p = K.new_state(), prm()
    for kw in ({"ratio": math.nan}, {"entry": math.nan, "ratio": -1.0}, {"exit_": math.nan, "ratio": -1.0}):
        out = step(s, p, **kw)
        assert out["reason_name"] == "warmup" and not out["flipped"] and s[K.S_SIGNAL] == 0


def test_r19_step_and_snap():
    s, p = K.new_state(), prm(step_allocation=0.5, rebalance_threshold_w=0.1)
    out = step(s, p, ratio=-0.05)
    assert out["desired"] == pytest.approx(0.5)
    out = step(s, p, t=1, ratio=-0.05, btc=0.5, eth=0.5)
    assert out["desired"] == pytest.approx(0.75)
    out = step(s, p, t=2, ratio=-0.05, btc=0.25 - 0.09, eth=0.75 + 0.09)
    # w_cur = 0.84: desired 0.92 is within 0.1 of the target -> snap to 1.0
    assert out["desired"] == pytest.approx(1.0)


def test_r20_dead_band_and_r21_min_trade():
    s, p = K.new_state(), prm(rebalance_threshold_w=0.05, target_vol=0.5)
    s[K.S_SIGNAL] = 1
    out = step(s, p, ratio=-0.05, mult=0.52, btc=0.5, eth=0.5)  # target 0.52, w 0.5
    assert out["reason_name"] == "threshold" and out["delta"] == 0
    s2, p2 = K.new_state(), prm(min_trade_btc=0.5)
    out = step(s2, p2, ratio=-0.05, btc=0.3)  # wants 0.3 BTC of ETH < 0.5 minimum
    assert out["reason_name"] == "min_trade" and out["delta"] == 0
    assert s2[K.S_SIGNAL] == 1  # R26: the signal advances whatever the execution outcome


def test_r24_drawdown_breaker_latches_and_exits_in_one_move():
    s, p = K.new_state(), prm(max_dd_frac=0.2, step_allocation=0.25)
    step(s, p, ratio=-0.05)
    s[K.S_SIGNAL] = 1
    out = step(s, p, t=1, ratio=-0.05, price=1.0, btc=0.0, eth=1.0)  # peak 1.0
    out = step(s, p, t=2, ratio=-0.05, price=0.79, btc=0.0, eth=1.0)  # -21%
    assert s[K.S_MAXDD_HIT] == 1 and out["forced"] and out["reason_name"] == "trade"
    assert out["desired"] == 0 and out["delta"] == pytest.approx(-1.0)  # no stepping
    out = step(s, p, t=3, ratio=-0.10, price=0.9, btc=0.79, eth=0.0)
    assert out["reason_name"] == "risk_maxdd" and out["delta"] == 0 and out["target"] == 0


def test_r24_fixed_basis_mode():
    s, p = K.new_state(), prm(max_dd_frac=0.1, risk_mode="fixed_basis", basis_btc=2.0)
    step(s, p, btc=3.0)
    step(s, p, t=1, btc=2.81)  # down 0.19 < 0.1 * basis = 0.2
    assert s[K.S_MAXDD_HIT] == 0
    step(s, p, t=2, btc=2.8)
    assert s[K.S_MAXDD_HIT] == 1


def test_r25_daily_pause_until_next_utc_day():
    s, p = K.new_state(), prm(max_daily_loss_frac=0.05)
    s[K.S_SIGNAL] = 1
    step(s, p, ratio=-0.05, btc=0.0, eth=1.0, day=100.0)
    out = step(s, p, t=1, ratio=0.0, price=0.94, btc=0.0, eth=1.0, day=100.0)
    assert out["reason_name"] == "risk_daily" and out["delta"] == 0 and s[K.S_SIGNAL] == 0
    out = step(s, p, t=2, ratio=0.0, price=0.94, btc=0.0, eth=1.0, day=101.0)
    assert out["reason_name"] == "trade" and s[K.S_DAY_START] == pytest.approx(0.94)


def test_r26_priority_cooldown_before_gate_and_risk_first():
    s, p = K.new_state(), prm(cooldown_minutes=600, max_daily_loss_frac=0.01)
    step(s, p, ratio=-0.05)
    step(s, p, t=1, ratio=0.0, btc=0.0, eth=1.0)  # exit blocked by cooldown
    s[K.S_SIGNAL] = 0
    out = step(s, p, t=2, ratio=-0.05, gate=False, btc=1.0)
    assert out["reason_name"] == "cooldown"
    out = step(s, p, t=3, ratio=-0.05, gate=False, btc=0.5)  # loss -> pause beats everything
    assert out["reason_name"] == "risk_daily"


def test_r18_bnb_wallet_not_in_weight_but_in_risk_wealth():
    s, p = K.new_state(), prm()
    out = step(s, p, btc=0.5, eth=0.5, extra=10.0)
    assert out["w_cur"] == pytest.approx(0.5) and s[K.S_PEAK] == pytest.approx(11.0)


def test_r19_v2_no_stuck_zone_the_reported_case_trades_out_in_one_move():
    """SPEC R19 (v2): prod_live's step 0.33 / threshold 0.03 held 8.7 % ETH at target 0 forever in v1
    (stepped to 0.058, a move inside the dead band); now the step snaps to the target."""
    s, p = K.new_state(), prm(step_allocation=0.33, rebalance_threshold_w=0.03)
    out = step(s, p, ratio=0.0, btc=0.913, eth=0.087)  # signal BTC, target 0
    assert out["target"] == 0 and out["w_cur"] == pytest.approx(0.087)
    assert out["reason_name"] == "trade" and out["desired"] == 0 and out["delta"] == pytest.approx(-0.087)


def test_r19_v2_snaps_when_the_distance_left_is_inside_the_band():
    s, p = K.new_state(), prm(step_allocation=0.9, rebalance_threshold_w=0.05)
    out = step(s, p, ratio=-0.05)  # 0 -> 1: stepped 0.9 leaves 0.1 >= 0.05: a plain step
    assert out["desired"] == pytest.approx(0.9)
    out = step(s, p, t=1, ratio=-0.05, btc=0.3, eth=0.7)  # gap 0.3: the step would leave 0.03 < band -> snap
    assert out["desired"] == 1.0 and out["reason_name"] == "trade" and out["delta"] == pytest.approx(0.3)


@settings(max_examples=400, deadline=None)
@given(step_=st.floats(0.01, 1.0), thresh=st.floats(0.0, 0.5), w=st.floats(0.0, 1.0), target=st.floats(0.0, 1.0))
def test_r19_r20_a_gap_at_least_the_band_always_trades_and_the_target_is_reached(step_, thresh, w, target):
    """SPEC R19-R20 (v2): with no other blocker (risk, warm-up, cooldown, minimum trade), a bar whose
    |w* - w_cur| >= rebalance_threshold_w trades, never overshoots, and a stepped approach reaches the
    target exactly in whole moves."""
    assume(abs(target - w) > K.EPS_W and abs(target - w) >= thresh)
    p = prm(step_allocation=step_, rebalance_threshold_w=thresh, max_position=1.0, target_vol=0.5,
            min_mult=0.0, max_mult=1.0)
    s = K.new_state()
    s[K.S_SIGNAL] = 1.0  # ETH, ratio below -exit: no flip, target = mult
    out = step(s, p, ratio=-0.05, mult=target, btc=1.0 - w, eth=w)
    assert out["reason_name"] == "trade"
    assert min(w, target) - 1e-12 <= out["desired"] <= max(w, target) + 1e-12
    if thresh >= 1e-3:
        for i in range(1, 2000):
            if out["desired"] == target:
                break
            cur = out["desired"]
            out = step(s, p, t=i, ratio=-0.05, mult=target, btc=1.0 - cur, eth=cur)
            assert out["reason_name"] in ("trade", "hold", "threshold")
        assert out["desired"] == target
