"""The edges of the rules (issue 22): exact equality on the price grid, the UTC day of the 23:45
bar, exact ties in CSCV. Each test pins which side of a boundary the SPEC puts a case on, so a
``<`` that became ``<=`` (or the reverse) fails here. Prices are on Binance's tick grid and the
equalities are checked to hold bit for bit before the rule is tested, so a test cannot quietly
lose its edge to float rounding.

Only decisions are asserted (signal, reason, breaker flags), never fill prices or fees: these
rules are the same in SPEC v1, v2 and v3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethbtc import kernel as K
from ethbtc.config import build_config
from ethbtc.indicators import MS_PER_DAY
from ethbtc.research import overfit as O
from ethbtc.strategy import EthBtcStrategy, KernelInputs
from tests.support.helpers import frame

# On the 1e-6 tick grid (ETHBTC 2020) and the 1e-5 grid (today): 0.0465 / 0.048 - 1 == -1/32 exactly.
BASE, CHEAP, ENTRY = 0.048, 0.0465, 0.03125
# 16 ETH at 0.0625 = 1 BTC; at 0.046875 = 0.75 BTC: a loss of exactly 25 %, all values exact in binary.
PEAK_PX, DROP_PX, LIMIT = 0.0625, 0.046875, 0.25
ETH_HELD = 16.0

# Long trend lookback: every bar is warm-up, so nothing trades and the holdings stay as given
# (SPEC R15), while the risk rules (R24, R25) still mark wealth on every bar.
NO_SIGNAL = {"trend_kind": "roc", "trend_lookback": 500, "vol_window": 2, "gate_window_days": 0,
             "min_trade_btc": 0.0, "max_dd_frac": 0.0, "max_daily_loss_frac": 0.0}


def strategy(**kw: object) -> EthBtcStrategy:
    return EthBtcStrategy(build_config(kw), 15)


def reasons(run: object) -> list[str]:
    return [K.REASONS[i] for i in run.out_i[:, 0]]  # type: ignore[attr-defined]


# --- R12 / R13: strict band comparisons ------------------------------------------------------

def test_r12_ratio_exactly_at_minus_entry_does_not_enter_one_tick_below_does():
    """SPEC R12: entry needs r_t < -entry_t, strictly. Closes on the tick grid with r_t == -entry
    exactly: no flip on that bar; one tick lower, the flip."""
    closes = [BASE] * 5 + [CHEAP, 0.046499, 0.046499]
    s = strategy(trend_kind="roc", trend_lookback=4, flip_band_entry=ENTRY, flip_band_exit=0.0, vol_adapt_k=0.0,
                 vol_window=2, cooldown_minutes=0, gate_window_days=0, min_trade_btc=0.0)
    run = s.run(frame(closes))
    assert run.ind.ratio[5] == -run.ind.entry[5] == -ENTRY  # the edge is exact, not approximate
    assert run.ind.ratio[6] < -ENTRY
    signal = list(run.out_i[:, 1])
    assert signal[5] == 0 and reasons(run)[5] != "trade"
    assert signal[6] == 1 and reasons(run)[6] == "trade"
    assert run.tr_i[0, K.TI_DECISION_BAR] == 6 and K.TRADE_REASONS[run.tr_i[0, K.TI_REASON]] == "signal"


def test_r12_r13_decide_on_the_band_edges():
    """SPEC R12/R13 straight at the decision step: r == -entry does not enter, r == -exit does
    not exit (both comparisons are strict)."""
    p = strategy(min_trade_btc=0.0, cooldown_minutes=0).params_array()
    s = K.new_state()
    K.decide(s, p, 900_000.0, 0.0, 1.0, -0.03, 0.03, 0.01, True, 1.0, 1.0, 0.0, 0.0)
    assert s[K.S_SIGNAL] == 0.0
    K.decide(s, p, 1_800_000.0, 0.0, 1.0, -0.0300001, 0.03, 0.01, True, 1.0, 1.0, 0.0, 0.0)
    assert s[K.S_SIGNAL] == 1.0
    K.decide(s, p, 2_700_000.0, 0.0, 1.0, -0.01, 0.03, 0.01, True, 1.0, 0.0, 1.0, 0.0)
    assert s[K.S_SIGNAL] == 1.0  # r == -exit: not yet reverted
    K.decide(s, p, 3_600_000.0, 0.0, 1.0, -0.0099999, 0.03, 0.01, True, 1.0, 0.0, 1.0, 0.0)
    assert s[K.S_SIGNAL] == 0.0


# --- R24 / R25: the limits trip at equality ---------------------------------------------------

def _drop_run(drop_px: float, **risk: object) -> tuple[object, int]:
    """16 ETH held through a price fall at noon; returns the run and the index of the drop bar."""
    closes = [PEAK_PX] * 8 + [drop_px] * 4
    df = frame(closes, start="2024-03-05 10:00")
    run = strategy(**(NO_SIGNAL | risk)).run(df, btc=0.0, eth=ETH_HELD)
    return run, 8


# fixed_basis on a 2 BTC basis: the same 0.25 BTC loss is 0.125 of the basis (exact in binary)
MODES = [("dynamic", LIMIT, 1.0), ("fixed_basis", LIMIT / 2, 2.0)]


@pytest.mark.parametrize(("mode", "frac", "basis"), MODES)
def test_r24_drawdown_exactly_at_the_limit_trips_the_breaker(mode: str, frac: float, basis: float):
    """SPEC R24: trips when 1 - W/peak >= max_dd_frac (dynamic) or peak - W >= frac * basis
    (fixed_basis): at equality it trips, one tick above the low it does not."""
    assert 1.0 - ETH_HELD * DROP_PX / (ETH_HELD * PEAK_PX) == LIMIT == frac * basis / (ETH_HELD * PEAK_PX)
    run, t = _drop_run(DROP_PX, risk_mode=mode, max_dd_frac=frac, basis_btc=basis)
    assert run.state[K.S_MAXDD_HIT] == 1.0  # type: ignore[attr-defined]
    assert reasons(run)[:t] == ["warmup"] * t and reasons(run)[t] == "trade"
    out = run.out_f  # type: ignore[attr-defined]
    assert out[t, K.O_TARGET] == 0.0 and out[t, K.O_DESIRED] == 0.0  # flat in one move (the fill is R22's)
    run, _ = _drop_run(DROP_PX + 1e-6, risk_mode=mode, max_dd_frac=frac, basis_btc=basis)
    assert run.state[K.S_MAXDD_HIT] == 0.0 and "trade" not in reasons(run)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mode", "frac", "basis"), MODES)
def test_r25_daily_loss_exactly_at_the_floor_pauses(mode: str, frac: float, basis: float):
    """SPEC R25: paused when W_t <= day_start * (1 - frac) (dynamic) or <= day_start - frac * basis
    (fixed_basis): at equality the pause starts; one tick above the floor it does not."""
    run, t = _drop_run(DROP_PX, risk_mode=mode, max_daily_loss_frac=frac, basis_btc=basis)
    assert reasons(run)[t:] == ["risk_daily"] * 4
    assert run.state[K.S_DAILY_PAUSED] == 1.0  # type: ignore[attr-defined]
    run, _ = _drop_run(DROP_PX + 1e-6, risk_mode=mode, max_daily_loss_frac=frac, basis_btc=basis)
    assert "risk_daily" not in reasons(run)


def test_r24_r25_decide_at_equality():
    """The same equalities straight at the decision step (no pipeline in between)."""
    for slot, risk in ((K.S_MAXDD_HIT, {"max_dd_frac": LIMIT}), (K.S_DAILY_PAUSED, {"max_daily_loss_frac": LIMIT})):
        p = strategy(min_trade_btc=0.0, **risk).params_array()
        s = K.new_state()
        K.decide(s, p, 900_000.0, 0.0, PEAK_PX, np.nan, 0.03, 0.01, True, 1.0, 0.0, ETH_HELD, 0.0)
        assert s[slot] == 0.0
        K.decide(s, p, 1_800_000.0, 0.0, DROP_PX, np.nan, 0.03, 0.01, True, 1.0, 0.0, ETH_HELD, 0.0)
        assert s[slot] == 1.0, risk


# --- R9 / R25: the UTC day of a bar is the day of its OPEN time ---------------------------------

def _midnight_frame() -> pd.DataFrame:
    """Three days of 15m bars. On each day every bar closes at P_d except the 23:45 bar, which
    closes at Q_d: the daily close D_d (last bar opened on day d) is Q_d, never P_d."""
    p = {0: 0.0500, 1: 0.0500, 2: 0.0500}
    q = {0: 0.0400, 1: 0.0500, 2: 0.0625}
    closes = []
    for d in range(3):
        closes += [p[d]] * 95 + [q[d]]
    closes += [0.0625] * 4  # day 3: 00:00 .. 00:45
    return frame(closes, start="2024-01-01")


def test_r9_r25_the_2345_bar_belongs_to_the_day_it_opens_on():
    """SPEC R9/R25 "the UTC day of its open_time": the 23:45 bar (which closes at 00:00 of the next
    day) counts in its own day for the daily close, the gate and the daily-loss start."""
    df = _midnight_frame()
    bar_2345 = 3 * 96 - 1  # 2024-01-03 23:45
    assert df.index[bar_2345] == pd.Timestamp("2024-01-03 23:45", tz="UTC")
    day = KernelInputs.of(df, 15).day
    first = pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000 // MS_PER_DAY
    assert day[bar_2345] == first + 2 and day[bar_2345 + 1] == first + 3

    # R9 gate, W = 1 day: a bar of day d uses D_{d-1} / D_{d-2} - 1, D being the 23:45 closes.
    s = strategy(**(NO_SIGNAL | {"gate_window_days": 1, "gate_roc_threshold": 0.2}))
    ind = s.indicators(df)
    assert ind.gate[bar_2345] == pytest.approx(0.05 / 0.04 - 1)  # day 2 gate: D_1 / D_0 = 0.05 / 0.04
    assert ind.gate_open[bar_2345]  # |0.25| >= 0.2 (with D_d taken at 23:30 it would be 0 and closed)
    assert ind.gate[bar_2345 + 1] == pytest.approx(0.0625 / 0.05 - 1)  # day 3: D_2 is the 23:45 close

    # R25 daily start: the fall at the 23:45 bar of day 0 (0.05 -> 0.04, 20 %) is a loss of ITS
    # day, so the pause starts there; the 00:00 bar opens day 1 with a fresh start and no pause.
    s = strategy(**(NO_SIGNAL | {"max_daily_loss_frac": 0.15}))
    run = s.run(df, btc=0.0, eth=20.0)
    r = reasons(run)
    assert r[93:98] == ["warmup", "warmup", "risk_daily", "warmup", "warmup"]  # 23:15 .. 00:15
    assert run.out_f[95, K.O_WEALTH] == pytest.approx(0.8)  # type: ignore[attr-defined]
    assert "risk_daily" not in r[96:]  # day 2's 23:45 is a gain


def test_r25_live_step_takes_the_day_from_the_open_time():
    """The live path (EthBtcStrategy.step, SPEC R30) on the same bars: the 23:45 bar of day 0 is
    paused (loss of its own day), the next bar starts day 1 unpaused."""
    df = _midnight_frame().iloc[:100]
    s = strategy(**(NO_SIGNAL | {"max_daily_loss_frac": 0.15}))
    state = s.new_state()
    got = [s.step(state, df.iloc[: i + 1], 0.0, 20.0).reason for i in range(94, 97)]
    assert got == ["warmup", "risk_daily", "warmup"]  # 23:30, 23:45 (day 0), 00:00 (day 1)


# --- CSCV: a tie at the median counts as overfit -------------------------------------------------

def test_cscv_exact_ties_count_as_overfit():
    """CSCV (Bailey et al.): PBO is the share of splits with logit <= 0. Flat wealth paths (a
    configuration that never trades) tie exactly: relative rank 1/2, logit 0, counted."""
    flat = np.zeros((64, 2))
    res = O.cscv_pbo(flat, n_splits=4)
    assert (res.logits == 0.0).all() and res.pbo == 1.0 and res.median_logit == 0.0
    assert res.prob_oos_loss == 0.0  # a Sharpe of 0 is not a loss
    assert O.cscv_pbo(np.zeros((8, 2)), n_splits=4).pbo == 1.0  # 2 * S periods are enough


def test_cscv_a_tie_at_the_median_among_distinct_candidates_counts_as_overfit():
    """CSCV with four distinct candidates and two blocks: in each split the in-sample winner ties
    out of sample with one candidate, one is above and one below -- rank 2.5 of 4, w = 1/2,
    logit exactly 0 -- so both splits count and PBO is 1 (with ``logit < 0`` it would be 0)."""
    block = 16
    noise = np.random.default_rng(5).normal(0, 1e-3, block)
    up, flat, down = noise + 2e-3, noise, noise - 2e-3
    first = np.column_stack([up, flat, flat, down])  # candidate 0 wins block 0 ...
    second = np.column_stack([flat, flat, up, down])  # ... and ties candidate 1 in block 1 (2 above, 3 below)
    res = O.cscv_pbo(np.vstack([first, second]), n_splits=2)
    assert res.n_combinations == 2
    assert list(res.logits) == [0.0, 0.0] and res.pbo == 1.0


# --- survivors of the mutation run (make mutation), killed ------------------------------------

def test_r21_a_trade_exactly_at_the_minimum_trades():
    """SPEC R21: no trade only when notional < the minimum; at equality it trades. A quarter step
    from 1 BTC at 0.0625 is 4 ETH, 0.25 BTC notional, exact in binary (dead band 0: no snap)."""
    for minimum, expected in ((0.25, "trade"), (0.25 + 1e-9, "min_trade")):
        p = strategy(min_trade_btc=minimum, step_allocation=0.25, rebalance_threshold_w=0.0).params_array()
        s = K.new_state()
        s[K.S_SIGNAL] = 1.0
        reason, _, desired, _, delta, _, _ = K.decide(s, p, 900_000.0, 0.0, PEAK_PX, -0.05, 0.03, 0.02, True, 1.0,
                                                      1.0, 0.0, 0.0)
        assert desired == 0.25 and K.REASONS[reason] == expected, minimum
        assert abs(delta) * PEAK_PX == (0.25 if expected == "trade" else 0.0)


def test_r18_an_empty_account_has_weight_zero_and_never_trades():
    """SPEC R18: w_cur = eth * p / W is taken as 0 when W = 0 (an unfunded account), not NaN."""
    p = strategy(cooldown_minutes=0).params_array()
    s = K.new_state()
    reason, _, _, w_cur, delta, flipped, _ = K.decide(s, p, 900_000.0, 0.0, PEAK_PX, -0.05, 0.03, 0.01, True, 1.0,
                                                      0.0, 0.0, 0.0)
    assert flipped and w_cur == 0.0 and delta == 0.0 and K.REASONS[reason] == "min_trade"


def test_r23_a_bnb_wallet_without_bnbbtc_prices_adds_nothing_to_wealth():
    """SPEC R23: wealth includes bnb * BNBBTC only with a finite wallet AND its prices; a start_bnb
    without prices (fees not paid in BNB) leaves wealth the BTC + ETH value, never NaN."""
    s = strategy(**(NO_SIGNAL | {"start_bnb": 0.5, "pay_fees_in_bnb": False}))
    run = s.run(frame([PEAK_PX] * 6), btc=0.0, eth=ETH_HELD)
    assert list(run.out_f[:, K.O_WEALTH]) == [1.0] * 6  # type: ignore[attr-defined]


def test_r22_a_weight_move_of_exactly_1e_12_is_noise_not_a_trade():
    """SPEC R22: "a weight move of at most 1e-12 is float noise, not a trade" (at most: equality
    included). A multiplier of 1e-12 makes the target, and the whole move, exactly 1e-12."""
    p = strategy(min_trade_btc=0.0, step_allocation=1.0, rebalance_threshold_w=0.0).params_array()
    s = K.new_state()
    s[K.S_SIGNAL] = 1.0
    reason, target, desired, w_cur, delta, _, _ = K.decide(s, p, 900_000.0, 0.0, PEAK_PX, -0.05, 0.03, 0.01, True,
                                                           K.EPS_W, 1.0, 0.0, 0.0)
    assert desired - w_cur == K.EPS_W and K.REASONS[reason] == "hold" and delta == 0.0
    reason, *_ = K.decide(s, p, 1_800_000.0, 0.0, PEAK_PX, -0.05, 0.03, 0.01, True, 2 * K.EPS_W, 1.0, 0.0, 0.0)
    assert K.REASONS[reason] == "trade"


def test_r23_bnb_paid_fee_without_a_wallet_is_the_discounted_value_taken_from_the_received_eth():
    """SPEC R23 (pay_fees_in_bnb, no BNB wallet): every fee gets the discount and its BTC value is
    charged against the received asset: a buy of q ETH receives q * (1 - rate * (1 - discount))."""
    closes = [BASE] * 5 + [0.046, 0.046, 0.046]
    s = strategy(trend_kind="roc", trend_lookback=4, flip_band_entry=ENTRY, flip_band_exit=0.0, vol_window=2,
                 cooldown_minutes=0, min_trade_btc=0.0, step_allocation=1.0, maker_fee=0.001, taker_fee=0.001,
                 pay_fees_in_bnb=True, bnb_discount=0.25, start_bnb=0.0)
    run = s.run(frame(closes))
    tr_f = run.tr_f
    assert len(tr_f) == 1 and run.tr_i[0, K.TI_SIDE] == 1
    q = tr_f[0, K.T_QTY]
    assert run.out_f[-1, K.O_ETH] == pytest.approx(q * (1 - 0.001 * 0.75), rel=1e-12)
    assert tr_f[0, K.T_FEE_BTC] == pytest.approx(tr_f[0, K.T_NOTIONAL] * 0.001 * 0.75, rel=1e-12)


def test_r23_a_bnb_wallet_holding_exactly_the_fee_pays_it():
    """SPEC R23 (finite wallet): the fee is taken from BNB "while BNB lasts": a wallet holding
    exactly the discounted fee pays it and ends at 0 BNB (a strict comparison would skip it)."""
    closes = [BASE] * 5 + [0.046, 0.046, 0.046]
    bnb_px = np.full(len(closes), 0.0078125)
    cfg = dict(trend_kind="roc", trend_lookback=4, flip_band_entry=ENTRY, flip_band_exit=0.0, vol_window=2,
               cooldown_minutes=0, min_trade_btc=0.0, step_allocation=1.0, maker_fee=0.001, taker_fee=0.001,
               pay_fees_in_bnb=True, bnb_discount=0.25)
    probe = strategy(**cfg, start_bnb=1.0).run(frame(closes), bnb_close=bnb_px)
    notional = probe.tr_f[0, K.T_NOTIONAL]
    need = notional * 0.001 * (1.0 - 0.25) / 0.0078125  # the kernel's own arithmetic, bit for bit
    run = strategy(**cfg, start_bnb=need).run(frame(closes), bnb_close=bnb_px)
    assert run.tr_f[0, K.T_NOTIONAL] == notional
    assert run.out_f[-1, K.O_BNB] == 0.0


def test_r20_a_move_exactly_the_dead_band_wide_trades():
    """SPEC R20: no trade only when |desired - w_cur| < rebalance_threshold_w. From 0 to a target
    of 0.25 in one step with a 0.25 dead band the move is exactly on the band and trades; with a
    band a hair wider it does not (the same under the v1 and v2 R19 snap: the whole gap is moved)."""
    for thresh, expected in ((0.25, "trade"), (0.25 + 1e-9, "threshold")):
        p = strategy(min_trade_btc=0.0, step_allocation=1.0, rebalance_threshold_w=thresh).params_array()
        s = K.new_state()
        s[K.S_SIGNAL] = 1.0
        reason, target, desired, w_cur, *_ = K.decide(s, p, 900_000.0, 0.0, PEAK_PX, -0.05, 0.03, 0.02, True, 0.25,
                                                      1.0, 0.0, 0.0)
        assert target == desired == 0.25 and w_cur == 0.0 and K.REASONS[reason] == expected, thresh


def test_r19_no_snap_when_the_distance_left_equals_the_dead_band():
    """SPEC R19: snap to the target when the distance the step leaves is SMALLER than the dead
    band (v1 and v2 alike). A 0.75 step from 0 toward 1 leaves exactly 0.25 = the band: no snap."""
    p = strategy(min_trade_btc=0.0, step_allocation=0.75, rebalance_threshold_w=0.25).params_array()
    s = K.new_state()
    s[K.S_SIGNAL] = 1.0
    reason, target, desired, *_ = K.decide(s, p, 900_000.0, 0.0, PEAK_PX, -0.05, 0.03, 0.02, True, 1.0,
                                           1.0, 0.0, 0.0)
    assert target == 1.0 and desired == 0.75 and K.REASONS[reason] == "trade"


def test_psr_matches_the_published_formula():
    """PSR (Bailey & Lopez de Prado 2012): Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)),
    g4 the (non-excess) kurtosis; the DSR is the PSR against the expected maximum of the trials."""
    from statistics import NormalDist

    for sr, bench, t, skew, kurt in ((0.1, 0.0, 101, 0.0, 3.0), (0.2, 0.05, 50, -0.5, 6.0), (0.1, 0.0, 2, 0.0, 3.0)):
        z = (sr - bench) * (t - 1) ** 0.5 / (1 - skew * sr + (kurt - 1) / 4 * sr**2) ** 0.5
        assert O.probabilistic_sharpe(sr, bench, t, skew, kurt) == pytest.approx(NormalDist().cdf(z), rel=1e-12)


def test_dsr_moments_of_a_known_sample():
    """The pick's Sharpe is mean / sd (ddof 1), its moments standardised by the population sd:
    +-1 % alternating returns have skew 0 and kurtosis exactly 1; a flat wealth path has SR 0."""
    x = np.tile([0.01, -0.01], 32) + 0.002
    res = O.deflated_sharpe(x, np.array([0.0, 0.1, -0.1]), 3, 365.0)
    assert res.sharpe == pytest.approx(x.mean() / x.std(ddof=1), rel=1e-12)
    assert res.skew == pytest.approx(0.0, abs=1e-12) and res.kurtosis == pytest.approx(1.0, rel=1e-12)
    assert res.sharpe_annual == pytest.approx(res.sharpe * 365.0**0.5, rel=1e-12)
    skewed = O.deflated_sharpe(np.tile([0.03, -0.01, -0.01, -0.01], 16), np.array([0.0, 0.1]), 2, 365.0)
    assert skewed.skew == pytest.approx(2 / 3**0.5, rel=1e-9) and skewed.kurtosis == pytest.approx(7 / 3, rel=1e-9)
    flat = O.deflated_sharpe(np.zeros(30), np.array([0.0, 0.1, -0.1]), 3, 365.0)
    assert flat.sharpe == 0.0


def test_dsr_with_a_single_trial_sharpe_has_no_dispersion():
    """One trial Sharpe has no sample variance: taken as 0, so SR0 = 0 and the DSR is the plain
    PSR against 0 (never NaN)."""
    x = np.tile([0.01, -0.01], 32) + 0.002
    res = O.deflated_sharpe(x, np.array([0.1]), 5, 365.0)
    assert res.sr0 == 0.0
    assert res.dsr == pytest.approx(O.probabilistic_sharpe(res.sharpe, 0.0, len(x), res.skew, res.kurtosis))


def test_psr_is_undefined_when_the_variance_term_is_exactly_zero():
    """The PSR's denominator 1 - g3 SR + (g4 - 1)/4 SR^2 at exactly 0 (SR 1, skew 2, kurtosis 5)
    has no defined value: NaN, never a division error."""
    assert np.isnan(O.probabilistic_sharpe(1.0, 0.0, 100, 2.0, 5.0))
