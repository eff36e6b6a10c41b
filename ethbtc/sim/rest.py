"""Binance Spot REST endpoints of the paper exchange: parameters in, Binance JSON shapes out.

Each handler takes the request's parameters (strings, as sent) and returns the JSON body, or
raises :class:`~ethbtc.sim.apierrors.ApiError`. No HTTP and no authentication here (see
``server`` and ``auth``); ``ROUTES`` says which endpoints are SIGNED.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..data.timeframes import binance_interval
from . import apierrors
from .apierrors import ApiError
from .engine import Engine, Order
from .limits import LimitConfig, rate_limits
from .rules import SIMULATED_ORDER_TYPES, fmt

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

Params = dict[str, str]


# -- parameter parsing ------------------------------------------------------------------------
def _decimal(params: Params, name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not DECIMAL_RE.match(text):
        raise apierrors.illegal(name, r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
    value = Decimal(text)
    if value != value.quantize(Decimal("0.00000001")):
        raise ApiError(-1111, "Precision is over the maximum defined for this asset.")
    return value


def _int(params: Params, name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise apierrors.illegal(name, "^-?[0-9]{1,20}$")
    return int(text)


def _limit(params: Params, default: int = 500, maximum: int = 1000) -> int:
    limit = _int(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _symbols_param(params: Params) -> list[str] | None:
    if "symbols" not in params:
        return None
    try:
        value = json.loads(params["symbols"])
    except (ValueError, RecursionError):
        raise apierrors.illegal("symbols", '["SYMBOL",...]') from None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise apierrors.illegal("symbols", '["SYMBOL",...]')
    return value


# -- JSON shapes ---------------------------------------------------------------------------------
def order_result(o: Order) -> dict[str, object]:
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
            "transactTime": o.time, "price": fmt(o.price), "origQty": fmt(o.orig_qty),
            "executedQty": fmt(o.executed_qty), "origQuoteOrderQty": fmt(o.orig_quote_qty),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status, "timeInForce": o.time_in_force or "GTC",
            "type": o.type, "side": o.side, "workingTime": o.time, "selfTradePreventionMode": "NONE"}


def order_query(o: Order) -> dict[str, object]:
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
            "price": fmt(o.price), "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed_qty),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status,
            "timeInForce": o.time_in_force or "GTC", "type": o.type, "side": o.side,
            "stopPrice": fmt(Decimal(0)), "icebergQty": fmt(Decimal(0)), "time": o.time,
            "updateTime": o.update_time, "isWorking": True, "workingTime": o.time,
            "origQuoteOrderQty": fmt(o.orig_quote_qty), "selfTradePreventionMode": "NONE"}


def order_cancel(o: Order, cancel_client_id: str) -> dict[str, object]:
    return {"symbol": o.symbol, "origClientOrderId": o.client_order_id, "orderId": o.order_id,
            "orderListId": -1, "clientOrderId": cancel_client_id, "transactTime": o.update_time,
            "price": fmt(o.price), "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed_qty),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status,
            "timeInForce": o.time_in_force or "GTC", "type": o.type, "side": o.side,
            "selfTradePreventionMode": "NONE"}


@dataclass
class RestApi:
    """The endpoint handlers bound to one engine and the server clock."""

    engine: Engine
    server_ms: Callable[[], int]
    limits: LimitConfig = field(default_factory=LimitConfig)

    # -- helpers
    def _symbol(self, params: Params, required: bool = True) -> str | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise apierrors.mandatory("symbol")
            return None
        if symbol != self.engine.rules.symbol:
            raise apierrors.invalid_symbol()
        return symbol

    def _order_ref(self, params: Params) -> tuple[int | None, str | None]:
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise ApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return order_id, client_id

    def _per_symbol(self, params: Params, row: Callable[[], dict[str, object]]) -> object:
        symbols = _symbols_param(params)
        if self._symbol(params, required=False):
            return row()
        if symbols is not None and any(s != self.engine.rules.symbol for s in symbols):
            raise apierrors.invalid_symbol()
        return [row()]

    # -- market data (public)
    def ping(self, params: Params) -> object:
        return {}

    def time(self, params: Params) -> object:
        return {"serverTime": self.server_ms()}

    def exchange_info(self, params: Params) -> object:
        self._symbol(params, required=False)
        symbols = _symbols_param(params)
        if symbols is not None and any(s != self.engine.rules.symbol for s in symbols):
            raise apierrors.invalid_symbol()
        return {"timezone": "UTC", "serverTime": self.server_ms(), "rateLimits": rate_limits(self.limits),
                "exchangeFilters": [], "symbols": [self.engine.rules.symbol_info()]}

    def klines(self, params: Params) -> object:
        self._symbol(params)
        interval = params.get("interval")
        if not interval:
            raise apierrors.mandatory("interval")
        if interval != binance_interval(self.engine.market.series.interval_minutes):
            raise ApiError(-1120, "Invalid interval.")
        start, end, limit = _int(params, "startTime"), _int(params, "endTime"), _limit(params)
        with self.engine.lock:
            self.engine.sync()
            return self.engine.market.klines(self.engine.pos, start, end, limit)

    def book_ticker(self, params: Params) -> object:
        def row() -> dict[str, object]:
            with self.engine.lock:
                self.engine.sync()
                (bid, bid_qty), (ask, ask_qty) = self.engine.book(bids=True)[0], self.engine.book(bids=False)[0]
            return {"symbol": self.engine.rules.symbol, "bidPrice": fmt(bid), "bidQty": fmt(bid_qty),
                    "askPrice": fmt(ask), "askQty": fmt(ask_qty)}
        return self._per_symbol(params, row)

    def depth(self, params: Params) -> object:
        """GET /api/v3/depth: the synthetic book (market.BookModel), less what takers took this bar."""
        self._symbol(params)
        limit = _limit(params, default=100, maximum=5000)
        e = self.engine
        with e.lock:
            e.sync()
            bids, asks = e.book(bids=True)[:limit], e.book(bids=False)[:limit]
            update_id = int(e.pos * 1000) + len(e.fills)
        return {"lastUpdateId": update_id, "bids": [[fmt(p), fmt(q)] for p, q in bids],
                "asks": [[fmt(p), fmt(q)] for p, q in asks]}

    def _tape(self, params: Params) -> list[tuple[int, Decimal, Decimal, int, bool]]:
        self._symbol(params)
        limit = _limit(params, default=500, maximum=1000)
        e = self.engine
        with e.lock:
            e.sync()
            return e.market.tape(e.pos, _int(params, "fromId"), _int(params, "startTime"), _int(params, "endTime"),
                                 limit)

    def trades(self, params: Params) -> object:
        """GET /api/v3/trades: the recent public trades (synthetic tape, see market.Market.tape)."""
        params = {k: v for k, v in params.items() if k in ("symbol", "limit")}
        return [{"id": t, "price": fmt(p), "qty": fmt(q), "quoteQty": fmt((p * q).quantize(Decimal("1e-8"))),
                 "time": ms, "isBuyerMaker": m, "isBestMatch": True} for t, p, q, ms, m in self._tape(params)]

    def agg_trades(self, params: Params) -> object:
        """GET /api/v3/aggTrades: the same tape, one trade per aggregate."""
        return [{"a": t, "p": fmt(p), "q": fmt(q), "f": t, "l": t, "T": ms, "m": m, "M": True}
                for t, p, q, ms, m in self._tape(params)]

    def ticker_24hr(self, params: Params) -> object:
        """GET /api/v3/ticker/24hr (FULL): the last 24 hours of replayed klines up to now."""
        def row() -> dict[str, object]:
            e = self.engine
            with e.lock:
                e.sync()
                now = e.market_time()
                rows = e.market.klines(e.pos, now - 86_400_000 + 1, None, 1000)
                (bid, bid_qty), (ask, ask_qty) = e.book(bids=True)[0], e.book(bids=False)[0]
                last = e.market.last_price(e.pos)
                tape = e.market.tape(e.pos, None, None, None, 1)
            o = Decimal(str(rows[0][1]))
            vol = sum((Decimal(str(r[5])) for r in rows), Decimal(0))
            quote = sum((Decimal(str(r[7])) for r in rows), Decimal(0))
            count = sum(int(r[8]) for r in rows)
            first_id = (int(rows[0][0]) - int(e.market.series.open_ms[0])) // e.market.series.interval_ms \
                * e.market.TRADES_PER_BAR
            last_id = tape[-1][0] if tape else first_id
            return {"symbol": e.rules.symbol, "priceChange": fmt(last - o),
                    "priceChangePercent": f"{(last - o) / o * 100:.3f}" if o else "0.000",
                    "weightedAvgPrice": fmt(quote / vol if vol else last), "prevClosePrice": fmt(o),
                    "lastPrice": fmt(last), "lastQty": fmt(tape[-1][2] if tape else Decimal(0)),
                    "bidPrice": fmt(bid), "bidQty": fmt(bid_qty), "askPrice": fmt(ask), "askQty": fmt(ask_qty),
                    "openPrice": fmt(o), "highPrice": fmt(max(Decimal(str(r[2])) for r in rows)),
                    "lowPrice": fmt(min(Decimal(str(r[3])) for r in rows)), "volume": fmt(vol),
                    "quoteVolume": fmt(quote), "openTime": int(rows[0][0]), "closeTime": now,
                    "firstId": first_id, "lastId": last_id, "count": count or max(last_id - first_id + 1, 0)}
        return self._per_symbol(params, row)

    def ticker_price(self, params: Params) -> object:
        def row() -> dict[str, object]:
            with self.engine.lock:
                self.engine.sync()
                price = self.engine.market.last_price(self.engine.pos)
            return {"symbol": self.engine.rules.symbol, "price": fmt(price)}
        return self._per_symbol(params, row)

    def avg_price(self, params: Params) -> object:
        self._symbol(params)
        e = self.engine
        with e.lock:
            e.sync()
            price = e.market.avg_price(e.pos, e.rules.percent_price_mins)
            last_trade = e.market_time()
        return {"mins": e.rules.percent_price_mins, "price": fmt(price), "closeTime": last_trade}

    # -- account and orders (signed)
    def account(self, params: Params) -> object:
        e = self.engine
        with e.lock:
            balances = e.balances()
            body: dict[str, object] = dict(e.fees.account_rates())
            body.update({"canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                         "requireSelfTradePrevention": False, "preventSor": False,
                         "updateTime": e.exchange_ms(), "accountType": "SPOT",
                         "balances": [{"asset": a, "free": fmt(f), "locked": fmt(lk)}
                                      for a, (f, lk) in balances.items()],
                         "permissions": ["SPOT"], "uid": 1})
            return body

    def new_order(self, params: Params, test: bool = False) -> object:
        self._symbol(params)
        side = params.get("side") or ""
        if not side:
            raise apierrors.mandatory("side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        otype = params.get("type") or ""
        if not otype:
            raise apierrors.mandatory("type")
        if otype not in SIMULATED_ORDER_TYPES:  # listed STOP_LOSS/TAKE_PROFIT types too: not simulated
            raise ApiError(-1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and not CLIENT_ID_RE.match(client_id):
            raise apierrors.illegal("newClientOrderId", r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
        qty, quote_qty, price, tif, resp_type = self._order_params(params, otype)
        if test:
            self.engine.validate(side=side, order_type=otype, quantity=qty, quote_qty=quote_qty, price=price)
            if params.get("computeCommissionRates") == "true":
                return self._commission_rates()
            return {}
        order = self.engine.place(side=side, order_type=otype, quantity=qty, quote_qty=quote_qty, price=price,
                                  time_in_force=tif, client_order_id=client_id)
        if resp_type == "ACK":
            return {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                    "clientOrderId": order.client_order_id, "transactTime": order.time}
        body = order_result(order)
        if resp_type == "FULL":
            body["fills"] = [{"price": fmt(f.price), "qty": fmt(f.qty), "commission": fmt(f.commission),
                              "commissionAsset": f.commission_asset, "tradeId": f.trade_id} for f in order.fills]
        return body

    def _order_params(self, params: Params, otype: str) -> tuple[Decimal | None, Decimal | None, Decimal | None,
                                                                   str | None, str]:
        resp_type = params.get("newOrderRespType") or ("FULL" if otype in ("MARKET", "LIMIT") else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise ApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'; legal range is "
                                  "'ACK, RESULT, FULL'.")
        qty, quote_qty, price = _decimal(params, "quantity"), _decimal(params, "quoteOrderQty"), _decimal(params, "price")
        tif = params.get("timeInForce") or None
        if otype == "MARKET":
            for name, value in (("price", price), ("timeInForce", tif)):
                if value is not None:
                    raise apierrors.not_required(name)
            if qty is None and quote_qty is None:
                raise ApiError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if qty is not None and quote_qty is not None:
                raise ApiError(-1128, "Combination of optional parameters invalid.")
        else:
            if quote_qty is not None:
                raise apierrors.not_required("quoteOrderQty")
            if otype == "LIMIT_MAKER" and tif is not None:
                raise apierrors.not_required("timeInForce")
            if otype == "LIMIT":
                if tif is None:
                    raise apierrors.mandatory("timeInForce")
                if tif not in ("GTC", "IOC", "FOK"):
                    raise ApiError(-1115, "Invalid timeInForce.")
            for name, value in (("price", price), ("quantity", qty)):
                if value is None:
                    raise apierrors.mandatory(name)
        return qty, quote_qty, price, tif, resp_type

    def test_order(self, params: Params) -> object:
        """POST /api/v3/order/test: validated like a new order, never placed."""
        return self.new_order(params, test=True)

    def _commission_rates(self) -> dict[str, object]:
        f = self.engine.fees
        rates = {"maker": fmt(f.maker), "taker": fmt(f.taker), "buyer": fmt(Decimal(0)), "seller": fmt(Decimal(0))}
        return {"standardCommissionForOrder": {"maker": rates["maker"], "taker": rates["taker"]},
                "taxCommissionForOrder": {"maker": fmt(Decimal(0)), "taker": fmt(Decimal(0))},
                "discount": {"enabledForAccount": f.pay_in_bnb, "enabledForSymbol": True,
                             "discountAsset": f.bnb_asset, "discount": fmt(1 - f.bnb_discount)}}

    def commission(self, params: Params) -> object:
        """GET /api/v3/account/commission."""
        self._symbol(params)
        f = self.engine.fees
        zero = fmt(Decimal(0))
        return {"symbol": self.engine.rules.symbol,
                "standardCommission": {"maker": fmt(f.maker), "taker": fmt(f.taker), "buyer": zero, "seller": zero},
                "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
                "discount": {"enabledForAccount": f.pay_in_bnb, "enabledForSymbol": True,
                             "discountAsset": f.bnb_asset, "discount": fmt(1 - f.bnb_discount)}}

    def rate_limit_order(self, params: Params, count_10s: int, count_1d: int, limits: Any) -> object:
        """GET /api/v3/rateLimit/order: the ORDERS limits with this client's current counts."""
        return [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limits.orders_10s,
                 "count": count_10s},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": limits.orders_1d,
                 "count": count_1d}]

    def get_order(self, params: Params) -> object:
        self._symbol(params)
        order = self.engine.find(*self._order_ref(params))
        if order is None:
            raise apierrors.unknown_order_query()
        return order_query(order)

    def cancel_order(self, params: Params) -> object:
        self._symbol(params)
        order = self.engine.cancel(*self._order_ref(params))
        return order_cancel(order, params.get("newClientOrderId") or f"sim-cancel-{order.order_id}")

    def open_orders(self, params: Params) -> object:
        self._symbol(params, required=False)
        return [order_query(o) for o in self.engine.open_orders()]

    def cancel_open_orders(self, params: Params) -> object:
        self._symbol(params)
        return [order_cancel(o, f"sim-cancel-{o.order_id}") for o in self.engine.cancel_all()]

    def all_orders(self, params: Params) -> object:
        self._symbol(params)
        from_id, start, end = _int(params, "orderId"), _int(params, "startTime"), _int(params, "endTime")
        limit = _limit(params)
        with self.engine.lock:
            self.engine.sync()
            orders = [o for o in self.engine.orders.values()
                      if (from_id is None or o.order_id >= from_id) and (start is None or o.time >= start)
                      and (end is None or o.time <= end)]
        orders = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
        return [order_query(o) for o in orders]

    def my_trades(self, params: Params) -> object:
        self._symbol(params)
        order_id, from_id = _int(params, "orderId"), _int(params, "fromId")
        start, end, limit = _int(params, "startTime"), _int(params, "endTime"), _limit(params)
        with self.engine.lock:
            self.engine.sync()
            fills = [f for f in self.engine.fills
                     if (order_id is None or f.order_id == order_id) and (from_id is None or f.trade_id >= from_id)
                     and (start is None or f.time >= start) and (end is None or f.time <= end)]
        fills = fills[:limit] if from_id is not None or start is not None else fills[-limit:]
        return [{"symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "orderListId": -1,
                 "price": fmt(f.price), "qty": fmt(f.qty), "quoteQty": fmt(f.quote_qty),
                 "commission": fmt(f.commission), "commissionAsset": f.commission_asset, "time": f.time,
                 "isBuyer": f.side == "BUY", "isMaker": f.is_maker, "isBestMatch": True} for f in fills]

    def bnb_burn(self, params: Params) -> object:
        return {"spotBNBBurn": self.engine.fees.pay_in_bnb, "interestBNBBurn": False}

    def toggle_bnb_burn(self, params: Params) -> object:
        value = params.get("spotBNBBurn")
        if value is not None:
            if value not in ("true", "false"):
                raise apierrors.illegal("spotBNBBurn", "true, false")
            with self.engine.lock:
                self.engine.fees.pay_in_bnb = value == "true"
        return self.bnb_burn(params)


