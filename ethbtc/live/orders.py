"""One bar's orders (SPEC R32) and the reconciliation of a bar a crash interrupted (R31).

A trade decision becomes a post-only LIMIT_MAKER order at the best bid (buy) / ask (sell),
rounded to the symbol's filters, sized within free balance x 0.999 (fee reserve). If the book
moved so the order would take, it is re-priced (up to three attempts). It rests until filled
or ``ttl_sec``, then is cancelled; with ``taker_fallback`` the unfilled rest goes MARKET.
Every fill is read back from the exchange's own trade records into the ledger, so partial
fills are accounted for exactly. A rest below the exchange minimum is dust: reported, never
retried.

Client order ids are deterministic -- ``eb-<SYMBOL>-<bar open ms>-<B|S><L|M><attempt>`` -- and
each id is written to the state file (the bar's ``pending`` intent) BEFORE it is sent, so after
any crash the executor knows exactly which orders may exist and a retried request can never
create a second order.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from . import failpoints
from .errors import ExchangeError, OrderRejected, WouldTake
from .exchange import Fill, OrderInfo
from .filters import SymbolFilters
from .ledger import TradeLedger

log = logging.getLogger("ethbtc.live.orders")
FEE_RESERVE = Decimal("0.999")
MAKER_ATTEMPTS = 3


class Account(Protocol):
    def balances(self) -> dict[str, tuple[Decimal, Decimal]]: ...
    def place_order(self, client_id: str, side: str, type_: str, qty: Decimal,
                    price: Decimal | None = None) -> OrderInfo: ...
    def get_order(self, client_id: str) -> OrderInfo | None: ...
    def cancel_order(self, client_id: str) -> OrderInfo | None: ...
    def open_orders(self) -> list[OrderInfo]: ...
    def recent_orders(self, limit: int = 1000) -> list[OrderInfo]: ...
    def order_fills(self, order: OrderInfo) -> list[Fill]: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


def id_prefix(symbol: str) -> str:
    sym = symbol if len(symbol) <= 12 else f"{symbol[:8]}{zlib.crc32(symbol.encode()) & 0xFFFF:04x}"
    return f"eb-{sym}-"


def client_id(symbol: str, bar_open_ms: int, side: str, kind: str, attempt: int) -> str:
    """Deterministic id of an order of one bar (Binance allows 36 chars of [.A-Za-z0-9:/_-])."""
    cid = f"{id_prefix(symbol)}{bar_open_ms}-{side[0]}{kind}{attempt}"
    assert len(cid) <= 36, cid
    return cid


def bar_of(cid: str) -> int | None:
    """The bar open time encoded in one of our client ids (None for foreign ids)."""
    parts = cid.split("-")
    try:
        return int(parts[2]) if len(parts) == 4 and parts[0] == "eb" else None
    except ValueError:
        return None


@dataclass
class Execution:
    """What one bar's orders achieved."""

    reason: str = "trade"  # or a live blocker: min_notional, insufficient_balance, order_rejected, exchange_error
    side: str = ""
    qty_ordered: Decimal = Decimal(0)
    qty_filled: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class OrderRunner:
    def __init__(self, account: Account, book: Callable[[], tuple[Decimal, Decimal]], filters: SymbolFilters,
                 ledger: TradeLedger, clock: Clock, stop: threading.Event, *, ttl_sec: float, taker_fallback: bool,
                 poll_sec: float = 1.0) -> None:
        self.account = account
        self.book = book
        self.f = filters
        self.ledger = ledger
        self.clock = clock
        self.stop = stop
        self.ttl = ttl_sec
        self.fallback = taker_fallback
        self.poll = min(poll_sec, max(ttl_sec / 10.0, 0.05))  # order-status checks while an order rests
        # metrics hooks: an order's final state (order, 'limit_maker'|'market', seconds, cancelled after ttl)
        self.on_order: Callable[[OrderInfo, str, float, bool], None] | None = None
        self.on_fill: Callable[[Fill], None] | None = None

    # -- sizing ----------------------------------------------------------------------------------
    def capped_qty(self, side: str, wanted: Decimal, price: Decimal, market: bool) -> Decimal:
        """``wanted`` limited to free balance x 0.999 and rounded down to the lot step."""
        bal = self.account.balances()
        if side == "BUY":
            free_quote = bal.get(self.f.quote, (Decimal(0), Decimal(0)))[0]
            cap = free_quote * FEE_RESERVE / price
        else:
            cap = bal.get(self.f.base, (Decimal(0), Decimal(0)))[0] * FEE_RESERVE
        return self.f.qty(min(wanted, cap), market=market)

    # -- one bar -----------------------------------------------------------------------------------
    def execute(self, symbol: str, bar_open_ms: int, side: str, wanted: Decimal,
                record: Callable[[str], None]) -> Execution:
        """Trade ``wanted`` base units on ``side`` for the bar; ``record(cid)`` persists intent."""
        ex = Execution(side=side)
        remaining = wanted
        try:
            for attempt in range(MAKER_ATTEMPTS):
                if self.stop.is_set():
                    break
                bid, ask = self.book()
                price = self.f.price_for(side, bid if side == "BUY" else ask)
                qty = self.capped_qty(side, remaining, price, market=False)
                small = self.f.too_small(qty, price)
                if small:
                    ex.reason = "min_notional" if ex.qty_filled == 0 else ex.reason
                    ex.notes.append(f"dust {qty} below {small}; not traded")
                    return ex
                cid = client_id(symbol, bar_open_ms, side, "L", attempt)
                record(cid)
                failpoints.hit("before_order_sent")
                sent = self.clock.monotonic()
                try:
                    info = self.account.place_order(cid, side, "LIMIT_MAKER", qty, price)
                except WouldTake:
                    ex.notes.append(f"{cid} would take at {price}; re-pricing")
                    continue
                failpoints.hit("after_order_placed")
                ex.qty_ordered = qty
                info = self._rest(info, sent)
                self._account_fills(info, bar_open_ms, ex)
                remaining = wanted - ex.qty_filled
                break
            if self.fallback and not self.stop.is_set() and remaining > 0:
                self._market(symbol, bar_open_ms, side, remaining, record, ex)
            elif remaining > 0 and ex.qty_filled > 0:
                ex.notes.append(f"{remaining} unfilled after ttl (no taker fallback)")
        except OrderRejected as exc:
            ex.reason = exc.reason
            ex.notes.append(str(exc))
        return ex

    def _rest(self, info: OrderInfo, sent: float) -> OrderInfo:
        """Wait for a resting order until filled, ttl or stop; cancel what is left open."""
        deadline = sent + self.ttl
        while info.is_open and not self.stop.is_set():
            left = deadline - self.clock.monotonic()
            if left <= 0:
                break
            self.clock.sleep(min(self.poll, left))
            info = self.account.get_order(info.client_id) or info
        cancelled = info.is_open
        if cancelled:
            info = self.account.cancel_order(info.client_id) or info
        if self.on_order is not None:
            self.on_order(info, "limit_maker", self.clock.monotonic() - sent, cancelled)
        return info

    def _market(self, symbol: str, bar_open_ms: int, side: str, remaining: Decimal,
                record: Callable[[str], None], ex: Execution) -> None:
        bid, ask = self.book()
        touch = ask if side == "BUY" else bid
        qty = self.capped_qty(side, remaining, touch, market=True)
        small = self.f.too_small(qty, touch, market=True)
        if small:
            if ex.qty_filled == 0:
                ex.reason = "min_notional"
            ex.notes.append(f"rest {remaining} is dust below {small}; left alone")
            return
        cid = client_id(symbol, bar_open_ms, side, "M", 0)
        record(cid)
        failpoints.hit("before_order_sent")
        sent = self.clock.monotonic()
        info = self.account.place_order(cid, side, "MARKET", qty)
        failpoints.hit("after_order_placed")
        ex.qty_ordered = ex.qty_ordered or qty  # the bar's order size is its first order's
        if self.on_order is not None:
            self.on_order(info, "market", self.clock.monotonic() - sent, False)
        self._account_fills(info, bar_open_ms, ex)

    def _account_fills(self, info: OrderInfo, bar_open_ms: int, ex: Execution | None) -> list[Fill]:
        """Copy an order's fills from the exchange into the ledger (exactly its executed qty)."""
        fills: list[Fill] = []
        for _ in range(5):
            fills = self.account.order_fills(info) if info.executed_qty > 0 else []
            if sum((f.qty for f in fills), Decimal(0)) == info.executed_qty:
                break
            self.clock.sleep(0.2)  # the trade records can trail the order status by a moment
            info = self.account.get_order(info.client_id) or info
        else:
            raise ExchangeError(f"fills of {info.client_id} do not add up to its executed quantity "
                                f"{info.executed_qty}")
        for fill in fills:
            if self.ledger.append(fill, bar_open_ms):
                failpoints.hit("after_ledger_row")
                if self.on_fill is not None:
                    self.on_fill(fill)
        if ex is not None:
            ex.fills.extend(fills)
            ex.qty_filled += info.executed_qty
            ex.quote += info.cum_quote
        return fills

    # -- after a crash ----------------------------------------------------------------------------
    def reconcile(self, bar_open_ms: int, client_ids: list[str]) -> Execution:
        """Finish what a crash interrupted: cancel open orders of the bar, record all their fills."""
        ex = Execution()
        for cid in client_ids:
            info = self.account.get_order(cid)
            if info is None:
                ex.notes.append(f"{cid} was never placed")
                continue
            ex.side = info.side
            if info.is_open:
                info = self.account.cancel_order(cid) or info
                ex.notes.append(f"{cid} was open; cancelled")
            ex.qty_ordered += info.orig_qty
            self._account_fills(info, bar_open_ms, ex)
        return ex

    def adopt_fills(self, orders: list[OrderInfo]) -> int:
        """Append any fills of our (closed) orders missing from the ledger; returns how many."""
        before = len(self.ledger.trade_ids)
        for info in orders:
            if info.executed_qty > self.ledger.qty_by_order.get(info.order_id, Decimal(0)) and not info.is_open:
                self._account_fills(info, bar_of(info.client_id), None)
        return len(self.ledger.trade_ids) - before

