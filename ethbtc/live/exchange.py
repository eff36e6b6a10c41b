"""The ONE adapter around ``binance.spot.Spot``: every Binance request of the executor goes here.

- Every request has a timeout (the connector's default is none).
- One retry policy: exponential backoff with full jitter for 5xx, timeouts and connection
  errors; 429/418 honour ``Retry-After`` and set :attr:`Exchange.throttle_until` so the bar
  loop slows down; -1021 (timestamp outside recvWindow) resyncs the server-time offset.
- Request weight: every reply's ``X-MBX-USED-WEIGHT-*`` header is read; past 80% of the limit
  (exchangeInfo ``rateLimits``) requests wait for the weight window to reset, so a busy
  executor slows down before Binance's 429, not after it.
- Order placement is idempotent by client order id: when the outcome of a POST is unknown
  (timeout, dropped connection, 5xx) the order is looked up by its id -- after waiting out
  its recvWindow, past which the exchange must refuse the original -- and only re-sent with
  the same id when the exchange has no such order. Rejections (-2010, -1013) are typed
  errors (:mod:`ethbtc.live.errors`) and never retried blindly.
- Secrets never reach a log line or an error message (query strings are cut from exceptions).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from binance.error import ClientError, ServerError
from binance.lib.utils import encoded_string
from binance.spot import Spot

from .errors import (
    AuthError,
    DuplicateOrder,
    ExchangeError,
    InsufficientBalance,
    MinNotional,
    OrderRejected,
    OutcomeUnknown,
    TransientError,
    UnknownOrder,
    WouldTake,
)
from .filters import D, SymbolFilters, fmt

log = logging.getLogger("ethbtc.live.exchange")
_QUERY = re.compile(r"\?[^\s'\"()]*")
AUTH_CODES = (-2014, -2015, -1022, -1002)
FIX_2015 = ("check that BINANCE_KEY/BINANCE_SECRET belong to this endpoint (testnet keys come from "
            "testnet.binance.vision, live keys from binance.com API Management), that the key has "
            "'Enable Spot & Margin Trading' ticked and that this machine's IP is on the key's whitelist")


def safe_text(exc: BaseException) -> str:
    """An exception's text with every query string (timestamps, signatures) removed."""
    return _QUERY.sub("?...", f"{type(exc).__name__}: {exc}")[:300]


WEIGHT_PAUSE_SHARE = 0.8  # share of the request-weight limit after which requests wait for the next window
INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


@dataclass
class RetryPolicy:
    attempts: int = 6
    base_sec: float = 0.25
    cap_sec: float = 8.0
    sleep: Callable[[float], object] = time.sleep
    rng: random.Random | None = None

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
        rng = self.rng or random
        return rng.uniform(0.0, min(self.cap_sec, self.base_sec * (2 ** attempt)))


@dataclass(frozen=True)
class OrderInfo:
    order_id: int
    client_id: str
    side: str
    type: str
    status: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    time: int

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED", "PENDING_NEW")

    @classmethod
    def from_json(cls, o: dict[str, Any]) -> OrderInfo:
        try:
            return cls(order_id=int(o["orderId"]), client_id=str(o["clientOrderId"]), side=str(o.get("side", "")),
                       type=str(o.get("type", "")), status=str(o.get("status", "NEW")), price=D(o.get("price", "0")),
                       orig_qty=D(o.get("origQty", "0")), executed_qty=D(o.get("executedQty", "0")),
                       cum_quote=D(o.get("cummulativeQuoteQty", "0")),
                       time=int(o.get("time", o.get("transactTime", 0)) or 0))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ExchangeError(f"unexpected order reply from the exchange: {exc}") from None


@dataclass(frozen=True)
class Fill:
    """One exchange trade of one of our orders (a ledger row)."""

    trade_id: int
    order_id: int
    client_id: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool
    order_type: str = ""


class _Spot(Spot):
    """``Spot`` whose signed requests use the resynced server-time offset and a recvWindow."""

    time_offset_ms = 0
    recv_window_ms = 5000

    def sign_request(self, http_method: str, url_path: str, payload: dict[str, Any] | None = None) -> Any:
        payload = dict(payload or {})
        payload.setdefault("recvWindow", self.recv_window_ms)
        payload["timestamp"] = int(time.time() * 1000) + self.time_offset_ms
        payload["signature"] = self._get_sign(encoded_string(payload))
        return self.send_request(http_method, url_path, payload)