# (method, path) -> (handler name, signed)
ROUTES: dict[tuple[str, str], tuple[str, bool]] = {
    ("GET", "/api/v3/ping"): ("ping", False),
    ("GET", "/api/v3/time"): ("time", False),
    ("GET", "/api/v3/exchangeInfo"): ("exchange_info", False),
    ("GET", "/api/v3/klines"): ("klines", False),
    ("GET", "/api/v3/ticker/bookTicker"): ("book_ticker", False),
    ("GET", "/api/v3/ticker/price"): ("ticker_price", False),
    ("GET", "/api/v3/avgPrice"): ("avg_price", False),
    ("GET", "/api/v3/depth"): ("depth", False),
    ("GET", "/api/v3/trades"): ("trades", False),
    ("GET", "/api/v3/aggTrades"): ("agg_trades", False),
    ("GET", "/api/v3/ticker/24hr"): ("ticker_24hr", False),
    ("POST", "/api/v3/order/test"): ("test_order", True),
    ("GET", "/api/v3/account/commission"): ("commission", True),
    ("GET", "/api/v3/rateLimit/order"): ("rate_limit_order", True),
    ("GET", "/api/v3/account"): ("account", True),
    ("POST", "/api/v3/order"): ("new_order", True),
    ("GET", "/api/v3/order"): ("get_order", True),
    ("DELETE", "/api/v3/order"): ("cancel_order", True),
    ("GET", "/api/v3/openOrders"): ("open_orders", True),
    ("DELETE", "/api/v3/openOrders"): ("cancel_open_orders", True),
    ("GET", "/api/v3/allOrders"): ("all_orders", True),
    ("GET", "/api/v3/myTrades"): ("my_trades", True),
    ("GET", "/sapi/v1/bnbBurn"): ("bnb_burn", True),
    ("POST", "/sapi/v1/bnbBurn"): ("toggle_bnb_burn", True),
}

ORDER_PATHS = ("/api/v3/order", "/api/v3/openOrders")
