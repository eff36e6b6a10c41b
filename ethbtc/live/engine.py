"""The bar loop: wake at each bar close, decide once with the backtest's code, act at most once.

Per newly closed bar (SPEC R30-R31): fetch closed klines, read balances, call
``EthBtcStrategy.step`` with the persisted kernel state, then -- state written first, with the
order intent -- send the orders (:mod:`ethbtc.live.orders`), write the state again, append the
decision journal and print a heartbeat. If several bars closed while the executor was down,
the signal state is advanced through the missed ones with the same step (no orders: their
moment has passed) and only the newest is acted on. A bar whose processing was interrupted
by a crash is reconciled on the next start, never decided again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from ..indicators import index_ms
from ..kernel import S_DAILY_PAUSED, S_MAXDD_HIT, S_PEAK
from ..strategy import Decision, EthBtcStrategy
from . import failpoints
from .errors import ExchangeError
from .exchange import Exchange
from .filters import D, SymbolFilters
from .klines import KlineFeed
from .ledger import DecisionJournal, TradeLedger
from .orders import Account, Execution, OrderRunner, bar_of, id_prefix
from .state import LiveState, Pending, StateError, StateStore, fresh_state, utc_iso

log = logging.getLogger("ethbtc.live")


class WallClock:
    """Real time; sleeps end early when ``stop`` is set (SIGTERM/SIGINT)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.stop.wait(max(seconds, 0.0))


@dataclass
class EngineOptions:
    mode: str
    symbol: str
    interval: str
    interval_ms: int
    poll_sec: float
    ttl_sec: float
    taker_fallback: bool
    history_bars: int
    close_delay_sec: float = 1.0  # after a bar's close before asking for it
    max_bars: int | None = None


