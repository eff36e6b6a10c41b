"""The edges of the live order rules (issue 22), against the paper exchange over real HTTP:
the 0.999 fee reserve when the whole free balance would be spent (SPEC R32), and the client id
on disk at the very moment an order leaves (SPEC R31).

A recording account wraps the real :class:`~ethbtc.live.exchange.Exchange`: every
``place_order`` first reads the state file from disk (what a crash at that instant would leave),
then sends the order to the simulator unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ethbtc.live.exchange import Exchange
from ethbtc.live.filters import SymbolFilters, ceil_step, floor_step
from ethbtc.live.orders import FEE_RESERVE, bar_of
from ethbtc.live.state import StateStore
from ethbtc.sim import SimServer
from tests.support.live_harness import active_config, drive, fast_dir, make_engine

_ = fast_dir
Factory = Callable[..., SimServer]


@dataclass
class Sent:
    client_id: str
    side: str
    type_: str
    qty: Decimal
    price: Decimal | None
    free: dict[str, Decimal]  # free balances just before the order left
    pending_bar: int | None  # the state file on disk at that moment
    pending_orders: list[str]
    open_order_ids: list[str]


class RecordingAccount:
    """The real exchange account, noting the state on disk as each order is sent."""

    def __init__(self, inner: Exchange, state_file: Path) -> None:
        self.inner = inner
        self.store = StateStore(state_file)
        self.sent: list[Sent] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def place_order(self, client_id: str, side: str, type_: str, qty: Decimal, price: Decimal | None = None) -> Any:
        st = self.store.load()
        pend = st.pending if st is not None else None
        free = {a: v[0] for a, v in self.inner.balances().items()}
        self.sent.append(Sent(client_id, side, type_, qty, price, free, pend.bar_open_ms if pend else None,
                              list(pend.orders) if pend else [], list(st.open_order_ids) if st else []))
        return self.inner.place_order(client_id, side, type_, qty, price)


def recording_engine(sim: SimServer, folder: Path, **cfg: Any) -> tuple[Any, RecordingAccount]:
    engine = make_engine(sim, active_config(**cfg), folder)
    acct = RecordingAccount(engine.market, folder / "state.json")
    engine.account = acct  # the order runner is built on start() with this account
    acct.hooked_fills, acct.hooked_orders = [], []  # type: ignore[attr-defined]
    engine.on_fill = acct.hooked_fills.append  # type: ignore[attr-defined]
    engine.on_order = lambda info, kind, secs, cancelled: acct.hooked_orders.append((info, kind, cancelled))  # type: ignore[attr-defined]
    engine.start()
    return engine, acct


def test_r31_each_client_id_is_on_disk_before_its_order_is_sent(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31: the bar's intent and each order's client id are in the state file when
    place_order is called, so a crash between send and save is reconciled by id."""
    engine, acct = recording_engine(sim, fast_dir)
    drive(sim, engine, 30)
    makers = [s for s in acct.sent if s.type_ == "LIMIT_MAKER"]
    assert len(makers) >= 3, "the active config trades roughly one bar in three"
    for s in acct.sent:
        assert s.pending_bar == bar_of(s.client_id), s
        assert s.client_id in s.pending_orders and s.open_order_ids == [s.client_id], s
    # the metrics hooks see every new fill once and every order's final state (a MARKET order is
    # never "cancelled after ttl"; a LIMIT_MAKER is exactly when it was still open at the ttl)
    ledger = (fast_dir / "trades_log.csv").read_text().splitlines()[1:]
    assert len(acct.hooked_fills) == len(ledger) > 0  # type: ignore[attr-defined]
    hooked = acct.hooked_orders  # type: ignore[attr-defined]
    assert len(hooked) == len(acct.sent)
    assert all(not cancelled for _, kind, cancelled in hooked if kind == "market")


@pytest.mark.parametrize(("side", "balances"), [("BUY", {"BTC": "1", "ETH": "0", "BNB": "0"}),
                                                ("SELL", {"BTC": "0", "ETH": "20", "BNB": "0"})])
