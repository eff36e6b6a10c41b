"""The edges of the live bar loop (issue 22, survivors of ``make mutation`` over
``ethbtc/live/engine.py``), against the paper exchange over real HTTP: when the loop wakes (at
a bar's close, SPEC R31), the ``last_bar_close`` it records (R31/R34), and a bar a failed
attempt left pending is reconciled before anything new is decided (R31).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ethbtc.live.engine import Engine, _num
from ethbtc.live.exchange import Exchange
from ethbtc.live.paper import PaperAccount
from ethbtc.live.state import Pending, StateError, StateStore, utc_iso
from ethbtc.sim import SimServer, SymbolRules
from tests.support.live_harness import active_config, drive, fast_dir, make_engine

_ = fast_dir
Factory = Callable[..., SimServer]
BAR_MS = 15 * 60_000


@pytest.mark.parametrize(("offset_ms", "until_close_s"), [(0, 900.0), (1, 899.999), (BAR_MS - 1, 0.001)])
def test_r31_the_loop_sleeps_until_the_next_bar_close(sim: SimServer, fast_dir: Path, offset_ms: int,
                                                      until_close_s: float) -> None:
    """SPEC R31: the executor wakes once per bar, close_delay_sec after the next close. Exactly at
    a bar's open the next close is a whole bar away; one millisecond before a close, 1 ms."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    day = 1_614_556_800_000  # 2021-03-01T00:00Z, a bar (and day) boundary
    engine.market.now_ms = lambda: day + offset_ms  # type: ignore[method-assign]
    engine.market.throttle_until = 0.0
    engine.opts.poll_sec = 10_000.0  # no cap: the wait is the time to the close
    delay = engine.opts.close_delay_sec
    assert engine._sleep_for() == pytest.approx(until_close_s + delay, abs=1e-9)
    engine.opts.poll_sec = 5.0  # the poll interval caps the wait
    assert engine._sleep_for() == pytest.approx(min(5.0, until_close_s + delay), abs=1e-9)
    engine.market.throttle_until = time.monotonic() + 2000.0  # told to back off (HTTP 429 Retry-After)
    assert engine._sleep_for() == pytest.approx(2000.0, abs=1.0)
    engine.market.throttle_until = time.monotonic() - 2000.0  # a back-off that has passed
    assert engine._sleep_for() == pytest.approx(min(5.0, until_close_s + delay), abs=1e-9)