@dataclass
class BarReport:
    """One decided bar, as journaled and shown in the heartbeat."""

    decision: Decision
    final_reason: str
    btc: float
    eth: float
    wealth: float
    pnl: float
    catchup: bool = False
    execution: Execution | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(self, strategy: EthBtcStrategy, market: Exchange, account: Account, store: StateStore,
                 ledger: TradeLedger, journal: DecisionJournal, opts: EngineOptions,
                 clock: Any = None, stop: threading.Event | None = None) -> None:
        self.strategy = strategy
        self.market = market
        self.account = account
        self.store = store
        self.ledger = ledger
        self.journal = journal
        self.opts = opts
        self.stop = stop or threading.Event()
        self.clock = clock or WallClock(self.stop)
        self.feed = KlineFeed(market, opts.interval, opts.interval_ms, opts.history_bars)
        self.state: LiveState | None = None
        self.filters: SymbolFilters | None = None
        self.runner: OrderRunner | None = None
        self.bars_this_run = 0
        self.last_balances: dict[str, tuple[Decimal, Decimal]] = {}
        self.on_bar: list[Callable[[BarReport], None]] = []  # heartbeat, metrics
        self.on_tick: list[Callable[[], None]] = []  # every loop iteration (liveness)
        self.on_error: list[Callable[[str], None]] = []
        self.on_order: Callable[[Any, str, float, bool], None] | None = None  # passed to the OrderRunner
        self.on_fill: Callable[[Any], None] | None = None
        self.save_hooks: list[Callable[[LiveState], None]] = []  # e.g. the paper wallet

    # -- start-up ----------------------------------------------------------------------------------
    def start(self, *, fresh_state: bool = False, reset_risk: bool = False) -> LiveState:
        """Load or create the state, reconcile with the exchange, prepare the order runner."""
        self.market.sync_time()
        self.filters = self.market.filters()
        self.runner = OrderRunner(self.account, self.market.book, self.filters, self.ledger, self.clock, self.stop,
                                  ttl_sec=self.opts.ttl_sec, taker_fallback=self.opts.taker_fallback,
                                  poll_sec=self.opts.poll_sec)
        self.runner.on_order, self.runner.on_fill = self.on_order, self.on_fill
        state = self.store.load()
        self._log_balances()
        ours = self._our_orders()
        if state is None:
            if ours and not fresh_state:
                raise StateError(
                    f"state file {self.store.path} does not exist, but this account has {len(ours)} orders placed "
                    f"by this executor (latest {ours[-1].client_id}). Starting fresh would reset session_start_W, "
                    "the risk breaker flags and the record of acted bars. Restore the state file, or start with "
                    "--fresh-state if you really mean to begin a new session")
            w = self.wealth_of(self.account.balances())
            state = fresh_state_for(self.opts, w)
            state.note(f"session started: W={w:.8f} {self.filters.quote} from the account's balances")
            log.info("new session: start wealth %.8f %s measured from the account", w, self.filters.quote)
        else:
            if (state.mode, state.symbol, state.interval) != (self.opts.mode, self.opts.symbol, self.opts.interval):
                raise StateError(f"state file {self.store.path} belongs to mode={state.mode} symbol={state.symbol} "
                                 f"interval={state.interval}, not mode={self.opts.mode} symbol={self.opts.symbol} "
                                 f"interval={self.opts.interval}; use another --state path")
            log.info("resuming: last bar acted on %s, session start W %.8f", state.last_bar_close,
                     state.session_start_w)
            for event in state._load_notes:
                log.warning("state file: %s", event)
        self.state = state
        if reset_risk:
            self._reset_risk()
        self._reconcile(ours)
        self.save()
        return state

    def _log_balances(self) -> None:
        """The start-up line operators look for (v3 manual): the account's balances, as read."""
        bal = self.account.balances()
        f = self.filters
        assets = [a for a in dict.fromkeys([getattr(f, "base", "ETH"), getattr(f, "quote", "BTC"), "BNB"])
                  if a in bal or a != "BNB"]
        parts = []
        for a in assets:
            free, locked = bal.get(a, (Decimal(0), Decimal(0)))
            parts.append(f"{a} {free.normalize():f} free" + (f" + {locked.normalize():f} locked" if locked else ""))
        log.info("[BALANCE] Successfully fetched balances (%s): %s; wealth %.8f %s", self.opts.mode,
                 ", ".join(parts), self.wealth_of(bal), getattr(f, "quote", "BTC"))

    def _recent_orders(self) -> list[Any]:
        return sorted(self.account.recent_orders(), key=lambda o: o.order_id)

    def _our_orders(self) -> list[Any]:
        """This executor's recent orders on the account (client ids with our prefix), oldest first."""
        return [o for o in self._recent_orders() if o.client_id.startswith(id_prefix(self.opts.symbol))]

    def _reconcile(self, ours: list[Any]) -> None:
        assert self.state is not None and self.runner is not None
        st = self.state
        if st.pending is not None:
            p = st.pending
            log.warning("reconciling bar %s interrupted by a crash: orders %s", utc_iso(p.bar_open_ms), p.orders)
            ex = self.runner.reconcile(p.bar_open_ms, p.orders)
            st.note(f"reconciled bar {utc_iso(p.bar_open_ms)}: filled {ex.qty_filled} ({'; '.join(ex.notes)})")
            st.pending = None
            st.open_order_ids = []
            st.fills = len(self.ledger.trade_ids)
            self.save()
        for info in self.account.open_orders():
            if info.client_id.startswith(id_prefix(self.opts.symbol)):
                log.warning("cancelling stray open order %s of this executor", info.client_id)
                self.runner.reconcile(bar_of(info.client_id) or 0, [info.client_id])
        if any(o.is_open for o in ours):  # an order open in the start-up snapshot may have filled since
            ours = self._our_orders()
        added = self.runner.adopt_fills(ours)
        if added:
            log.warning("ledger: appended %d fills found on the exchange but missing locally", added)
            st.note(f"ledger: adopted {added} missing fills")
        if st.last_decision and (self.journal.last_bar is None or self.journal.last_bar < st.last_bar_open_ms):
            self.journal.append(st.last_decision)  # the crash came between state and journal

    def _reset_risk(self) -> None:
        assert self.state is not None
        arr = self.state.kernel_array()
        log.warning("--reset-risk: clearing drawdown latch (was %s) and daily pause (was %s); peak restarts "
                    "from current wealth", bool(arr[S_MAXDD_HIT]), bool(arr[S_DAILY_PAUSED]))
        arr[S_MAXDD_HIT] = 0.0
        arr[S_DAILY_PAUSED] = 0.0
        arr[S_PEAK] = math.nan
        self.state.set_kernel(arr)
        self.state.note("operator reset the risk breaker (--reset-risk)")

    def save(self) -> None:
        assert self.state is not None
        for hook in self.save_hooks:
            hook(self.state)
        self.store.save(self.state)

    # -- the loop -----------------------------------------------------------------------------------
    def run(self) -> None:
        """Poll until stopped (or ``max_bars`` decided), waking at bar closes."""
        while not self.stop.is_set():
            try:
                self.poll_once()
            except ExchangeError as exc:
                log.error("exchange trouble, will retry: %s", exc)
                for hook in self.on_error:
                    hook(str(exc))
            for tick in self.on_tick:
                tick()
            if self.opts.max_bars is not None and self.bars_this_run >= self.opts.max_bars:
                log.info("decided %d bars (--max-bars); stopping", self.bars_this_run)
                break
            self.clock.sleep(self._sleep_for())

    def _sleep_for(self) -> float:
        now = self.market.now_ms()
        next_close = (now // self.opts.interval_ms + 1) * self.opts.interval_ms
        until_close = (next_close - now) / 1000.0 + self.opts.close_delay_sec
        throttle = self.market.throttle_until - time.monotonic()
        return max(min(until_close, self.opts.poll_sec), throttle, 0.0)

    def poll_once(self) -> list[BarReport]:
        """Decide every bar closed since the last one (acting on the newest only)."""
        st = self.state
        assert st is not None and self.runner is not None
        if st.pending is not None:  # an earlier attempt at this bar failed half-way
            self._reconcile([])
        df = self.feed.refresh()
        if df.empty:
            return []
        open_ms = index_ms(df.index)
        new = np.flatnonzero(open_ms > (st.last_bar_open_ms if st.last_bar_open_ms is not None else -1))
        if len(new) == 0:
            return []
        if st.last_bar_open_ms is None:
            new = new[-1:]  # a fresh session starts deciding at the newest closed bar
        reports: list[BarReport] = []
        balances = self.last_balances = self.account.balances()
        btc, eth = self.holdings(balances)
        extra = self._extra_wealth(balances)
        if len(new) > 1:
            log.warning("catch-up: %d bars closed since the last decision (%s); advancing the signal through "
                        "%d missed bars without orders, acting on %s", len(new), st.last_bar_close, len(new) - 1,
                        utc_iso(int(open_ms[new[-1]])))
            ind = self.strategy.indicators(df)
            arr = st.kernel_array()
            for k in new[:-1]:
                d = self.strategy.step(arr, df.iloc[: k + 1], btc, eth, extra, ind=_slice(ind, k + 1))
                reports.append(self._report(d, d.reason, btc, eth, catchup=True))
            for r in reports:  # journal first: a crash before the save repeats identical rows, loses none
                self._journal(r)
            st.set_kernel(arr)
            st.last_bar_open_ms = int(open_ms[new[-2]])
            st.last_bar_close = utc_iso(st.last_bar_open_ms + self.opts.interval_ms)
            st.bars_decided += len(new) - 1
            self.save()
        reports.append(self._act(df, btc, eth, extra))
        return reports

    def _act(self, df: pd.DataFrame, btc: float, eth: float, extra: float) -> BarReport:
        st = self.state
        assert st is not None and self.runner is not None and self.filters is not None
        arr = st.kernel_array()
        d = self.strategy.step(arr, df, btc, eth, extra)
        bar = d.bar_open_ms
        if st.session_start_price is None:
            st.session_start_price = d.close
        st.set_kernel(arr)
        st.last_bar_open_ms = bar
        st.last_bar_close = utc_iso(bar + self.opts.interval_ms)
        st.bars_decided += 1
        final, ex = d.reason, None
        if d.reason == "trade":
            side = "BUY" if d.delta_eth > 0 else "SELL"
            wanted = self.filters.qty(D(abs(d.delta_eth)))
            if self.filters.too_small(wanted, D(d.close)):
                final = "min_notional"
                log.info("bar %s: trade of %s below the exchange minimum; dust left alone", utc_iso(bar), wanted)
            else:
                st.pending = Pending(bar_open_ms=bar, side=side, qty=str(wanted), started=utc_iso())
                st.last_decision = _journal_record(self._report(d, "trade", btc, eth))
                self.save()  # the intent is on disk before any order exists
                failpoints.hit("after_intent_saved")

                def record(cid: str) -> None:
                    assert st.pending is not None
                    st.pending.orders.append(cid)
                    st.open_order_ids = [cid]
                    st.orders_sent += 1
                    self.save()

                try:
                    ex = self.runner.execute(self.opts.symbol, bar, side, wanted, record)
                    final = ex.reason
                except ExchangeError as exc:
                    log.error("bar %s: orders failed (%s); reconciling", utc_iso(bar), exc)
                    ex = self.runner.reconcile(bar, st.pending.orders)
                    final = "exchange_error"
                st.pending = None
                st.open_order_ids = []
                self.last_balances = self.account.balances()
                btc, eth = self.holdings(self.last_balances)
        st.fills = len(self.ledger.trade_ids)
        report = self._report(d, final, btc, eth, execution=ex)
        st.last_decision = _journal_record(report)
        self.save()
        failpoints.hit("after_state_saved")
        self._journal(report)
        self.bars_this_run += 1
        return report

    # -- helpers ------------------------------------------------------------------------------------
    def holdings(self, balances: dict[str, tuple[Decimal, Decimal]]) -> tuple[float, float]:
        """(quote, base) totals, free + locked: the R18 holdings."""
        f = self.filters or self.market.filters()
        zero = (Decimal(0), Decimal(0))
        return float(sum(balances.get(f.quote, zero))), float(sum(balances.get(f.base, zero)))

    def wealth_of(self, balances: dict[str, tuple[Decimal, Decimal]]) -> float:
        """Wealth in the quote asset at the last traded price."""
        btc, eth = self.holdings(balances)
        return btc + eth * float(self.market.last_price()) if eth else btc

    def _extra_wealth(self, balances: dict[str, tuple[Decimal, Decimal]]) -> float:
        """BNB fee wallet in BTC (risk rules only, SPEC R18/R23); 0 when not modelled or not priced."""
        bnb = float(sum(balances.get("BNB", (Decimal(0), Decimal(0)))))
        if bnb <= 0 or not self.strategy.config.fees.pay_fees_in_bnb:
            return 0.0
        try:
            return bnb * float(self.market.last_price("BNB" + (self.filters.quote if self.filters else "BTC")))
        except ExchangeError:
            return 0.0

    def _report(self, d: Decision, final: str, btc: float, eth: float, catchup: bool = False,
                execution: Execution | None = None) -> BarReport:
        assert self.state is not None
        w = btc + eth * d.close
        return BarReport(d, final, btc, eth, w, w - self.state.session_start_w, catchup, execution)

    def _journal(self, r: BarReport) -> None:
        self.journal.append(_journal_record(r))
        for hook in self.on_bar:
            hook(r)


def fresh_state_for(opts: EngineOptions, start_w: float) -> LiveState:
    return fresh_state(opts.mode, opts.symbol, opts.interval, start_w)


def _slice(ind: Any, n: int) -> Any:
    return replace(ind, **{k: v[:n] for k, v in vars(ind).items()})


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), 10)


def _journal_record(r: BarReport) -> dict[str, Any]:
    d, ex = r.decision, r.execution
    return {
        "bar_time": utc_iso(d.bar_open_ms), "bar_open_ms": d.bar_open_ms, "close": d.close, "reason": d.reason,
        "final_reason": r.final_reason, "signal": d.signal, "target_w": _num(d.target_w),
        "desired_w": _num(d.desired_w), "w_cur": _num(d.w_cur), "ratio": _num(d.ratio),
        "entry_band": _num(d.entry_band), "exit_band": _num(d.exit_band), "gate_open": int(d.gate_open),
        "btc": _num(r.btc), "eth": _num(r.eth), "wealth_btc": _num(r.wealth), "pnl_btc": _num(r.pnl),
        "side": ex.side if ex else "", "qty_ordered": str(ex.qty_ordered) if ex else "",
        "qty_filled": str(ex.qty_filled) if ex else "", "catchup": int(r.catchup),
    }