def test_r32_an_order_for_the_whole_free_balance_keeps_the_fee_reserve(
        sim_factory: Factory, fast_dir: Path, side: str, balances: dict[str, str]) -> None:
    """SPEC R32: quantity within free balance x 0.999. Asked for far more than the account
    holds, the runner sends exactly the step-rounded 0.999 share of the free balance."""
    assert Decimal("0.999") == FEE_RESERVE
    sim = sim_factory(balances=balances)
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=False, ttl_sec=1.0)
    engine.runner.execute("ETHBTC", 1_614_556_800_000, side, Decimal("1000"), lambda cid: None)
    first = acct.sent[0]
    assert first.type_ == "LIMIT_MAKER" and first.price is not None
    step = engine.filters.step_size
    if side == "BUY":
        free = first.free["BTC"]
        assert free == Decimal("1")
        limit = free * Decimal("0.999") / first.price
        assert first.qty * first.price <= free * Decimal("0.999")
    else:
        free = first.free["ETH"]
        limit = free * Decimal("0.999")
        assert first.qty == Decimal("19.98")
    assert limit - step < first.qty <= limit  # the whole reserve-limited balance, rounded down once


def test_r32_a_full_position_from_the_engine_stays_within_the_reserve(sim: SimServer, fast_dir: Path) -> None:
    """The same rule through a real decision: all in (step 1, max position 1) from 1 BTC
    asks for the whole balance; every buy leaves at least 0.1 % of the free BTC."""
    engine, acct = recording_engine(sim, fast_dir, step_allocation=1.0, rebalance_threshold_w=0.0)
    drive(sim, engine, 30)
    buys = [s for s in acct.sent if s.side == "BUY" and s.type_ == "LIMIT_MAKER" and s.price is not None]
    assert buys
    for s in buys:
        assert s.qty * s.price <= s.free["BTC"] * Decimal("0.999"), s
    assert any(s.free["BTC"] * Decimal("0.999") / s.price - s.qty < engine.filters.step_size
               for s in buys if s.free["BTC"] >= Decimal("0.9")), "no buy asked for the whole balance"



# --- SPEC R32 rounding filters from exchangeInfo (survivors of make mutation, killed) ------------

def _info(*filters: dict[str, str | bool]) -> dict[str, Any]:
    """An exchangeInfo body shaped as Binance documents it, for one symbol with ``filters``."""
    return {"symbols": [{"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC", "filters": list(filters)}]}


PRICE = {"filterType": "PRICE_FILTER", "tickSize": "0.00001"}
LOT = {"filterType": "LOT_SIZE", "stepSize": "0.0001", "minQty": "0.0001", "maxQty": "100000"}


def test_r32_filters_fall_back_where_binance_leaves_a_filter_out_or_zero():
    """MARKET_LOT_SIZE with stepSize/maxQty 0 (or absent) means the LOT_SIZE step and no market
    cap; LOT_SIZE maxQty 0 means no cap; no NOTIONAL/MIN_NOTIONAL filter means no minimum, and the
    minimum then applies to market orders too."""
    f = SymbolFilters.from_exchange_info(_info(PRICE, LOT | {"maxQty": "0"},
                                               {"filterType": "MARKET_LOT_SIZE", "stepSize": "0", "maxQty": "0"}),
                                         "ETHBTC")
    assert f.market_step_size == Decimal("0.0001") and f.market_max_qty == Decimal("1e12")
    assert f.max_qty == Decimal("1e12") and f.min_notional == 0 and f.apply_min_to_market is True
    f = SymbolFilters.from_exchange_info(_info(PRICE, LOT), "ETHBTC")
    assert f.max_qty == Decimal("100000") and f.market_step_size == Decimal("0.0001")


