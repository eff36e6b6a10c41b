"""The compiled per-bar decision step (SPEC R11-R26) and the backtest loop that calls it.

``decide`` is the ONE implementation of the signal state machine, risk rules, stepping,
dead band and minimum trade. The backtest loop ``simulate`` calls it for every bar and then
fills the order in the next bar (R22-R23); the live executor calls it once per newly
closed bar with the state it persisted (R30). Fills follow SPEC R22's fill model: ``intrabar``
(the default: the paper exchange's intrabar path and post-only order rule, one shared
implementation in :mod:`ethbtc.fillmodel`) or ``next_open``. State and parameters travel as flat float64
arrays (slots named below) so both callers share them and they serialise trivially.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .fillmodel import intrabar_fill

REASONS = ("warmup", "hold", "threshold", "min_trade", "cooldown", "gate", "risk_maxdd", "risk_daily", "trade")
(R_WARMUP, R_HOLD, R_THRESHOLD, R_MIN_TRADE, R_COOLDOWN, R_GATE, R_RISK_MAXDD, R_RISK_DAILY, R_TRADE) = range(9)
TRADE_REASONS = ("signal", "risk_maxdd")

# state slots (float64[N_STATE]); times in epoch ms, NaN = never
S_SIGNAL, S_LAST_FLIP_MS, S_PEAK, S_MAXDD_HIT, S_DAY, S_DAY_START, S_DAILY_PAUSED, S_TURNS = range(8)
N_STATE = 8
STATE_NAMES = ("signal", "last_flip_ms", "peak_w", "risk_maxdd_hit", "day", "day_start_w", "daily_paused", "turns")

# parameter slots (float64[N_PARAM])
P_STEP, P_MAXPOS, P_THRESH, P_COOLDOWN_MS, P_MIN_TRADE, P_FIXED_BASIS, P_MAXDD, P_DAILY, P_BASIS = range(9)
N_PARAM = 9

# fee and fill-model slots (float64[N_FEE]); F_TTL is ttl_sec as a fraction of the bar
(F_MAKER, F_TAKER, F_SLIP, F_PAY_BNB, F_BNB_DISCOUNT, F_BNB_MODEL, F_FILL_MODEL, F_TTL, F_SPREAD_BPS, F_TICK,
 F_FALLBACK, F_TOUCH, F_VOL_CAP) = range(13)
# partial-fill share, lot step and the depth book of the taker fallback (ethbtc.fillmodel)
F_SHARE, F_STEP, F_BOOK_DEPTH, F_BOOK_TOP_SHARE, F_BOOK_GROWTH, F_BOOK_MIN_TOP, F_BOOK_LEVELS = range(13, 20)
N_FEE = 20
FILL_MODELS = ("next_open", "intrabar")  # F_FILL_MODEL values 0, 1 (SPEC R22)

# per-bar output columns
O_BTC, O_ETH, O_BNB, O_WEALTH, O_WCUR, O_TARGET, O_DESIRED = range(7)
N_OUT = 7
T_QTY, T_PRICE, T_NOTIONAL, T_FEE_BTC, T_FEE_BNB = range(5)
TI_BAR, TI_SIDE, TI_REASON, TI_DECISION_BAR = range(4)

EPS_W = 1e-12  # R22: a weight move of at most this is float noise, not a trade
SPEC_VERSION = 3  # the SPEC rules this kernel implements (recorded in trial CSVs and emitted configs)


@njit(cache=True)
def new_state() -> np.ndarray:
    s = np.zeros(N_STATE)
    s[S_LAST_FLIP_MS] = np.nan
    s[S_PEAK] = np.nan
    s[S_DAY] = np.nan
    s[S_DAY_START] = np.nan
    return s


@njit(cache=True, error_model="numpy", inline="always")
def decide(state, prm, close_ms, day, price, ratio, entry, exit_, gate_ok, mult, btc, eth, extra_wealth):
    """One bar's decision at its close. Mutates ``state``; returns
    (reason, target_w, desired_w, w_cur, delta_eth, flipped, forced_exit)."""
    W = btc + eth * price  # R18: the BNB fee wallet is not part of the traded weight
    w_cur = eth * price / W if W > 0 else 0.0
    total = W + extra_wealth

    # --- signal state machine (R11-R15): advances on every bar -------------------------
    undefined = math.isnan(ratio) or math.isnan(entry) or math.isnan(exit_)
    last = state[S_LAST_FLIP_MS]
    cool_ok = math.isnan(last) or (close_ms - last >= prm[P_COOLDOWN_MS])
    cooldown_blocked = False
    gate_blocked = False
    flipped = False
    if not undefined:
        if state[S_SIGNAL] == 0.0:
            if ratio < -entry:  # R12: ETH cheap against its trend
                if not cool_ok:
                    cooldown_blocked = True
                elif not gate_ok:
                    gate_blocked = True
                else:
                    state[S_SIGNAL] = 1.0
                    flipped = True
        elif ratio > -exit_:  # R13: reverted; the gate never blocks an exit
            if cool_ok:
                state[S_SIGNAL] = 0.0
                flipped = True
            else:
                cooldown_blocked = True
    if flipped:
        state[S_LAST_FLIP_MS] = close_ms
        state[S_TURNS] += 1.0
    target = min(max(state[S_SIGNAL] * mult, 0.0), prm[P_MAXPOS])  # R16

    # --- risk (R24-R25) ------------------------------------------------------------------
    if state[S_DAY] != day:
        state[S_DAY] = day
        state[S_DAY_START] = total
        state[S_DAILY_PAUSED] = 0.0
    if math.isnan(state[S_PEAK]) or total > state[S_PEAK]:
        state[S_PEAK] = total
    fixed = prm[P_FIXED_BASIS] != 0.0
    if prm[P_MAXDD] > 0 and state[S_MAXDD_HIT] == 0.0:
        dd = (state[S_PEAK] - total) >= prm[P_MAXDD] * prm[P_BASIS] if fixed else 1.0 - total / state[S_PEAK] >= prm[P_MAXDD]
        if dd:
            state[S_MAXDD_HIT] = 1.0
    if prm[P_DAILY] > 0 and state[S_DAILY_PAUSED] == 0.0:
        floor = state[S_DAY_START] - prm[P_DAILY] * prm[P_BASIS] if fixed else state[S_DAY_START] * (1.0 - prm[P_DAILY])
        if total <= floor:
            state[S_DAILY_PAUSED] = 1.0

    # --- execution (R19-R21) -------------------------------------------------------------
    hit = state[S_MAXDD_HIT] != 0.0
    paused = state[S_DAILY_PAUSED] != 0.0
    forced = False
    if hit:
        target = 0.0
        desired, dw = 0.0, -w_cur  # latched breaker: flat in one move, then nothing (R24)
        forced = w_cur > EPS_W
    elif paused or undefined:
        desired, dw = w_cur, 0.0
    else:
        gap = target - w_cur
        dw = prm[P_STEP] * gap
        desired = w_cur + dw
        # R19 (v2): snap when the stepped move or the distance it leaves is inside the dead band,
        # so a stepped approach reaches its target in whole moves (no stuck zone)
        if abs(dw) < prm[P_THRESH] or abs(gap - dw) < prm[P_THRESH]:
            desired, dw = target, gap
    delta = dw * W / price if price > 0 else 0.0
    notional = abs(delta) * price
    if abs(dw) <= EPS_W:
        size_reason = R_HOLD
    elif notional < prm[P_MIN_TRADE]:
        size_reason = R_MIN_TRADE
    elif abs(dw) < prm[P_THRESH] and not hit:
        size_reason = R_THRESHOLD
    else:
        size_reason = R_TRADE

    # --- reason (R26): trade, else the first that applies --------------------------------
    if size_reason == R_TRADE:
        reason = R_TRADE
    elif hit:
        reason = R_RISK_MAXDD
    elif paused:
        reason = R_RISK_DAILY
    elif undefined:
        reason = R_WARMUP
    elif cooldown_blocked:
        reason = R_COOLDOWN
    elif gate_blocked:
        reason = R_GATE
    else:
        reason = size_reason
    if reason != R_TRADE:
        delta = 0.0
    return reason, target, desired, w_cur, delta, flipped, forced


@njit(cache=True, error_model="numpy", inline="always")
def _fee(notional, rate, fee, bnb, bnb_px):
    """R23 (v2): (fee_btc, fee_bnb, from_wallet_bnb, in_received_asset_btc) for one fill.

    ``fee_bnb`` is the BNB the fee consumed (reported; 0 when no BNBBTC price is known),
    ``from_wallet_bnb`` what leaves the modelled finite wallet. F_BNB_MODEL = 1 is a finite
    wallet (start_bnb > 0); 0 with pay_fees_in_bnb is the funded wallet: always discounted,
    the fee's BTC value charged against the received asset."""
    if fee[F_PAY_BNB] != 0.0:
        disc = 1.0 - fee[F_BNB_DISCOUNT]
        f_btc = notional * rate * disc
        used = f_btc / bnb_px if bnb_px > 0 else 0.0
        if fee[F_BNB_MODEL] != 0.0:
            if bnb_px > 0 and used <= bnb:
                return f_btc, used, used, 0.0
            return notional * rate, 0.0, 0.0, notional * rate  # BNB ran out: undiscounted, received asset
        return f_btc, used, 0.0, f_btc
    return notional * rate, 0.0, 0.0, notional * rate