def test_r31_last_bar_close_is_the_close_of_the_bar_acted_on(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31/R34: the state records the bar acted on by its close time (open + one bar), the
    v3 manual's ``last_bar_close``; the kline feed's last closed bar is that bar."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 2)
    st = StateStore(fast_dir / "state.json").load()
    assert st is not None and st.last_bar_open_ms is not None
    assert st.last_bar_close == utc_iso(st.last_bar_open_ms + BAR_MS)
    assert st.last_bar_close > utc_iso(st.last_bar_open_ms)
    assert st.bars_decided == 2
    # the decision as journaled: finite figures rounded to 1e-10, never blanked
    rec = st.last_decision
    assert rec is not None and rec["bar_open_ms"] == st.last_bar_open_ms
    for key in ("btc", "wealth_btc", "w_cur", "target_w"):
        assert isinstance(rec[key], float) and rec[key] == round(rec[key], 10), (key, rec[key])
    assert rec["btc"] + rec["eth"] * rec["close"] == pytest.approx(rec["wealth_btc"], abs=1e-9)


def test_journal_figures_that_are_not_finite_are_left_empty() -> None:
    """A NaN or infinite figure (an indicator in warm-up) is journaled empty, a finite one rounded."""
    assert _num(math.nan) is None and _num(math.inf) is None and _num(None) is None  # type: ignore[arg-type]
    assert _num(0.123456789012345) == 0.1234567890 and _num(2) == 2.0


def test_r31_a_bar_left_pending_is_reconciled_before_the_next_poll(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31: when an attempt at a bar failed half-way (its intent still pending in the state),
    the next poll first reconciles that bar's orders with the exchange: their fills reach the
    ledger and the intent is cleared, even when no new bar has closed."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 1)
    st = engine.state
    assert st is not None and st.pending is None and st.last_bar_open_ms is not None
    bar = st.last_bar_open_ms
    cid = f"eb-ETHBTC-{bar}-BM0"
    engine.market.place_order(cid, "BUY", "MARKET", Decimal("0.5"))  # sent, then the bar's attempt failed
    st.pending = Pending(bar_open_ms=bar, side="BUY", qty="0.5", orders=[cid], started=utc_iso())
    st.open_order_ids = [cid]
    before = len(engine.ledger.trade_ids)
    assert engine.poll_once() == []  # no new bar closed
    assert engine.state is not None and engine.state.pending is None and engine.state.open_order_ids == []
    assert len(engine.ledger.trade_ids) > before
    assert any(f"reconciled bar {utc_iso(bar)}" in e for e in engine.state.events)


def test_r31_a_missing_state_names_the_latest_of_our_orders(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31/R34: a lost state file with this executor's orders on the account is refused,
    naming the latest of them (the highest order id), not an arbitrary one."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    ids = [f"eb-ETHBTC-{1_614_556_800_000 + k * BAR_MS}-BM0" for k in range(3)]
    for cid in ids:
        engine.market.place_order(cid, "BUY", "MARKET", Decimal("0.01"))
    (fast_dir / "state.json").unlink()
    with pytest.raises(StateError, match="--fresh-state") as err:
        make_engine(sim, active_config(), fast_dir).start()
    assert "has 3 orders" in str(err.value) and f"(latest {ids[-1]})" in str(err.value)


def test_every_decided_bar_reaches_the_bar_hooks_once(sim: SimServer, fast_dir: Path) -> None:
    """The heartbeat and the metrics hang on ``on_bar``: each decided bar reaches every hook once,
    in order, with the journal's row for it."""
    engine = make_engine(sim, active_config(), fast_dir)
    seen: list[list[int]] = [[], []]
    engine.on_bar += [lambda r: seen[0].append(r.decision.bar_open_ms), lambda r: seen[1].append(r.decision.bar_open_ms)]
    engine.start()
    reports = drive(sim, engine, 20)
    assert seen[0] == seen[1] == [r.decision.bar_open_ms for r in reports] and len(reports) == 20
    # SPEC R18: wealth is BTC + ETH x close (both free + locked); from 1 BTC, a few bars of
    # trading on a random walk move it by far less than the ETH leg is worth
    assert any(r.eth * r.decision.close > 0.1 for r in reports), "the active config buys within 20 bars"
    for r in reports:
        assert r.wealth == pytest.approx(r.btc + r.eth * r.decision.close, rel=1e-12)
        assert abs(r.pnl) < 0.05 and r.pnl == pytest.approx(r.wealth - 1.0, abs=1e-9)


def test_r31_catch_up_saves_the_last_missed_bar_before_acting_on_the_newest(
        sim: SimServer, fast_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SPEC R31: after downtime the missed bars advance the signal and are saved as decided (the
    last missed one, not the newest) before the newest bar is acted on: a crash in between leaves
    the newest bar still to act on, never marked as done without its orders."""
    engine = make_engine(sim, active_config(), fast_dir)
    saved: list[int | None] = []
    engine.save_hooks.append(lambda st: saved.append(st.last_bar_open_ms))
    engine.start()
    drive(sim, engine, 2)
    saved.clear()
    sim.advance(6)  # down for 6 bars (new[2] and new[-2] differ)
    with caplog.at_level("WARNING", logger="ethbtc.live"):
        reports = engine.poll_once()
    newest = reports[-1].decision.bar_open_ms
    assert [r.catchup for r in reports] == [True] * 5 + [False]
    assert saved[0] == newest - BAR_MS  # the catch-up save: the last missed bar
    assert saved[-1] == newest
    assert f"through 5 missed bars without orders, acting on {utc_iso(newest)}" in caplog.text


def test_r31_start_cancels_our_stray_open_orders_and_leaves_foreign_ones(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31: on start the executor cancels open orders it placed itself (its client-id
    prefix) that no pending intent accounts for; an order placed by someone else stays open."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    bid, _ = engine.market.book()
    price = engine.filters.price_for("BUY", bid * Decimal("0.9"))  # rests far below the market
    ours, foreign = "eb-ETHBTC-1614556800000-BL0", "manual-order-1"
    for cid in (ours, foreign):
        engine.market.place_order(cid, "BUY", "LIMIT_MAKER", Decimal("0.01"), price)
    assert {o.client_id for o in engine.market.open_orders()} == {ours, foreign}
    make_engine(sim, active_config(), fast_dir).start()
    assert [o.client_id for o in engine.market.open_orders()] == [foreign]


@pytest.mark.parametrize(("bnb", "in_bnb", "extra"), [("2", True, 0.01), ("2", False, 0.0), ("0", True, 0.0)])
def test_r23_the_bnb_fee_wallet_counts_in_risk_wealth_only_when_fees_are_paid_in_bnb(
        sim_factory: Factory, fast_dir: Path, bnb: str, in_bnb: bool, extra: float) -> None:
    """SPEC R18/R23: with fees paid in BNB, the BNB wallet at the BNBBTC price is part of the
    wealth the risk rules measure; without BNB or with fees in the traded asset it adds nothing.
    The paper exchange lists one symbol, so BNBBTC's last price is given here (0.005 BTC)."""
    sim = sim_factory(balances={"BTC": "1", "ETH": "0", "BNB": bnb})
    engine = make_engine(sim, active_config(pay_fees_in_bnb=in_bnb), fast_dir)
    real = engine.market.last_price
    engine.market.last_price = lambda symbol=None: (  # type: ignore[method-assign]
        Decimal("0.005") if symbol == "BNBBTC" else real(symbol))
    engine.start()
    assert engine._extra_wealth(engine.account.balances()) == pytest.approx(extra, abs=1e-15)
    engine.market.last_price = real  # type: ignore[method-assign]  # the sim has no BNBBTC: not priced
    assert engine._extra_wealth(engine.account.balances()) == 0.0


def test_holdings_are_free_plus_locked_even_before_start(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R18: the holdings are free + locked of each asset (an order resting at a crash still
    counts); the engine can value an account before start() has loaded the filters."""
    engine = make_engine(sim, active_config(), fast_dir)
    bal = {"BTC": (Decimal("0.25"), Decimal("0.5")), "ETH": (Decimal("2"), Decimal("0.125")), "BNB": (Decimal(1), 0)}
    assert engine.holdings(bal) == (0.75, 2.125)  # type: ignore[arg-type]
    assert engine.holdings({}) == (0.0, 0.0)


def test_start_logs_each_balance_the_operators_look_for(sim_factory: Factory, fast_dir: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The v3 manual's start-up line: every asset's free (and locked) balance and the wealth."""
    sim = sim_factory(balances={"BTC": "0.5", "ETH": "3", "BNB": "1.5"})
    engine = make_engine(sim, active_config(), fast_dir)
    with caplog.at_level("INFO", logger="ethbtc.live"):
        engine.start()
    line = next(r.getMessage() for r in caplog.records if "[BALANCE]" in r.getMessage())
    assert "ETH 3 free, BTC 0.5 free, BNB 1.5 free; wealth" in line


def test_run_stops_after_exactly_max_bars_decisions(sim: SimServer, fast_dir: Path) -> None:
    """``--max-bars N``: the loop decides N bars and stops (not N + 1)."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.opts.max_bars = 3
    engine.opts.poll_sec = 10_000.0  # each wait runs to the next close (the sim clock jumps there)
    engine.start()
    engine.run()
    assert engine.bars_this_run == 3 and engine.state is not None and engine.state.bars_decided == 3


def test_r31_restart_journals_a_decision_the_journal_lacks_and_never_twice(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31: a crash between the state save and the journal row leaves the decision in the
    state only; the next start appends it -- also to a journal that was lost entirely -- and a
    start with the journal up to date appends nothing."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 2)
    journal = fast_dir / "decisions_log.csv"
    rows = journal.read_text().splitlines()
    assert len(rows) == 3  # header + 2 bars
    make_engine(sim, active_config(), fast_dir).start()
    assert journal.read_text().splitlines() == rows  # up to date: nothing appended
    journal.unlink()  # the journal lost: the last decision comes back from the state
    make_engine(sim, active_config(), fast_dir).start()
    again = journal.read_text().splitlines()
    assert len(again) == 2 and again[1] == rows[2]


def test_r31_r34_a_catch_up_records_the_last_missed_bar_by_its_close_and_counts_every_bar(
        sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31/R34: the catch-up save names the last missed bar by its close time (open + one
    bar, the v3 manual's ``last_bar_close``), and ``bars_decided`` counts every decided bar once:
    the missed ones at the catch-up save, the newest when it is acted on."""
    engine = make_engine(sim, active_config(), fast_dir)
    saved: list[tuple[int | None, str | None, int]] = []
    engine.save_hooks.append(lambda st: saved.append((st.last_bar_open_ms, st.last_bar_close, st.bars_decided)))
    engine.start()
    drive(sim, engine, 2)
    saved.clear()
    sim.advance(6)  # down for 6 bars: 5 missed, the newest acted on
    reports = engine.poll_once()
    newest = reports[-1].decision.bar_open_ms
    assert len(reports) == 6
    assert saved[0] == (newest - BAR_MS, utc_iso(newest), 2 + 5)  # the last missed bar closes as the newest opens
    st = StateStore(fast_dir / "state.json").load()
    assert st is not None and st.bars_decided == 2 + 6 and st.last_bar_close == utc_iso(newest + BAR_MS)


def test_the_session_start_price_is_the_first_decided_close_and_stays(sim: SimServer, fast_dir: Path) -> None:
    """The ETH-HODL line (``ethbtc_session_start_price``) compares against the close of the first
    bar the session decided: set once, kept through later bars and restarts."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    assert engine.state is not None and engine.state.session_start_price is None
    first = drive(sim, engine, 1)[0].decision.close
    later = drive(sim, engine, 3)
    assert any(r.decision.close != first for r in later)
    assert engine.state.session_start_price == first
    again = make_engine(sim, active_config(), fast_dir)
    again.start()
    drive(sim, again, 1)
    assert again.state is not None and again.state.session_start_price == first
    st = StateStore(fast_dir / "state.json").load()
    assert st is not None and st.session_start_price == first


def test_r34_a_breaker_flag_edited_in_the_state_file_is_logged_on_start(
        sim: SimServer, fast_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SPEC R34 / v3 manual: an operator's edit of ``risk_maxdd_hit`` in the stopped executor's
    state file takes effect on the next start, and that start says so in the log (the operator
    sees that the edit was read)."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 1)
    path = fast_dir / "state.json"
    data = json.loads(path.read_text())
    assert data["risk_maxdd_hit"] is False
    data["risk_maxdd_hit"] = True
    path.write_text(json.dumps(data))
    with caplog.at_level("WARNING", logger="ethbtc.live"):
        make_engine(sim, active_config(), fast_dir).start()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("state file: ")]
    assert lines == ["state file: operator set the drawdown breaker: risk_maxdd_hit edited to true in the state file"]


def test_r31_a_partly_filled_stray_order_is_cancelled_and_its_fills_booked_to_its_bar(
        sim_factory: Factory, fast_dir: Path) -> None:
    """SPEC R31: a stray order of ours still resting at start (a crash after the send, its intent
    lost) is cancelled, and the fills it got are copied to the ledger under the bar its client id
    names, so the per-bar accounting (R32) adds up."""
    sim = sim_factory(partial_fill=0.5)
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    bid, _ = engine.market.book()
    bar = 1_614_556_800_000 + 190 * BAR_MS
    cid = f"eb-ETHBTC-{bar}-BL0"
    engine.market.place_order(cid, "BUY", "LIMIT_MAKER", Decimal("0.5"), bid)
    for _ in range(20):  # the market moves down through the bid: part of the order fills
        sim.advance(0.1)
        info = engine.market.get_order(cid)
        if info is not None and info.executed_qty > 0:
            break
    assert info is not None and info.is_open and 0 < info.executed_qty < Decimal("0.5")
    make_engine(sim, active_config(), fast_dir).start()
    assert engine.market.open_orders() == []
    rows = [r for r in engine.ledger.rows() if r["client_order_id"] == cid]
    assert rows and {r["bar_open_ms"] for r in rows} == {str(bar)}
    assert sum(Decimal(r["qty"]) for r in rows) == info.executed_qty


def test_run_reports_exchange_trouble_to_the_error_hooks_and_ticks_every_iteration(
        sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31 (the loop survives exchange trouble and retries at the next wake): an exchange
    error that outlasts the retries reaches every ``on_error`` hook (the alert and the error
    counter hang there), and every loop iteration, failed or not, reaches the ``on_tick`` hooks
    (the liveness the /health endpoint reports)."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.opts.max_bars = 2
    engine.opts.poll_sec = 10_000.0  # each wait runs to the next close
    errors: list[list[str]] = [[], []]
    ticks: list[int] = []
    engine.on_error += [errors[0].append, errors[1].append]
    engine.on_tick.append(lambda: ticks.append(engine.bars_this_run))
    engine.start()
    attempts = engine.market.retry.attempts
    sim.set_faults(error_5xx=1.0, endpoints=["/api/v3/klines"], max_faults=attempts)  # one poll's every retry
    engine.run()
    assert engine.bars_this_run == 2
    assert errors[0] == errors[1] and len(errors[0]) == 1 and "klines" in errors[0][0]
    assert ticks == [0, 1, 2]  # the failed iteration ticks too, then one per decided bar


def test_a_requested_stop_ends_the_loop_at_the_next_iteration(sim: SimServer, fast_dir: Path) -> None:
    """The executor's SIGTERM/SIGINT handler sets the stop event it passed to the engine; the loop
    ends at its next check (no further bar decided). Without one, the engine makes its own."""
    base = make_engine(sim, active_config(), fast_dir)
    stop = threading.Event()
    engine = Engine(base.strategy, base.market, base.account, base.store, base.ledger, base.journal, base.opts,
                    clock=base.clock, stop=stop)
    engine.opts.max_bars = 5
    engine.opts.poll_sec = 10_000.0
    engine.on_bar.append(lambda r: stop.set())  # the signal arrives while the first bar is decided
    engine.start()
    engine.run()
    assert engine.bars_this_run == 1 and engine.stop is stop
    own = Engine(base.strategy, base.market, base.account, base.store, base.ledger, base.journal, base.opts,
                 clock=base.clock)
    assert isinstance(own.stop, threading.Event) and not own.stop.is_set()
    own.start()
    own.stop.set()
    own.run()
    assert own.bars_this_run == 0


def test_r23_the_bnb_fee_wallet_is_priced_in_the_symbols_quote_asset(sim_factory: Factory, fast_dir: Path) -> None:
    """SPEC R18/R23: the BNB fee wallet counts at BNB's price in the traded pair's quote asset
    (``BNB`` + quote), so a pair quoted in another asset asks for that asset's BNB price."""
    rules = SymbolRules(symbol="ETHUSDT", base="ETH", quote="USDT")
    sim = sim_factory(balances={"USDT": "1", "ETH": "0", "BNB": "2"}, rules=rules)
    engine = make_engine(sim, active_config(pay_fees_in_bnb=True), fast_dir)
    asked: list[str | None] = []
    real = engine.market.last_price

    def last_price(symbol: str | None = None) -> Decimal:
        asked.append(symbol)
        return Decimal("300") if symbol == "BNBUSDT" else real(symbol)

    engine.market.last_price = last_price  # type: ignore[method-assign]  # the sim lists one symbol
    engine.start()
    asked.clear()
    assert engine._extra_wealth(engine.account.balances()) == 600.0
    assert asked == ["BNBUSDT"]


@pytest.mark.parametrize(("paper", "expected"), [
    ({"free": {"BTC": "0.5"}}, "ETH 0 free, BTC 0.5 free; wealth"),  # a dry wallet that never held ETH or BNB
    (None, "ETH 0 free, BTC 1 free, BNB 0 free; wealth"),  # the exchange lists BNB (at zero)
])
def test_start_line_always_names_the_pair_and_bnb_only_when_the_account_lists_it(
        sim: SimServer, fast_dir: Path, caplog: pytest.LogCaptureFixture,
        paper: dict[str, Any] | None, expected: str) -> None:
    """The v3 manual's start-up line names both assets of the pair even at zero (the operator
    checks the pair is the one configured); BNB only when the account has a BNB balance at all
    (the exchange lists it, a dry mode paper wallet, SPEC R33, does not)."""
    account = None
    if paper is not None:
        market = Exchange(sim.base_url, "ETHBTC")
        market.sync_time()
        account = PaperAccount(market, market.filters(), 0.001, 0.001, paper)
    engine = make_engine(sim, active_config(), fast_dir, mode="dry" if paper else "testnet", account=account)
    with caplog.at_level("INFO", logger="ethbtc.live"):
        engine.start()
    line = next(r.getMessage() for r in caplog.records if "[BALANCE]" in r.getMessage())
    assert expected in line
