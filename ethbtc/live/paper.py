"""Dry mode's account: a paper wallet with simulated fills on public market data (SPEC R33).

It answers the same account calls as :class:`~ethbtc.live.exchange.Exchange` (balances,
place/get/cancel order, fills) so the engine runs the identical code path, but nothing is
ever sent to the exchange: orders live in this object, which the engine persists in the
state file. Fill model: a MARKET order fills at once at the touch (taker fee); a LIMIT_MAKER
order that would cross is rejected like Binance does, otherwise it rests and fills at its
own price (maker fee) once the public book has moved through it (best ask at or below a buy,
best bid at or above a sell). Fees are charged in the received asset (R23 v2: at the BNB
discount when the config pays fees in BNB, the BNB wallet assumed funded; :meth:`PaperAccount.for_config`).
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from ..config import FeeParams
from .errors import InsufficientBalance, WouldTake
from .exchange import Exchange, Fill, OrderInfo
from .filters import D, SymbolFilters

EIGHT = Decimal("0.00000001")


class PaperAccount:
    def __init__(self, market: Exchange, filters: SymbolFilters, maker_fee: float, taker_fee: float,
                 state: dict[str, Any] | None = None, start_quote: float = 1.0) -> None:
        self.market = market
        self.f = filters
        self.maker = D(maker_fee)
        self.taker = D(taker_fee)
        state = state or {}
        self.free: dict[str, Decimal] = {k: D(v) for k, v in state.get("free", {}).items()} or {
            filters.quote: D(start_quote).quantize(EIGHT), filters.base: Decimal(0)}
        self.locked: dict[str, Decimal] = {k: D(v) for k, v in state.get("locked", {}).items()}
        self.orders: dict[str, dict[str, Any]] = dict(state.get("orders", {}))
        self.fills: list[dict[str, Any]] = list(state.get("fills", []))
        self.next_id = int(state.get("next_id", 1))

    @classmethod
    def for_config(cls, market: Exchange, filters: SymbolFilters, fees: FeeParams,
                   state: dict[str, Any] | None = None, start_quote: float = 1.0) -> PaperAccount:
        """Dry mode's wallet with the config's fee model (SPEC R23 v2): with pay_fees_in_bnb the BNB
        wallet is assumed kept funded, so every fee gets the discount and its value is charged in
        the received asset (what the backtest charges; Binance would take the same value in BNB)."""
        maker, taker = fees.rates_without_bnb_series()
        return cls(market, filters, maker, taker, state, start_quote=start_quote)

    # -- persistence (the engine stores this in the state file) -----------------------------
    def to_json(self) -> dict[str, Any]:
        keep = {cid: o for cid, o in self.orders.items() if o["status"] in ("NEW", "PARTIALLY_FILLED")}
        recent = list(self.orders)[-20:]  # closed orders are kept briefly for reconciliation
        keep.update({cid: self.orders[cid] for cid in recent})
        return {"free": {k: str(v) for k, v in self.free.items()}, "locked": {k: str(v) for k, v in self.locked.items()},
                "orders": keep, "fills": self.fills[-50:], "next_id": self.next_id}

    # -- account calls -------------------------------------------------------------------------
    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        self._match()
        assets = set(self.free) | set(self.locked)
        return {a: (self.free.get(a, Decimal(0)), self.locked.get(a, Decimal(0))) for a in assets}

    def place_order(self, client_id: str, side: str, type_: str, qty: Decimal, price: Decimal | None = None,
                    ) -> OrderInfo:
        if client_id in self.orders:
            return self._info(self.orders[client_id])
        bid, ask = self.market.book()
        buy = side == "BUY"
        oid = self.next_id
        self.next_id += 1
        order = {"order_id": oid, "client_id": client_id, "side": side, "type": type_, "status": "NEW",
                 "price": "0", "orig_qty": str(qty), "executed_qty": "0", "cum_quote": "0",
                 "time": self.market.now_ms(), "locked": "0"}
        if type_ == "MARKET":
            px = ask if buy else bid
            self._require(self.f.quote if buy else self.f.base, _quote(px, qty, True) if buy else qty)
            self.orders[client_id] = order
            self._fill(order, px, qty, maker=False)
            return self._info(order)
        assert price is not None
        if (buy and price >= ask) or (not buy and price <= bid):
            raise WouldTake("paper: Order would immediately match and take.", -2010, 400)
        asset, amount = (self.f.quote, _quote(price, qty, True)) if buy else (self.f.base, qty)
        self._require(asset, amount)
        self.free[asset] -= amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount
        order.update(price=str(price), locked=str(amount))
        self.orders[client_id] = order
        return self._info(order)

    def get_order(self, client_id: str) -> OrderInfo | None:
        self._match()
        order = self.orders.get(client_id)
        return None if order is None else self._info(order)

    def cancel_order(self, client_id: str) -> OrderInfo | None:
        self._match()
        order = self.orders.get(client_id)
        if order is None:
            return None
        if order["status"] in ("NEW", "PARTIALLY_FILLED"):
            self._unlock(order)
            order["status"] = "CANCELED"
        return self._info(order)

    def open_orders(self) -> list[OrderInfo]:
        self._match()
        return [self._info(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]

    def recent_orders(self, limit: int = 1000) -> list[OrderInfo]:
        return [self._info(o) for o in list(self.orders.values())[-limit:]]

    def order_fills(self, order: OrderInfo) -> list[Fill]:
        return [Fill(**{**f, **{k: D(f[k]) for k in ("price", "qty", "quote_qty", "commission")}})
                for f in self.fills if f["order_id"] == order.order_id]

    # -- matching ------------------------------------------------------------------------------
    def _match(self) -> None:
        resting = [o for o in self.orders.values() if o["status"] == "NEW" and o["type"] != "MARKET"]
        if not resting:
            return
        bid, ask = self.market.book()
        for o in resting:
            px = D(o["price"])
            if (o["side"] == "BUY" and ask <= px) or (o["side"] == "SELL" and bid >= px):
                self._fill(o, px, D(o["orig_qty"]), maker=True)

    def _fill(self, order: dict[str, Any], price: Decimal, qty: Decimal, maker: bool) -> None:
        buy = order["side"] == "BUY"
        quote = _quote(price, qty, buy)
        self._unlock(order)
        pay, get = (self.f.quote, self.f.base) if buy else (self.f.base, self.f.quote)
        paid, got = (quote, qty) if buy else (qty, quote)
        fee = (got * (self.maker if maker else self.taker)).quantize(EIGHT, ROUND_HALF_UP)
        self.free[pay] = self.free.get(pay, Decimal(0)) - paid
        self.free[get] = self.free.get(get, Decimal(0)) + got - fee
        trade_id = self.next_id
        self.next_id += 1
        fill = Fill(trade_id=trade_id, order_id=order["order_id"], client_id=order["client_id"], side=order["side"],
                    price=price, qty=qty, quote_qty=quote, commission=fee, commission_asset=get,
                    time=self.market.now_ms(), is_maker=maker, order_type=order["type"])
        self.fills.append({k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(fill).items()})
        order.update(status="FILLED", executed_qty=str(qty), cum_quote=str(quote))
        if order["type"] == "MARKET":
            order["price"] = "0"

    def _unlock(self, order: dict[str, Any]) -> None:
        amount = D(order.get("locked", "0"))
        if amount > 0:
            asset = self.f.quote if order["side"] == "BUY" else self.f.base
            self.locked[asset] -= amount
            self.free[asset] += amount
            order["locked"] = "0"

    def _require(self, asset: str, amount: Decimal) -> None:
        if self.free.get(asset, Decimal(0)) < amount:
            raise InsufficientBalance("paper: Account has insufficient balance for requested action.", -2010, 400)

    @staticmethod
    def _info(o: dict[str, Any]) -> OrderInfo:
        return OrderInfo(order_id=int(o["order_id"]), client_id=o["client_id"], side=o["side"], type=o["type"],
                         status=o["status"], price=D(o["price"]), orig_qty=D(o["orig_qty"]),
                         executed_qty=D(o["executed_qty"]), cum_quote=D(o["cum_quote"]), time=int(o["time"]))


def _quote(price: Decimal, qty: Decimal, buyer: bool) -> Decimal:
    return (price * qty).quantize(EIGHT, ROUND_CEILING if buyer else ROUND_FLOOR)

