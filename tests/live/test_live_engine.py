"""The engine in-process against the paper exchange (real HTTP): once per bar, catch-up, orders,
reconciliation after a crash, state rules, dry mode."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from ethbtc.kernel import S_DAILY_PAUSED, S_MAXDD_HIT, S_PEAK
from ethbtc.live.exchange import Exchange
from ethbtc.live.orders import bar_of, client_id
from ethbtc.live.paper import PaperAccount
from ethbtc.live.replay import SimClock
from ethbtc.live.state import Pending, StateError, StateStore, fresh_state
from ethbtc.sim import SimServer, SymbolRules
from tests.support.live_harness import active_config, drive, fast_dir, make_engine, next_bar

_ = fast_dir
Factory = Callable[..., SimServer]


def our_orders(sim: SimServer) -> list[str]:
    with sim.engine.lock:
        return [o.client_order_id for o in sim.engine.orders.values()]


def journal(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "decisions_log.csv")


def test_a_bar_is_decided_once_and_acted_on_at_most_once(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31."""
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    reports = drive(sim, engine, 40)
    assert len(reports) == 40 and engine.poll_once() == []  # nothing new: nothing decided
    bars = [r.decision.bar_open_ms for r in reports]
    assert bars == sorted(set(bars)) and all(b - a == 900_000 for a, b in zip(bars, bars[1:], strict=False))
    traded = [r for r in reports if r.execution is not None]
    assert len(traded) >= 5
    per_bar: dict[int, set[str]] = {}
    for cid in our_orders(sim):
        per_bar.setdefault(bar_of(cid), set()).add(cid.rsplit("-", 1)[1][0])
    assert set(per_bar) == {r.decision.bar_open_ms for r in traded}  # orders only on trade bars
    assert all(len(sides) == 1 for sides in per_bar.values())  # one decision (one side) per bar
    j = journal(fast_dir)
    assert list(j["bar_open_ms"]) == bars and j["catchup"].sum() == 0


def test_missed_bars_advance_the_signal_without_orders(sim: SimServer, fast_dir: Path) -> None:
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 20)
    before = set(our_orders(sim))
    sim.advance(7)  # the executor was down for 7 bars
    reports = engine.poll_once()
    assert len(reports) == 7 and [r.catchup for r in reports] == [True] * 6 + [False]
    assert all(r.execution is None for r in reports[:-1])
    new_orders = set(our_orders(sim)) - before
    assert {bar_of(c) for c in new_orders} <= {reports[-1].decision.bar_open_ms}
    j = journal(fast_dir)
    assert list(j["bar_open_ms"].diff().dropna().unique()) == [900_000]  # every bar journaled, none twice
    assert j["catchup"].sum() == 6


def test_partial_fills_are_accounted_exactly_then_the_rest_goes_market(sim_factory: Factory, fast_dir: Path) -> None:
    """SPEC R32: a resting order fills a quarter per bar; after the ttl the rest is a MARKET order."""
    sim = sim_factory(partial_fill=0.25)
    engine = make_engine(sim, active_config(ttl_sec=2700.0), fast_dir)  # rests up to 3 bars
    engine.start()
    reports = drive(sim, engine, 60)
    fills = pd.read_csv(fast_dir / "trades_log.csv")
    ledger = sim.ledger()
    assert len(fills) == len(ledger) and sorted(fills["trade_id"]) == [f["tradeId"] for f in ledger]
    traded = [r for r in reports if r.execution is not None and r.execution.qty_filled > 0]
    assert traded
    for r in traded:
        rows = fills[fills["bar_open_ms"] == r.decision.bar_open_ms]
        assert Decimal(str(rows["qty"].sum())).quantize(Decimal("1e-8")) == r.execution.qty_filled
    by_order = fills.groupby("client_order_id")["qty"].count()
    assert (by_order > 1).any()  # partial fills happened
    assert fills["type"].isin(["LIMIT_MAKER", "MARKET"]).all() and (fills["type"] == "MARKET").any()


