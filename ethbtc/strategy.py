"""``EthBtcStrategy``: the one decision path shared by backtest, optimiser and live (SPEC R30).

It owns the vectorised indicators (:mod:`ethbtc.indicators`) and calls the compiled step
(:func:`ethbtc.kernel.decide`): ``run`` loops it over history, ``step`` applies it once to
the newest closed bar with a persisted state. ``ethbtc_accum_bot`` re-exports this class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import kernel as K
from .config import Config
from .errors import ConfigError, DataError
from .fillmodel import bar_fraction
from .indicators import MS_PER_DAY, Indicators, compute, index_ms


@dataclass(frozen=True)
class Decision:
    """The outcome of one bar (live path)."""

    bar_open_ms: int
    close: float
    reason: str
    signal: str  # "BTC" or "ETH"
    target_w: float
    desired_w: float
    w_cur: float
    delta_eth: float  # > 0 buy ETH, < 0 sell ETH, 0 no trade
    flipped: bool
    forced_exit: bool  # drawdown-breaker liquidation (R24)
    ratio: float
    entry_band: float
    exit_band: float
    gate: float
    gate_open: bool
    mult: float


@dataclass
class RunArrays:
    """Raw backtest output of :meth:`EthBtcStrategy.run` (see ethbtc.backtest for frames)."""

    out_f: np.ndarray
    out_i: np.ndarray
    tr_f: np.ndarray
    tr_i: np.ndarray
    state: np.ndarray
    ind: Indicators


@dataclass
class KernelInputs:
    """Per-window kernel inputs that do not depend on parameters (R3 bar close, R9/R25 UTC day)."""

    open_: np.ndarray
    close: np.ndarray
    close_ms: np.ndarray
    day: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray

    @classmethod
    def of(cls, df: pd.DataFrame, bar_minutes: int) -> KernelInputs:
        open_ms = index_ms(df.index)
        o, c = df["open"].to_numpy(np.float64), df["close"].to_numpy(np.float64)
        # intrabar fills read high/low/volume; frames without them get a flat path and no volume cap
        h = df["high"].to_numpy(np.float64) if "high" in df.columns else np.maximum(o, c)
        lo = df["low"].to_numpy(np.float64) if "low" in df.columns else np.minimum(o, c)
        v = df["volume"].to_numpy(np.float64) if "volume" in df.columns else np.full(len(df), np.inf)
        return cls(o, c, (open_ms + bar_minutes * 60_000).astype(np.float64), (open_ms // MS_PER_DAY).astype(np.float64),
                   h, lo, v)


@dataclass
class RunBuffers:
    """Output arrays of one backtest run, reusable across runs of the same length."""

    out_f: np.ndarray
    out_i: np.ndarray
    tr_f: np.ndarray
    tr_i: np.ndarray

    @classmethod
    def empty(cls, n: int) -> RunBuffers:
        # up to two fills per decision (intrabar: maker, then the taker fallback)
        return cls(np.empty((n, K.N_OUT)), np.empty((n, 2), dtype=np.int8), np.empty((2 * n, 5)),
                   np.empty((2 * n, 4), dtype=np.int64))


def finite_bnb_wallet(config: Config, wallet: float | None = None, has_prices: bool = True) -> bool:
    """SPEC R23: is a finite BNB fee wallet modelled (pay_fees_in_bnb and start_bnb > 0)? It needs
    BNBBTC prices; without them this is a one-line ConfigError."""
    wallet = config.fees.start_bnb if wallet is None else wallet
    finite = config.fees.pay_fees_in_bnb and wallet > 0
    if finite and not has_prices:
        raise ConfigError(f"start_bnb {wallet:g} models a finite BNB fee wallet, which needs BNBBTC prices: "
                          "pass --bnb-data FILE, or set start_bnb 0 (wallet assumed kept funded, SPEC R23)")
    return finite


class EthBtcStrategy:
    def __init__(self, config: Config, bar_minutes: int | None = None):
        self.config = config
        self.bar_minutes = bar_minutes or config.bar_minutes()
        if self.bar_minutes is None:
            raise DataError("bar interval unknown: set bar_interval_minutes/interval or pass data")

    # --- shared pieces ----------------------------------------------------------------------
    def params_array(self) -> np.ndarray:
        c = self.config
        p = np.zeros(K.N_PARAM)
        p[K.P_STEP] = c.strategy.step_allocation
        p[K.P_MAXPOS] = c.strategy.max_position
        p[K.P_THRESH] = c.strategy.rebalance_threshold_w
        p[K.P_COOLDOWN_MS] = c.strategy.cooldown_minutes * 60_000.0
        p[K.P_MIN_TRADE] = c.min_trade_btc()
        p[K.P_FIXED_BASIS] = 1.0 if c.risk.risk_mode == "fixed_basis" else 0.0
        p[K.P_MAXDD] = c.risk.max_dd_frac
        p[K.P_DAILY] = c.risk.max_daily_loss_frac
        p[K.P_BASIS] = c.risk.basis_btc
        return p

    def fees_array(self, bnb_model: bool) -> np.ndarray:
        """Fee slots; ``bnb_model`` = a finite BNB wallet is modelled (R23: start_bnb > 0 with
        BNBBTC prices). Without it, pay_fees_in_bnb means the funded wallet: always discounted."""
        f = self.config.fees
        a = np.zeros(K.N_FEE)
        a[K.F_MAKER], a[K.F_TAKER] = f.maker_fee, f.taker_fee
        a[K.F_SLIP] = f.slippage_bps / 10_000.0
        a[K.F_PAY_BNB] = 1.0 if f.pay_fees_in_bnb else 0.0
        a[K.F_BNB_DISCOUNT] = f.bnb_discount
        a[K.F_BNB_MODEL] = 1.0 if (bnb_model and f.pay_fees_in_bnb) else 0.0
        ex = self.config.execution
        a[K.F_FILL_MODEL] = float(K.FILL_MODELS.index(ex.fill_model))
        a[K.F_TTL] = bar_fraction(ex.ttl_sec / (self.bar_minutes * 60.0), 0)  # rests within its bar
        a[K.F_SPREAD_BPS] = ex.spread_bps
        a[K.F_TICK] = ex.tick_size
        a[K.F_FALLBACK] = 1.0 if ex.taker_fallback else 0.0
        a[K.F_TOUCH] = 1.0 if ex.fill_on_touch else 0.0
        a[K.F_VOL_CAP] = 1.0 if ex.volume_fills else 0.0
        a[K.F_SHARE] = ex.partial_fill
        a[K.F_STEP] = ex.step_size
        a[K.F_BOOK_DEPTH] = 1.0 if ex.book_depth else 0.0
        a[K.F_BOOK_TOP_SHARE] = ex.book_top_share
        a[K.F_BOOK_GROWTH] = ex.book_growth
        a[K.F_BOOK_MIN_TOP] = ex.book_min_top_qty
        a[K.F_BOOK_LEVELS] = float(ex.book_levels)
        return a

    def indicators(self, df: pd.DataFrame) -> Indicators:
        return compute(df, self.config.strategy, self.bar_minutes)

    @staticmethod
    def new_state() -> np.ndarray:
        return K.new_state()

    def warmup_bars(self) -> int:
        """Closed bars needed before every indicator is defined (live history size)."""
        s = self.config.strategy
        gate_bars = (s.gate_window_days + 2) * MS_PER_DAY // (self.bar_minutes * 60_000) if s.gate_window_days else 0
        return int(max(s.trend_lookback + 1, s.vol_window + 1, gate_bars)) + 1

    # --- backtest path ------------------------------------------------------------------------
    def run(self, df: pd.DataFrame, bnb_close: np.ndarray | None = None, ind: Indicators | None = None,
            btc: float | None = None, eth: float = 0.0, bnb: float | None = None,
            inputs: KernelInputs | None = None, buffers: RunBuffers | None = None) -> RunArrays:
        """Loop the kernel over ``df``. ``inputs``/``buffers`` let a caller that runs many
        parameter sets on one window (the optimiser) prepare the time arrays once and reuse the
        output arrays; the returned arrays are then views into ``buffers``."""
        n = len(df)
        ind = ind if ind is not None else self.indicators(df)
        inputs = inputs if inputs is not None else KernelInputs.of(df, self.bar_minutes)
        buf = buffers if buffers is not None else RunBuffers.empty(n)
        wallet = self.config.fees.start_bnb if bnb is None else bnb
        bnb_model = finite_bnb_wallet(self.config, wallet, bnb_close is not None)
        bnb_px = bnb_close if bnb_close is not None else np.full(n, np.nan)
        state = K.new_state()
        n_tr = K.simulate(
            inputs.open_, inputs.high, inputs.low, inputs.close, inputs.volume, inputs.close_ms, inputs.day,
            ind.ratio, ind.entry, ind.exit, ind.gate_open, ind.mult, bnb_px,
            self.params_array(), self.fees_array(bnb_model), state,
            self.config.risk.basis_btc if btc is None else btc, eth,
            wallet if bnb_model else 0.0, buf.out_f, buf.out_i, buf.tr_f, buf.tr_i,
        )
        return RunArrays(buf.out_f, buf.out_i, buf.tr_f[:n_tr], buf.tr_i[:n_tr], state, ind)

    # --- live path ------------------------------------------------------------------------------
    def step(self, state: np.ndarray, df: pd.DataFrame, btc: float, eth: float, extra_wealth: float = 0.0,
             ind: Indicators | None = None) -> Decision:
        """Decide on the LAST row of ``df`` (closed bars only), mutating ``state`` (R30)."""
        ind = ind if ind is not None else self.indicators(df)
        t = len(df) - 1
        open_ms = int(index_ms(df.index[-1:])[0])
        close = float(df["close"].iloc[-1])
        reason, target, desired, w_cur, delta, flipped, forced = K.decide(
            state, self.params_array(), float(open_ms + self.bar_minutes * 60_000), float(open_ms // MS_PER_DAY),
            close, ind.ratio[t], ind.entry[t], ind.exit[t], bool(ind.gate_open[t]), ind.mult[t],
            float(btc), float(eth), float(extra_wealth),
        )
        return Decision(
            bar_open_ms=open_ms, close=close, reason=K.REASONS[reason],
            signal="ETH" if state[K.S_SIGNAL] else "BTC", target_w=target, desired_w=desired, w_cur=w_cur,
            delta_eth=delta, flipped=flipped, forced_exit=forced, ratio=float(ind.ratio[t]),
            entry_band=float(ind.entry[t]), exit_band=float(ind.exit[t]), gate=float(ind.gate[t]),
            gate_open=bool(ind.gate_open[t]), mult=float(ind.mult[t]),
        )
