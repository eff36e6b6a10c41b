"""Matching engine of the paper exchange: orders, balances, fills, fees, ledger. No HTTP here.

One spot symbol (ETHBTC by default). Amounts are Decimals with 8 decimals, so every balance
change is exact: a buy pays ``ceil8(price * executed)`` quote in total, a sell receives
``floor8(price * executed)`` (each fill takes the difference of those cumulative amounts), and
commissions are rounded half-up to 8 decimals (see :mod:`ethbtc.sim.fees`).

Orders: MARKET walks the synthetic book (:class:`~ethbtc.sim.market.BookModel`,
:func:`ethbtc.fillmodel.book_walk`, the backtest's taker fallback walks it too) level by level,
one fill per level (several fills in a FULL reply, a volume-weighted average worse than the
touch for an order larger than the touch); what the book cannot fill expires. LIMIT_MAKER is
rejected when it would cross the book, else it rests with its funds locked and fills, as maker
at its own price, up to the volume the replayed path trades through its price
(:func:`ethbtc.fillmodel.resting_fill`; ``fill_on_touch`` counts trading at the price too).
With ``partial_fill`` < 1 an order fills at most that share of its quantity per bar (one rule,
:func:`ethbtc.fillmodel.resting_fill_qty`, shared with the backtest; ``volume_fills`` turns the
volume cap on or off independently of ``ideal_fills``). LIMIT (GTC,
IOC, FOK) takes from the book up to its price when it crosses (FOK: all or nothing), then rests
(GTC) or expires.

``ideal_fills`` restores the earlier, kinder exchange: MARKET and crossing LIMIT orders fill
whole at the touch (moved by ``slippage_bps`` against the taker) and a resting order fills whole
the first time the price trades through it.

Callers hold :attr:`Engine.lock` around a sequence of calls that must be atomic; every public
method takes it too (it is re-entrant) and first brings the book up to the market clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from .. import fillmodel
from . import apierrors
from .fees import FeeSchedule
from .market import Market, on_step
from .rules import EIGHT, ZERO, SymbolRules, dec, floor_to, fmt

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    lock_asset: str | None = None
    locked: Decimal = ZERO
    bar_fill: tuple[int, Decimal] = (-1, ZERO)
    through: Decimal = ZERO  # volume traded through the price while resting (fill cap)
    maker_qty: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty


@dataclass(frozen=True)
class Fill:
    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool

    def to_json(self) -> dict[str, object]:
        """The ledger row (GET /sim/ledger)."""
        return {"time": self.time, "symbol": self.symbol, "side": self.side, "orderId": self.order_id,
                "clientOrderId": self.client_order_id, "tradeId": self.trade_id, "price": fmt(self.price),
                "qty": fmt(self.qty), "quoteQty": fmt(self.quote_qty), "commission": fmt(self.commission),
                "commissionAsset": self.commission_asset, "isMaker": self.is_maker}


def quote_amount(price: Decimal, qty: Decimal, buyer: bool) -> Decimal:
    """Quote paid (buyer, rounded up) or received (seller, rounded down) for ``qty`` at ``price``."""
    return (price * qty).quantize(EIGHT, rounding=ROUND_CEILING if buyer else ROUND_FLOOR)


class Engine:
    def __init__(self, market: Market, rules: SymbolRules, fees: FeeSchedule,
                 balances: Mapping[str, object], *, slippage_bps: float = 0.0, partial_fill: float = 1.0,
                 fill_on_touch: bool = False, bnb_price: Callable[[int], Decimal | None] | None = None,
                 ideal_fills: bool = False, volume_fills: bool | None = None) -> None:
        if not 0 < partial_fill <= 1:
            raise ValueError("partial_fill must be in (0, 1]")
        self.market = market
        self.rules = rules
        self.fees = fees
        self.slippage = Decimal(str(slippage_bps)) / Decimal(10000)
        self.partial_fill = partial_fill
        self.fill_on_touch = fill_on_touch
        self.ideal = ideal_fills
        # the volume rule for resting orders: on with the depth book unless set (SPEC R22 v3 volume_fills)
        self.volume_fills = (not ideal_fills) if volume_fills is None else volume_fills
        self._taken: dict[tuple[bool, Decimal], Decimal] = {}  # (bid side?, price) -> qty taken this bar
        self._taken_bar = -1
        self.bnb_price = bnb_price or (lambda _ms: None)
        self.lock = threading.RLock()
        assets = [rules.base, rules.quote, fees.bnb_asset, *balances]
        self.free: dict[str, Decimal] = {a: ZERO for a in dict.fromkeys(assets)}
        for asset, amount in balances.items():
            value = dec(amount)
            if value < 0 or value != value.quantize(EIGHT):
                raise ValueError(f"start balance of {asset} must be >= 0 with at most 8 decimals: {amount}")
            self.free[asset] = value
        self.locked: dict[str, Decimal] = {a: ZERO for a in self.free}
        self.orders: dict[int, Order] = {}
        self.open: dict[int, Order] = {}
        self.by_client_id: dict[str, int] = {}
        self.fills: list[Fill] = []
        self.pos = market.clock.pos()
        self.time_origin = "data"  # "now" when the history was re-stamped onto the wall clock (build)
        # free-running exchange clock (origin now, realtime/speed): (wall ms at start, exchange ms per
        # wall ms); None: the exchange clock is the market clock (manual replay, origin data)
        self.free_clock: tuple[int, float] | None = None
        self._next_order_id = 1
        self._next_trade_id = 1

    # -- clock -----------------------------------------------------------------------------
    def market_time(self) -> int:
        return self.market.time_ms(self.pos)

    @property
    def wall_clock(self) -> bool:
        """True when the exchange clock is the wall clock (real-time replay, origin now)."""
        return self.free_clock is not None and self.free_clock[1] == 1.0

    def exchange_ms(self) -> int:
        """The exchange clock: serverTime and every order/trade time. Free-running, it goes on
        while the market is frozen or over (a stalled feed); otherwise it is the market time."""
        if self.free_clock is not None:
            wall0, rate = self.free_clock
            return wall0 + int((time.time() * 1000 - wall0) * rate)
        return self.market_time()

    def advance(self, bars: float) -> None:
        with self.lock:
            self.sync()
            self.market.clock.advance(bars)
            self.sync()

    def sync(self) -> None:
        """Move the book to the market clock, filling resting orders the price traded through."""
        with self.lock:
            target = self.market.clock.pos()
            if target <= self.pos:
                return
            series = self.market.series
            start = self.pos
            for j in range(int(fillmodel.clock_pos(start)), min(math.ceil(fillmodel.clock_pos(target)), len(series))):
                if not self.open:
                    break
                f0, f1 = fillmodel.bar_fraction(start, j), fillmodel.bar_fraction(target, j)
                events = []
                for order in self.open.values():
                    f, volume = series.resting_fill(j, f0, f1, float(order.price), order.side == "BUY",
                                                    self.fill_on_touch)
                    order.through += dec(volume)
                    if f >= 0:
                        events.append((f, order.order_id))
                for f, order_id in sorted(events):
                    self._fill_resting(self.open[order_id], j, int(series.open_ms[j]) + int(f * series.interval_ms))
            self.pos = target

    def _fill_resting(self, order: Order, bar: int, time_ms: int) -> None:
        """Fill what the partial-fill rule allows (:func:`ethbtc.fillmodel.resting_fill_qty`, the
        backtest's rule too): ``partial_fill`` of the order per bar, the volume traded through its
        price with the volume rule."""
        done = order.bar_fill[1] if order.bar_fill[0] == bar else ZERO
        step = self.rules.step_size
        qty = on_step(fillmodel.resting_fill_qty(float(order.remaining), float(order.orig_qty), float(done),
                                                 float(order.through), float(order.maker_qty), self.partial_fill,
                                                 self.volume_fills, float(step)), step)
        qty = min(qty, order.remaining)
        if qty <= 0:
            return
        order.bar_fill = (bar, done + qty)
        order.maker_qty += qty
        self._fill(order, qty, order.price, is_maker=True, time_ms=time_ms)

    # -- the book ----------------------------------------------------------------------------
    def book(self, bids: bool) -> list[tuple[Decimal, Decimal]]:
        """One side of the book now, best first, less what takers removed this bar."""
        bar = self.market.locate(self.pos)[0]
        if bar != self._taken_bar:
            self._taken, self._taken_bar = {}, bar
        out = []
        for price, qty in self.market.levels(self.pos, bids, self.ideal):
            left = qty - self._taken.get((bids, price), ZERO)
            if left > 0:
                out.append((price, left))
        return out

    def _walk(self, buyer: bool, qty: Decimal | None, quote: Decimal | None,
              limit: Decimal | None) -> list[tuple[Decimal, Decimal]]:
        """(price, qty) a taker gets from the book for ``qty`` (or ``quote`` to spend), up to ``limit``:
        :func:`ethbtc.fillmodel.book_walk`, the walk the backtest's taker fallback takes too."""
        self.book(bids=not buyer)  # start the bar's taken-liquidity record afresh at a new bar
        m, tick, step = self.market.book_model, self.rules.tick_size, self.rules.step_size
        bid, ask = self.market.bid_ask(self.pos)
        touch = ask if buyer else bid
        levels = m.levels
        if limit is not None:  # only the levels at or inside the limit price
            levels = min(levels, max(math.floor((limit - ask if buyer else bid - limit) / tick) + 1, 0))
        if levels <= 0:
            return []
        taken = np.array([float(self._taken.get((not buyer, touch + tick * k if buyer else touch - tick * k), ZERO))
                          for k in range(levels)])
        takes = fillmodel.book_walk(float(qty) if qty is not None else math.nan,
                                    float(quote) if quote is not None else math.nan, buyer, float(touch / tick),
                                    float(tick), float(self.market.book_top(self.pos)), m.growth, levels,
                                    float(step), taken)
        out: list[tuple[Decimal, Decimal]] = []
        for k, take in enumerate(takes):
            q = on_step(take, step)
            if q > 0:
                out.append((touch + tick * k if buyer else touch - tick * k, q))
        return out

    def _take(self, order: Order, pieces: list[tuple[Decimal, Decimal]]) -> None:
        buyer = order.side == "BUY"
        for price, qty in pieces:
            key = (not buyer, price)
            self._taken[key] = self._taken.get(key, ZERO) + qty
            self._fill(order, qty, price, is_maker=False, time_ms=order.time)

    # -- orders ----------------------------------------------------------------------------
    def place(self, *, side: str, order_type: str, quantity: Decimal | None = None, quote_qty: Decimal | None = None,
              price: Decimal | None = None, time_in_force: str | None = None,
              client_order_id: str | None = None) -> Order:
        """Validate and execute a new order; raises :class:`ApiError` like Binance would."""
        with self.lock:
            self.sync()
            r = self.rules
            if client_order_id is not None and client_order_id in self.by_client_id:
                if self.orders[self.by_client_id[client_order_id]].is_open:
                    raise apierrors.rejected(apierrors.DUPLICATE_ORDER)
            buyer = side == "BUY"
            bid, ask = self.market.bid_ask(self.pos)
            if order_type == "MARKET" and not self.ideal:
                pieces = self._walk(buyer, quantity, quote_qty if quantity is None else None, None)
                qty = quantity if quantity is not None else sum((q for _, q in pieces), ZERO)
                r.check(price=None, qty=qty, notional_price=self.market.avg_price(self.pos, r.avg_price_mins),
                        market=True, open_orders=len(self.open), side=side)
                self._require(r.quote if buyer else r.base,
                              sum((quote_amount(p, q, True) for p, q in pieces), ZERO) if buyer
                              else sum((q for _, q in pieces), ZERO))
                order = self._new_order(side, order_type, None, ZERO, qty, quote_qty, client_order_id)
                self._take(order, pieces)
                if order.remaining > 0:  # the book ran out: the rest expires (Binance: EXPIRED)
                    self._close(order, "EXPIRED", order.time)
                return order
            if order_type == "MARKET":
                tick = float(r.tick_size)  # the shared MARKET rule (ethbtc.fillmodel, SPEC R22 v3)
                fill_price = r.tick_size * int(fillmodel.market_ticks(
                    float(bid / r.tick_size), float(ask / r.tick_size), buyer, float(self.slippage), tick))
                qty = quantity if quantity is not None else floor_to(quote_qty / fill_price, r.step_size)
                # filters.md NOTIONAL: a MARKET order's notional uses the avgPriceMins average price
                r.check(price=None, qty=qty, notional_price=self.market.avg_price(self.pos, r.avg_price_mins),
                        market=True, open_orders=len(self.open), side=side)
                self._require(r.quote if buyer else r.base,
                              quote_amount(fill_price, qty, True) if buyer else qty)
                order = self._new_order(side, order_type, None, fill_price, qty, quote_qty, client_order_id)
                self._fill(order, qty, fill_price, is_maker=False, time_ms=order.time)
                return order
            assert price is not None and quantity is not None
            r.check(price=price, qty=quantity, notional_price=price, market=False, open_orders=len(self.open),
                    side=side, avg_price=self.market.avg_price(self.pos, r.percent_price_mins))
            lock_asset, lock_amount = (r.quote, quote_amount(price, quantity, True)) if buyer else (r.base, quantity)
            self._require(lock_asset, lock_amount)
            crosses = price >= ask if buyer else price <= bid
            if order_type == "LIMIT_MAKER" and crosses:
                raise apierrors.rejected(apierrors.WOULD_TAKE)
            if order_type == "LIMIT" and crosses and not self.ideal:
                pieces = self._walk(buyer, quantity, None, price)
                got = sum((q for _, q in pieces), ZERO)
                if time_in_force == "FOK" and got < quantity:
                    pieces = []  # fill or kill: all of it, or nothing
                order = self._new_order(side, order_type, time_in_force, price, quantity, None, client_order_id)
                self._take(order, pieces)
                if order.remaining <= 0:
                    return order
                if time_in_force in ("IOC", "FOK"):
                    self._close(order, "EXPIRED", order.time)
                    return order
                lock_amount = quote_amount(price, order.remaining, True) if buyer else order.remaining
                # per-level rounding of the taken part may have cost a few 1e-8 more than the limit price
                lock_amount = min(lock_amount, self.free[lock_asset])
                crosses = False
            else:
                order = self._new_order(side, order_type, time_in_force, price, quantity, None, client_order_id)
            if order_type == "LIMIT" and crosses:
                touch = min(price, ask) if buyer else max(price, bid)
                self._fill(order, quantity, touch, is_maker=False, time_ms=order.time)
                return order
            if order_type == "LIMIT" and time_in_force in ("IOC", "FOK"):
                order.status = "EXPIRED"
                return order
            order.lock_asset, order.locked = lock_asset, lock_amount
            self.free[lock_asset] -= lock_amount
            self.locked[lock_asset] += lock_amount
            self.open[order.order_id] = order
            return order

    def validate(self, *, side: str, order_type: str, quantity: Decimal | None = None,
                 quote_qty: Decimal | None = None, price: Decimal | None = None) -> None:
        """The symbol filters a new order must pass, without placing it (POST /api/v3/order/test)."""
        with self.lock:
            self.sync()
            r = self.rules
            if order_type == "MARKET":
                _, ask = self.market.bid_ask(self.pos)
                qty = quantity if quantity is not None else floor_to(quote_qty / ask, r.step_size)
                r.check(price=None, qty=qty, notional_price=self.market.avg_price(self.pos, r.avg_price_mins),
                        market=True, open_orders=len(self.open), side=side)
                return
            assert price is not None and quantity is not None
            r.check(price=price, qty=quantity, notional_price=price, market=False, open_orders=len(self.open),
                    side=side, avg_price=self.market.avg_price(self.pos, r.percent_price_mins))

    def _require(self, asset: str, amount: Decimal) -> None:
        if self.free.get(asset, ZERO) < amount:
            raise apierrors.rejected(apierrors.INSUFFICIENT_BALANCE)

    def _new_order(self, side: str, order_type: str, tif: str | None, price: Decimal, qty: Decimal,
                   quote_qty: Decimal | None, client_order_id: str | None) -> Order:
        oid = self._next_order_id
        self._next_order_id += 1
        now = self.exchange_ms()
        order = Order(order_id=oid, client_order_id=client_order_id or f"sim-{oid}", symbol=self.rules.symbol,
                      side=side, type=order_type, time_in_force=tif, price=ZERO if order_type == "MARKET" else price,
                      orig_qty=qty, orig_quote_qty=quote_qty or ZERO, time=now, update_time=now)
        self.orders[oid] = order
        self.by_client_id[order.client_order_id] = oid
        return order

    def _fill(self, order: Order, qty: Decimal, price: Decimal, *, is_maker: bool, time_ms: int) -> None:
        r = self.rules
        buyer = order.side == "BUY"
        new_exec = order.executed_qty + qty
        # exact per price: the fills at one price pay ceil8/floor8 of their cumulative amount
        before = sum((f.qty for f in order.fills if f.price == price), ZERO)
        quote_qty = quote_amount(price, before + qty, buyer) - quote_amount(price, before, buyer)
        pay_asset, pay, get_asset, get = (r.quote, quote_qty, r.base, qty) if buyer else (r.base, qty, r.quote, quote_qty)
        from_locked = min(pay, order.locked) if order.lock_asset == pay_asset else ZERO
        order.locked -= from_locked
        self.locked[pay_asset] -= from_locked
        self.free[pay_asset] -= pay - from_locked
        self.free[get_asset] += get
        commission, fee_asset = self.fees.commission(
            is_maker=is_maker, is_buyer=buyer, qty=qty, quote_qty=quote_qty, base=r.base, quote=r.quote,
            bnb_free=self.free.get(self.fees.bnb_asset, ZERO), bnb_price=lambda: self.bnb_price(time_ms))
        self.free[fee_asset] = self.free.get(fee_asset, ZERO) - commission
        fill = Fill(trade_id=self._next_trade_id, order_id=order.order_id, client_order_id=order.client_order_id,
                    symbol=order.symbol, side=order.side, price=price, qty=qty, quote_qty=quote_qty,
                    commission=commission, commission_asset=fee_asset, time=time_ms, is_maker=is_maker)
        self._next_trade_id += 1
        self.fills.append(fill)
        order.fills.append(fill)
        order.executed_qty = new_exec
        order.cum_quote += quote_qty
        order.update_time = time_ms
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._close(order, "FILLED", time_ms)

    def _close(self, order: Order, status: str, time_ms: int) -> None:
        if order.lock_asset is not None and order.locked:
            self.locked[order.lock_asset] -= order.locked
            self.free[order.lock_asset] += order.locked
            order.locked = ZERO
        order.status = status
        order.update_time = time_ms
        self.open.pop(order.order_id, None)

    def find(self, order_id: int | None = None, client_order_id: str | None = None) -> Order | None:
        with self.lock:
            self.sync()
            if order_id is not None:
                order = self.orders.get(order_id)
                if order is not None and client_order_id is not None and order.client_order_id != client_order_id:
                    return None
                return order
            if client_order_id is not None and client_order_id in self.by_client_id:
                return self.orders[self.by_client_id[client_order_id]]
            return None

    def cancel(self, order_id: int | None = None, client_order_id: str | None = None) -> Order:
        with self.lock:
            order = self.find(order_id, client_order_id)
            if order is None or not order.is_open:
                raise apierrors.unknown_order_cancel()
            self._close(order, "CANCELED", self.exchange_ms())
            return order

    def cancel_all(self) -> list[Order]:
        with self.lock:
            self.sync()
            if not self.open:
                raise apierrors.unknown_order_cancel()
            orders = list(self.open.values())
            for order in orders:
                self._close(order, "CANCELED", self.exchange_ms())
            return orders

    def open_orders(self) -> list[Order]:
        with self.lock:
            self.sync()
            return list(self.open.values())

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        with self.lock:
            self.sync()
            return {a: (self.free[a], self.locked.get(a, ZERO)) for a in self.free}