def test_restart_reconciles_the_bar_a_crash_interrupted(sim: SimServer, fast_dir: Path) -> None:
    cfg = active_config()
    engine = make_engine(sim, cfg, fast_dir)
    engine.start()
    drive(sim, engine, 15)
    st = engine.state
    assert st is not None and st.pending is None
    bar = st.last_bar_open_ms + 900_000
    next_bar(sim)
    # the crash: intent and orders are recorded, one order rests, one filled, one never left the machine
    resting, filled, unsent = (client_id("ETHBTC", bar, "BUY", k, 0) for k in ("L", "M", "X"))
    st.pending = Pending(bar_open_ms=bar, side="BUY", qty="1", orders=[resting, filled, unsent])
    st.last_bar_open_ms = bar
    engine.save()
    bid, _ = engine.market.book()
    engine.market.place_order(resting, "BUY", "LIMIT_MAKER", Decimal("1"), bid)
    engine.market.place_order(filled, "BUY", "MARKET", Decimal("0.5"))
    engine.ledger.close()
    restarted = make_engine(sim, cfg, fast_dir)
    state = restarted.start()
    assert state.pending is None and engine.market.open_orders() == []
    assert "reconciled" in state.events[-1]
    ledger = pd.read_csv(fast_dir / "trades_log.csv")
    assert sorted(ledger["trade_id"]) == [f["tradeId"] for f in sim.ledger()]
    assert restarted.poll_once() == []  # the interrupted bar is never decided again
    next_bar(sim)
    assert [r.decision.bar_open_ms for r in restarted.poll_once()] == [bar + 900_000]


def test_missing_ledger_rows_are_adopted_from_the_exchange(sim: SimServer, fast_dir: Path) -> None:
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 30)
    engine.ledger.close()
    rows = (fast_dir / "trades_log.csv").read_text().splitlines(keepends=True)
    assert len(rows) > 3
    (fast_dir / "trades_log.csv").write_text("".join(rows[:-2]))  # lost the last two rows
    make_engine(sim, active_config(), fast_dir).start()
    assert sorted(pd.read_csv(fast_dir / "trades_log.csv")["trade_id"]) == [f["tradeId"] for f in sim.ledger()]


def test_missing_state_with_our_orders_on_the_account_needs_fresh_state(sim: SimServer, fast_dir: Path) -> None:
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 20)
    assert our_orders(sim)
    (fast_dir / "state.json").unlink()
    with pytest.raises(StateError, match="--fresh-state") as err:
        make_engine(sim, active_config(), fast_dir).start()
    assert str(fast_dir / "state.json") in str(err.value)
    assert not (fast_dir / "state.json").exists()
    state = make_engine(sim, active_config(), fast_dir).start(fresh_state=True)
    assert state.last_bar_open_ms is None


def test_session_start_wealth_comes_from_the_real_balances(sim_factory: Factory, fast_dir: Path) -> None:
    sim = sim_factory(balances={"BTC": "0.5", "ETH": "3", "BNB": "0"})
    state = make_engine(sim, active_config(), fast_dir).start()  # basis_btc is 1.0: never the default
    price = float(sim.state()["price"])
    assert state.session_start_w == pytest.approx(0.5 + 3 * price, rel=1e-12)
    assert StateStore(fast_dir / "state.json").load() == state


def test_reset_risk_clears_the_latched_breaker(sim: SimServer, fast_dir: Path) -> None:
    state = fresh_state("testnet", "ETHBTC", "15m", 1.0)
    arr = state.kernel_array()
    arr[S_MAXDD_HIT], arr[S_DAILY_PAUSED], arr[S_PEAK] = 1.0, 1.0, 2.0
    state.set_kernel(arr)
    StateStore(fast_dir / "state.json").save(state)
    kept = make_engine(sim, active_config(), fast_dir).start()
    assert kept.kernel_array()[S_MAXDD_HIT] == 1.0  # breaker flags are never lost across restarts
    reset = make_engine(sim, active_config(), fast_dir).start(reset_risk=True)
    arr = reset.kernel_array()
    assert arr[S_MAXDD_HIT] == 0.0 and arr[S_DAILY_PAUSED] == 0.0 and arr[S_PEAK] != arr[S_PEAK]
    assert "--reset-risk" in reset.events[-1]