@njit(cache=True, error_model="numpy", inline="always")
def _book(side, q, px, rate, fee, btc, eth, bnb, px_b, t, reason, dbar, tr_f, tr_i, n_tr):
    """Apply one fill of ``q`` ETH at ``px`` (R22 spot caps, R23 fees); record it. Returns
    (btc, eth, bnb, n_tr)."""
    if side > 0:
        q = min(q, btc / px)  # never spend more BTC than held
    else:
        q = min(q, eth)  # never sell more ETH than held
    if not q > 0:
        return btc, eth, bnb, n_tr
    notional = q * px
    fee_btc, fee_bnb, from_wallet, in_kind = _fee(notional, rate, fee, bnb, px_b)
    if side > 0:
        btc -= notional
        eth += q - in_kind / px
    else:
        eth -= q
        btc += notional - in_kind
    bnb -= from_wallet
    tr_f[n_tr, T_QTY] = q
    tr_f[n_tr, T_PRICE] = px
    tr_f[n_tr, T_NOTIONAL] = notional
    tr_f[n_tr, T_FEE_BTC] = fee_btc
    tr_f[n_tr, T_FEE_BNB] = fee_bnb
    tr_i[n_tr, TI_BAR] = t
    tr_i[n_tr, TI_SIDE] = side
    tr_i[n_tr, TI_REASON] = reason
    tr_i[n_tr, TI_DECISION_BAR] = dbar
    return btc, eth, bnb, n_tr + 1