class Exchange:
    """Binance Spot for one symbol: market data (public) and account/orders (signed)."""

    def __init__(self, base_url: str, symbol: str, api_key: str | None = None, api_secret: str | None = None,
                 *, timeout: float = 10.0, recv_window_ms: int = 5000, retry: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.symbol = symbol
        self.retry = retry or RetryPolicy()
        self.client = _Spot(api_key=api_key, api_secret=api_secret, base_url=self.base_url, timeout=timeout,
                            show_limit_usage=True)
        self.client.recv_window_ms = recv_window_ms
        self.signed = bool(api_key and api_secret)
        self.used_weight = 0
        self.weight_limit = 6000
        self.weight_window_s = 60.0  # REQUEST_WEIGHT interval (exchangeInfo rateLimits)
        self.throttle_until = 0.0  # monotonic time before which the bar loop should not poll
        # metrics hook: (path, seconds, None or error code such as '-2010', 'would_take', 'http_503', 'timeout')
        self.on_request: Callable[[str, float, str | None], None] | None = None
        self._filters: SymbolFilters | None = None

    # -- the request wrapper ----------------------------------------------------------------
    def call(self, endpoint: str, fn: Callable[..., Any], *args: Any, idempotent: bool = True, **kwargs: Any) -> Any:
        """Run one connector call under the retry policy; returns the reply's data."""
        last = "no attempt"
        resyncs = 0
        for attempt in range(self.retry.attempts):
            self._pace()
            t0 = time.monotonic()
            try:
                reply = fn(*args, **kwargs)
            except ClientError as exc:
                error = self._client_error(endpoint, exc)
                # a maker order refused because it would cross is the cue to re-price, not a fault:
                # its own metrics label, so the EthbtcApiErrors alert leaves it out (-2010 balance stays)
                self._report(endpoint, t0, "would_take" if isinstance(error, WouldTake) else str(exc.error_code))
                code, status = exc.error_code, exc.status_code
                if status in (418, 429) or code == -1003:
                    wait = self._retry_after(exc.header, attempt)
                    self.throttle_until = time.monotonic() + wait
                    log.warning("%s: rate limited (HTTP %s), waiting %.1fs as told", endpoint, status, wait)
                    last = f"HTTP {status} {code}"
                    self.retry.sleep(wait)
                    continue
                if code == -1021 and resyncs < 2:
                    resyncs += 1
                    log.warning("%s: timestamp outside recvWindow (-1021); resyncing server time", endpoint)
                    self.sync_time()
                    continue
                raise error from None
            except ServerError as exc:
                self._report(endpoint, t0, f"http_{exc.status_code}")
                last = f"HTTP {exc.status_code}"
                if not idempotent:
                    raise OutcomeUnknown(f"{endpoint}: HTTP {exc.status_code}, outcome unknown",
                                         status=exc.status_code) from None
            except requests.RequestException as exc:
                self._report(endpoint, t0, "timeout" if isinstance(exc, requests.Timeout) else "connection")
                last = safe_text(exc)
                if not idempotent:
                    raise OutcomeUnknown(f"{endpoint}: {last}, outcome unknown") from None
            else:
                self._report(endpoint, t0, "ok")
                if isinstance(reply, dict) and "limit_usage" in reply:
                    self._note_usage(reply["limit_usage"])
                    return reply["data"]
                return reply
            wait = self.retry.backoff(attempt)
            log.warning("%s failed (%s); retry %d/%d in %.2fs", endpoint, last, attempt + 1,
                        self.retry.attempts - 1, wait)
            self.retry.sleep(wait)
        raise TransientError(f"{endpoint}: gave up after {self.retry.attempts} attempts ({last})")

    def _report(self, endpoint: str, t0: float, outcome: str) -> None:
        if self.on_request is not None:
            self.on_request(endpoint.split(" ")[-1], time.monotonic() - t0, None if outcome == "ok" else outcome)

    def _retry_after(self, headers: Any, attempt: int) -> float:
        try:
            value = float((headers or {}).get("Retry-After"))
        except (TypeError, ValueError):
            value = max(self.retry.backoff(attempt), 1.0)
        return min(max(value, 0.05), 300.0)

    def _pace(self) -> None:
        """Past ``WEIGHT_PAUSE_SHARE`` of the request weight, wait for the weight window to reset
        before sending anything: Binance answers 429 past the limit and bans (418) clients that go
        on, so the executor slows down before the limit, not after."""
        wait = self.throttle_until - time.monotonic()
        if self.used_weight >= WEIGHT_PAUSE_SHARE * self.weight_limit and wait > 0:
            self.retry.sleep(wait)
            self.used_weight = 0  # a new window has begun

    def _note_usage(self, usage: dict[str, str]) -> None:
        for key, value in usage.items():
            if key.lower().startswith("x-mbx-used-weight-"):
                try:
                    self.used_weight = int(value)
                except ValueError:
                    continue
                if self.used_weight >= WEIGHT_PAUSE_SHARE * self.weight_limit:
                    # the windows are fixed (a calendar minute on Binance): the weight resets at the next one
                    now = time.time()
                    until_reset = self.weight_window_s - now % self.weight_window_s + 0.2
                    self.throttle_until = max(self.throttle_until, time.monotonic() + until_reset)
                    log.warning("request weight %d of %d per %gs window used; pausing %.1fs until it resets",
                                self.used_weight, self.weight_limit, self.weight_window_s, until_reset)

    def _client_error(self, endpoint: str, exc: ClientError) -> ExchangeError | AuthError:
        code, msg, status = exc.error_code, str(exc.error_message or ""), exc.status_code
        text = f"{endpoint}: {code} {msg}".strip()
        if status == 401 or code in AUTH_CODES:
            if code == -1022:
                return AuthError(f"{self.base_url} rejected the request signature (-1022 {msg}): "
                                 "BINANCE_SECRET does not match BINANCE_KEY")
            return AuthError(f"{self.base_url} rejected the API key ({code} {msg}): {FIX_2015}")
        if code == -2010:
            low = msg.lower()
            if "insufficient balance" in low:
                return InsufficientBalance(text, code, status)
            if "immediately match" in low:
                return WouldTake(text, code, status)
            if "duplicate" in low:
                return DuplicateOrder(text, code, status)
            return OrderRejected(text, code, status)
        if code == -1013:
            if "notional" in msg.lower():
                return MinNotional(text, code, status)
            return OrderRejected(text, code, status)
        if code in (-2013, -2011):
            return UnknownOrder(text, code, status)
        if code in (-1100, -1102, -1104, -1106, -1111, -1115, -1116, -1117, -1121, -1120):
            return OrderRejected(text, code, status)
        return ExchangeError(text, code, status)

    # -- time and symbol ---------------------------------------------------------------------
    def sync_time(self) -> int:
        """Measure the server-clock offset (ms) used by signed requests; returns it."""
        t0 = time.time()
        server = int(self.call("GET /api/v3/time", self.client.time)["serverTime"])
        t1 = time.time()
        self.client.time_offset_ms = int(server - (t0 + t1) * 500)
        return self.client.time_offset_ms

    def now_ms(self) -> int:
        """The exchange's clock: local time corrected by the last measured offset."""
        return int(time.time() * 1000) + self.client.time_offset_ms

    def filters(self, refresh: bool = False) -> SymbolFilters:
        if self._filters is None or refresh:
            info = self.call("GET /api/v3/exchangeInfo", self.client.exchange_info, symbol=self.symbol)
            for lim in info.get("rateLimits", []):
                if lim.get("rateLimitType") == "REQUEST_WEIGHT" and lim.get("interval") in INTERVAL_SECONDS:
                    self.weight_limit = int(lim.get("limit", 6000))
                    self.weight_window_s = INTERVAL_SECONDS[lim["interval"]] * int(lim.get("intervalNum", 1))
            self._filters = SymbolFilters.from_exchange_info(info, self.symbol)
        return self._filters

    # -- market data (public) ----------------------------------------------------------------
    def klines(self, interval: str, *, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 1000) -> list[list[Any]]:
        rows = self.call("GET /api/v3/klines", self.client.klines, self.symbol, interval, startTime=start_ms, endTime=end_ms,
                         limit=limit)
        if not isinstance(rows, list):
            raise ExchangeError("GET /api/v3/klines: unexpected reply from the exchange")
        return rows

    def book(self) -> tuple[Decimal, Decimal]:
        """Best bid and ask."""
        t = self.call("GET /api/v3/ticker/bookTicker", self.client.book_ticker, symbol=self.symbol)
        bid, ask = D(t["bidPrice"]), D(t["askPrice"])
        if bid <= 0 or ask <= 0:
            raise ExchangeError(f"book ticker of {self.symbol} is empty (bid {bid}, ask {ask})")
        return bid, ask

    def last_price(self, symbol: str | None = None) -> Decimal:
        t = self.call("GET /api/v3/ticker/price", self.client.ticker_price, symbol=symbol or self.symbol)
        return D(t["price"])

    # -- account (signed) ----------------------------------------------------------------------
    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """asset -> (free, locked)."""
        acct = self.call("GET /api/v3/account", self.client.account)
        return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in acct.get("balances", [])}

    def get_order(self, client_id: str) -> OrderInfo | None:
        """The order with this client id, or None when the exchange has none."""
        try:
            return OrderInfo.from_json(self.call("GET /api/v3/order", self.client.get_order, self.symbol,
                                                 origClientOrderId=client_id))
        except UnknownOrder:
            return None

    def cancel_order(self, client_id: str) -> OrderInfo | None:
        """Cancel; returns the order's final state (None when unknown). Already closed is fine."""
        try:
            self.call("DELETE /api/v3/order", self.client.cancel_order, self.symbol, origClientOrderId=client_id)
        except UnknownOrder:
            pass  # filled or cancelled meanwhile (or a retried cancel that went through)
        return self.get_order(client_id)

    def open_orders(self) -> list[OrderInfo]:
        return [OrderInfo.from_json(o) for o in self.call("GET /api/v3/openOrders", self.client.get_open_orders, self.symbol)]

    def recent_orders(self, limit: int = 1000) -> list[OrderInfo]:
        return [OrderInfo.from_json(o) for o in self.call("GET /api/v3/allOrders", self.client.get_orders, self.symbol,
                                                          limit=limit)]

    def order_fills(self, order: OrderInfo) -> list[Fill]:
        rows = self.call("GET /api/v3/myTrades", self.client.my_trades, self.symbol, orderId=order.order_id, limit=1000)
        return [Fill(trade_id=int(t["id"]), order_id=int(t["orderId"]), client_id=order.client_id,
                     side="BUY" if t.get("isBuyer") else "SELL", price=D(t["price"]), qty=D(t["qty"]),
                     quote_qty=D(t["quoteQty"]), commission=D(t["commission"]),
                     commission_asset=str(t["commissionAsset"]), time=int(t["time"]), is_maker=bool(t["isMaker"]),
                     order_type=order.type) for t in rows]

    def place_order(self, client_id: str, side: str, type_: str, qty: Decimal, price: Decimal | None = None,
                    ) -> OrderInfo:
        """Send a new order exactly once per client id, whatever the network does."""
        params: dict[str, Any] = {"quantity": fmt(qty), "newClientOrderId": client_id, "newOrderRespType": "RESULT"}
        if price is not None:
            params["price"] = fmt(price)
        for _ in range(4):
            sent = time.monotonic()
            try:
                return OrderInfo.from_json(self.call("POST /api/v3/order", self.client.new_order, self.symbol, side, type_,
                                                     idempotent=False, **params))
            except DuplicateOrder:
                found = self.get_order(client_id)
                if found is not None:
                    return found
                raise
            except OutcomeUnknown as exc:
                log.warning("order %s: %s; looking it up by client id", client_id, exc)
            found = self._lookup_after_unknown(client_id, sent)
            if found is not None:
                log.info("order %s was executed by the exchange (status %s)", client_id, found.status)
                return found
            log.warning("order %s never reached the exchange; sending it again with the same id", client_id)
        raise OutcomeUnknown(f"POST /api/v3/order {client_id}: no definite answer after 4 tries")

    def _lookup_after_unknown(self, client_id: str, sent: float) -> OrderInfo | None:
        found = self.get_order(client_id)
        if found is not None:
            return found
        # The request may still sit in a queue: after its recvWindow the exchange must reject it.
        remaining = self.client.recv_window_ms / 1000.0 + 0.5 - (time.monotonic() - sent)
        if remaining > 0:
            time.sleep(remaining)
        return self.get_order(client_id)