def test_r32_market_orders_use_the_market_lot_filter_limit_orders_the_lot_filter():
    f = SymbolFilters.from_exchange_info(_info(
        PRICE, LOT, {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.01", "minQty": "0", "maxQty": "50"},
        {"filterType": "NOTIONAL", "minNotional": "0.0001", "applyMinToMarket": False}), "ETHBTC")
    assert f.market_step_size == Decimal("0.01") and f.market_max_qty == Decimal("50")
    assert f.qty(Decimal("1.23456")) == Decimal("1.2345")  # default: a limit order, LOT_SIZE step
    assert f.qty(Decimal("1.23456"), market=True) == Decimal("1.23")
    assert f.qty(Decimal("999")) == Decimal("999") and f.qty(Decimal("999"), market=True) == Decimal("50")
    # the minimum notional binds limit orders always, market orders only with applyMinToMarket
    assert f.too_small(Decimal("0.001"), Decimal("0.05")) == "min_notional"
    assert f.too_small(Decimal("0.001"), Decimal("0.05"), market=True) is None
    legacy = SymbolFilters.from_exchange_info(_info(
        PRICE, LOT, {"filterType": "MIN_NOTIONAL", "minNotional": "0.0001"}), "ETHBTC")
    assert legacy.min_notional == Decimal("0.0001") and legacy.apply_min_to_market is True


def test_r32_zero_quantity_is_too_small_even_without_a_minimum_quantity():
    f = SymbolFilters.from_exchange_info(_info(PRICE, LOT | {"minQty": "0"}), "ETHBTC")
    assert f.too_small(Decimal("0"), Decimal("0.05")) == "min_qty"
    assert f.too_small(Decimal("0.0001"), Decimal("0.05")) is None
    at_min = SymbolFilters.from_exchange_info(_info(PRICE, LOT), "ETHBTC")  # minQty 0.0001: exactly it is fine
    assert at_min.too_small(Decimal("0.0001"), Decimal("0.05")) is None
    assert at_min.too_small(Decimal("0.00009"), Decimal("0.05")) == "min_qty"


def test_r32_a_zero_step_leaves_the_value_unrounded_and_filters_are_immutable():
    assert floor_step(Decimal("1.23456"), Decimal("0")) == Decimal("1.23456")
    assert ceil_step(Decimal("1.23456"), Decimal("0")) == Decimal("1.23456")
    f = SymbolFilters.from_exchange_info(_info(PRICE, LOT), "ETHBTC")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.min_qty = Decimal("0")  # type: ignore[misc]


# --- SPEC R32 order life cycle (survivors of make mutation, killed) -------------------------------

def test_r32_status_polls_are_at_most_a_tenth_of_the_ttl(sim: SimServer, fast_dir: Path) -> None:
    engine, _ = recording_engine(sim, fast_dir, ttl_sec=1.0, poll_sec=5.0)
    assert engine.runner.poll == pytest.approx(0.1)
    engine2, _ = recording_engine(sim, fast_dir / "b", ttl_sec=0.1, poll_sec=5.0)
    assert engine2.runner.poll == pytest.approx(0.05)  # floor: not faster than every 50 ms


def test_r32_an_order_below_the_minimum_is_dust_reported_as_min_notional(sim: SimServer, fast_dir: Path) -> None:
    engine, acct = recording_engine(sim, fast_dir)
    ex = engine.runner.execute("ETHBTC", 1_614_556_800_000, "BUY", Decimal("0.00001"), lambda cid: None)
    assert ex.reason == "min_notional" and acct.sent == [] and "dust" in ex.notes[0]


@pytest.mark.parametrize("fallback", [True, False])
def test_r32_a_filled_limit_order_sends_nothing_more(sim: SimServer, fast_dir: Path, fallback: bool) -> None:
    """A LIMIT_MAKER that fills completely ends the bar: one order, no MARKET rest, no note."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=fallback, ttl_sec=3600.0)
    ex = engine.runner.execute("ETHBTC", 1_614_556_800_000, "BUY", Decimal("0.5"), lambda cid: None)
    assert ex.qty_filled == Decimal("0.5"), ex
    assert [s.type_ for s in acct.sent] == ["LIMIT_MAKER"] and ex.notes == [] and ex.reason == "trade"


def test_r31_reconcile_goes_past_an_id_that_was_never_sent(sim: SimServer, fast_dir: Path) -> None:
    """After a crash the bar's ids are checked one by one: an id that never left the machine is
    noted and the next one is still reconciled."""
    engine, _ = recording_engine(sim, fast_dir)
    bar = 1_614_556_800_000
    unsent, sent = "eb-ETHBTC-1614556800000-BL0", "eb-ETHBTC-1614556800000-BM0"
    engine.market.place_order(sent, "BUY", "MARKET", Decimal("0.5"))
    ex = engine.runner.reconcile(bar, [unsent, sent])
    assert ex.qty_filled == Decimal("0.5") and f"{unsent} was never placed" in ex.notes