def test_state_of_another_mode_is_refused(sim: SimServer, fast_dir: Path) -> None:
    StateStore(fast_dir / "state.json").save(fresh_state("dry", "ETHBTC", "15m", 1.0))
    with pytest.raises(StateError, match="mode=dry"):
        make_engine(sim, active_config(), fast_dir).start()


def test_dry_mode_trades_a_paper_wallet_and_sends_no_order(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R33: public market data, paper wallet of basis_btc, simulated fills, no orders. SPEC R23 (v2):
    with pay_fees_in_bnb the paper wallet charges the discounted fee in the received asset (funded BNB)."""
    cfg = active_config(basis_btc=0.25, pay_fees_in_bnb=True, bnb_discount=0.25, maker_fee=0.001, taker_fee=0.001)
    market = Exchange(sim.base_url, "ETHBTC")  # no keys at all
    market.sync_time()
    paper = PaperAccount.for_config(market, market.filters(), cfg.fees, start_quote=0.25)
    engine = make_engine(sim, cfg, fast_dir, mode="dry", account=paper)
    engine.market = market
    engine.save_hooks.append(lambda st: setattr(st, "paper", paper.to_json()))
    state = engine.start()
    assert state.session_start_w == 0.25
    reports = drive(sim, engine, 60)
    assert sim.order_log == [] and sim.ledger() == []
    fills = pd.read_csv(fast_dir / "trades_log.csv")
    assert len(fills) >= 5 and set(fills["side"]) == {"BUY", "SELL"}
    for f in fills.to_dict("records"):
        got = Decimal(str(f["qty"])) if f["side"] == "BUY" else Decimal(str(f["quote_qty"]))
        assert Decimal(str(f["commission"])) == (got * Decimal("0.00075")).quantize(Decimal("1e-8"), ROUND_HALF_UP)
    saved = StateStore(fast_dir / "state.json").load()
    assert saved is not None and saved.paper is not None
    assert {a: Decimal(v) for a, v in saved.paper["free"].items()} == {a: fl for a, (fl, _) in paper.balances().items()}
    assert reports[-1].btc == float(sum(paper.balances()["BTC"]))
    restored = PaperAccount(market, market.filters(), 0.001, 0.001, saved.paper)
    assert restored.balances() == paper.balances()


def test_a_trade_below_the_exchange_minimum_is_dust(sim_factory: Factory, fast_dir: Path) -> None:
    """R21 in live: minimum = max(config, exchange minNotional); smaller moves are reported, never sent."""
    sim = sim_factory(rules=SymbolRules(min_notional=Decimal("5")))
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    reports = drive(sim, engine, 30)
    trades = [r for r in reports if r.decision.reason == "trade"]
    assert trades and all(r.final_reason == "min_notional" for r in trades)
    assert sim.order_log == []


def test_stop_during_a_resting_order_cancels_it_and_saves(sim: SimServer, fast_dir: Path) -> None:
    """SIGTERM while an order rests: cancel it, account its fills, persist, no taker fallback."""
    stop = threading.Event()

    class StopClock(SimClock):
        def sleep(self, seconds: float) -> None:
            stop.set()  # the signal arrives while the order rests

    engine = make_engine(sim, active_config(ttl_sec=3600.0), fast_dir, clock=StopClock(sim))
    engine.stop = stop
    engine.start()
    engine.runner.stop = stop  # type: ignore[union-attr]
    for _ in range(40):
        next_bar(sim)
        if any(r.execution is not None for r in engine.poll_once()):
            break
    assert stop.is_set() and our_orders(sim)
    assert engine.market.open_orders() == []
    assert not any(c.endswith("M0") for c in our_orders(sim))  # no fallback after a stop
    saved = StateStore(fast_dir / "state.json").load()
    assert saved is not None and saved.pending is None


def test_journal_gets_the_decision_a_crash_cut_off(sim: SimServer, fast_dir: Path) -> None:
    engine = make_engine(sim, active_config(), fast_dir)
    engine.start()
    drive(sim, engine, 5)
    engine.journal.close()
    lines = (fast_dir / "decisions_log.csv").read_text().splitlines(keepends=True)
    (fast_dir / "decisions_log.csv").write_text("".join(lines[:-1]))  # crash between state and journal
    make_engine(sim, active_config(), fast_dir).start()
    assert len(journal(fast_dir)) == 5