@njit(cache=True, error_model="numpy")
def simulate(open_, high, low, close, volume, close_ms, day, ratio, entry, exit_, gate_ok, mult, bnb_px, prm, fee,
             state, btc, eth, bnb, out_f, out_i, tr_f, tr_i):
    """Backtest loop: decide at each close (``decide``), fill in the next bar (R22) by the
    configured fill model: ``next_open``, or ``intrabar`` (the paper exchange's path, resting
    order rule and MARKET book walk, :func:`ethbtc.fillmodel.intrabar_fill`; up to two fills per
    decision, maker then taker at the average price of the book levels taken). Returns n_trades
    (``tr_f``/``tr_i`` need 2·n rows)."""
    n = len(close)
    pending = 0.0
    pending_reason = 0
    pending_bar = -1
    n_tr = 0
    slip = fee[F_SLIP]
    intrabar = fee[F_FILL_MODEL] != 0.0
    for t in range(n):
        if pending != 0.0:
            px_b = bnb_px[t - 1]
            if intrabar:
                side = 1 if pending > 0 else -1
                mq, mpx, tq, tpx, _first = intrabar_fill(
                    open_[t], high[t], low[t], close[t], volume[t], side > 0, abs(pending), fee[F_TTL],
                    fee[F_SPREAD_BPS], fee[F_TICK], slip, fee[F_FALLBACK] != 0.0, fee[F_TOUCH] != 0.0,
                    fee[F_VOL_CAP] != 0.0, fee[F_SHARE], fee[F_STEP], volume[t - 1], fee[F_BOOK_DEPTH] != 0.0,
                    fee[F_BOOK_TOP_SHARE], fee[F_BOOK_GROWTH], fee[F_BOOK_MIN_TOP], int(fee[F_BOOK_LEVELS]))
                if mq > 0:
                    btc, eth, bnb, n_tr = _book(side, mq, mpx, fee[F_MAKER], fee, btc, eth, bnb, px_b, t,
                                                pending_reason, pending_bar, tr_f, tr_i, n_tr)
                if tq > 0:
                    btc, eth, bnb, n_tr = _book(side, tq, tpx, fee[F_TAKER], fee, btc, eth, bnb, px_b, t,
                                                pending_reason, pending_bar, tr_f, tr_i, n_tr)
            elif pending > 0:  # next_open: buys at o(1+slip), taker fee
                btc, eth, bnb, n_tr = _book(1, pending, open_[t] * (1.0 + slip), fee[F_TAKER], fee, btc, eth, bnb,
                                            px_b, t, pending_reason, pending_bar, tr_f, tr_i, n_tr)
            else:  # next_open: sells at o(1-slip), maker fee
                btc, eth, bnb, n_tr = _book(-1, -pending, open_[t] * (1.0 - slip), fee[F_MAKER], fee, btc, eth,
                                            bnb, px_b, t, pending_reason, pending_bar, tr_f, tr_i, n_tr)
            pending = 0.0
        px_bnb = bnb_px[t]
        extra = bnb * px_bnb if bnb > 0 and px_bnb > 0 else 0.0
        reason, target, desired, w_cur, delta, flipped, forced = decide(
            state, prm, close_ms[t], day[t], close[t], ratio[t], entry[t], exit_[t], gate_ok[t], mult[t],
            btc, eth, extra)
        if reason == R_TRADE and t + 1 < n:  # a decision on the last bar has no fill
            pending = delta
            pending_reason = 1 if forced else 0
            pending_bar = t
        out_f[t, O_BTC] = btc
        out_f[t, O_ETH] = eth
        out_f[t, O_BNB] = bnb
        out_f[t, O_WEALTH] = btc + eth * close[t] + extra
        out_f[t, O_WCUR] = w_cur
        out_f[t, O_TARGET] = target
        out_f[t, O_DESIRED] = desired
        out_i[t, 0] = reason
        out_i[t, 1] = int(state[S_SIGNAL])
    return n_tr
