"""Request weight and order-count limits of the paper exchange, as Binance counts them.

rest-api.md "LIMITS" / "IP Limits" / "Unfilled Order Count":

- every ``/api/v3`` request costs the weight Binance documents for it (``weight_of``); the
  weight used by the client's IP in the current minute is sent back in ``X-MBX-USED-WEIGHT-1M``;
- a request that would pass ``weight_limit`` (6000 per minute) is refused with HTTP 429,
  code -1003 and ``Retry-After`` (seconds until the minute window resets);
- new orders are counted per 10 seconds and per day (``X-MBX-ORDER-COUNT-10S``/``-1D`` on every
  new-order reply); past 100 per 10 s the order is refused 429 -1015;
- a client that keeps sending after a 429 (more than ``ban_after`` requests inside the wait it
  was told) is banned: HTTP 418, code -1003, ``Retry-After`` = the ban's remaining seconds
  (``ban_seconds``, Binance starts at 2 minutes and scales up for repeat offenders).

Windows are fixed intervals (minute, 10 s, UTC day) of the exchange clock, counted per client
IP: in real-time replay that is the wall clock, as on Binance; in accelerated replay it is the
replayed time, so a bot is charged what its requests would cost at the real pace (a per-minute
budget on the wall clock would meter the acceleration, not the bot); ``Retry-After`` is still
wall seconds. A manual clock stands still, so there the windows run on the wall clock. ``/sapi`` (a separate limiter on Binance) and ``/sim`` are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def weight_header(window_s: int) -> str:
    """``X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)``: 1M for Binance's one-minute window."""
    return "X-MBX-USED-WEIGHT-" + (f"{window_s // 60}M" if window_s % 60 == 0 else f"{window_s}S")


def _per(window_s: int) -> str:
    return f"{window_s // 60} MINUTE" if window_s % 60 == 0 else f"{window_s} SECOND"


def rate_limits(cfg: LimitConfig) -> list[dict[str, object]]:
    """exchangeInfo ``rateLimits`` for this configuration."""
    w = cfg.weight_window_s
    interval, num = ("MINUTE", w // 60) if w % 60 == 0 else ("SECOND", w)
    return [{"rateLimitType": "REQUEST_WEIGHT", "interval": interval, "intervalNum": num, "limit": cfg.weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": cfg.orders_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": cfg.orders_1d},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}]
ORDER_HEADERS = ("X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1D")


def _depth_weight(params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        limit = 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _per_symbol(single: int, every: int) -> Callable[[dict[str, str]], int]:
    return lambda p: single if p.get("symbol") else every


# (method, path) -> weight or weight(params); rest-api.md, each endpoint's "Weight:" line
WEIGHTS: dict[tuple[str, str], int | Callable[[dict[str, str]], int]] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): _depth_weight,
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/aggTrades"): 4,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/avgPrice"): 2,
    ("GET", "/api/v3/ticker/24hr"): _per_symbol(2, 80),
    ("GET", "/api/v3/ticker/price"): _per_symbol(2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): _per_symbol(2, 4),
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): lambda p: 20 if p.get("computeCommissionRates") == "true" else 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/openOrders"): _per_symbol(6, 80),
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): lambda p: 5 if p.get("orderId") else 20,
    ("GET", "/api/v3/account/commission"): 20,
    ("GET", "/api/v3/rateLimit/order"): 40,
}


def weight_of(method: str, path: str, params: dict[str, str]) -> int:
    """The request weight Binance charges (1 for an unknown /api path: Binance still counts it)."""
    w = WEIGHTS.get((method, path), 1)
    return w(params) if callable(w) else w


@dataclass
class LimitConfig:
    weight_limit: int = 6000  # REQUEST_WEIGHT per window; 0 disables all limits
    weight_window_s: int = 60  # Binance: 1 MINUTE (tests shorten it)
    orders_10s: int = 100
    orders_1d: int = 200_000
    ban_after: int = 5  # requests ignoring a 429's Retry-After before the 418 ban
    ban_seconds: int = 120


@dataclass
class _Client:
    minute: int = -1
    used: int = 0
    ten_s: int = -1
    orders_10s: int = 0
    day: int = -1
    orders_1d: int = 0
    wait_until: float = 0.0
    strikes: int = 0
    banned_until: float = 0.0


@dataclass
class Verdict:
    """``status`` 200: go on (``headers`` to add); else the refusal to send."""

    status: int = 200
    body: dict[str, object] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    def __init__(self, config: LimitConfig | None = None, now: Callable[[], float] = time.time,
                 rate: float = 1.0) -> None:
        """``now``: the clock the windows run on (epoch seconds); ``rate``: its seconds per wall
        second, to turn a wait on that clock into the wall-clock ``Retry-After``."""
        self.config = config or LimitConfig()
        self._now = now
        self.rate = rate
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}

    def _client(self, ip: str, now: float) -> _Client:
        c = self._clients.setdefault(ip, _Client())
        minute, ten_s, day = int(now // self.config.weight_window_s), int(now // 10), int(now // 86400)
        if c.minute != minute:
            c.minute, c.used = minute, 0
        if c.ten_s != ten_s:
            c.ten_s, c.orders_10s = ten_s, 0
        if c.day != day:
            c.day, c.orders_1d = day, 0
        return c

    def admit(self, ip: str, method: str, path: str, params: dict[str, str]) -> Verdict:
        """Count one request; a non-200 verdict is Binance's refusal (429/418)."""
        cfg = self.config
        if cfg.weight_limit <= 0 or not path.startswith("/api/"):
            return Verdict()
        with self._lock:
            now = self._now()
            c = self._client(ip, now)
            if now < c.banned_until:
                return self._ban(c, now)
            if now < c.wait_until:
                c.strikes += 1
                if c.strikes > cfg.ban_after:
                    c.banned_until = now + cfg.ban_seconds
                    return self._ban(c, now)
                return self._too_much(c, now)
            weight = weight_of(method, path, params)
            if c.used + weight > cfg.weight_limit:
                c.wait_until, c.strikes = (c.minute + 1) * cfg.weight_window_s, 0
                return self._too_much(c, now)
            c.used += weight
            headers = {weight_header(cfg.weight_window_s): str(c.used)}
            if (method, path) == ("POST", "/api/v3/order"):
                if c.orders_10s >= cfg.orders_10s or c.orders_1d >= cfg.orders_1d:
                    per = "10 SECOND" if c.orders_10s >= cfg.orders_10s else "1 DAY"
                    limit = cfg.orders_10s if per == "10 SECOND" else cfg.orders_1d
                    retry = (c.ten_s + 1) * 10 - now if per == "10 SECOND" else (c.day + 1) * 86400 - now
                    return Verdict(429, {"code": -1015, "msg": f"Too many new orders; current limit is {limit} "
                                                               f"orders per {per}."},
                                   {**headers, "Retry-After": self._retry(retry)})
                c.orders_10s += 1
                c.orders_1d += 1
                headers[ORDER_HEADERS[0]] = str(c.orders_10s)
                headers[ORDER_HEADERS[1]] = str(c.orders_1d)
            return Verdict(headers=headers)

    def _too_much(self, c: _Client, now: float) -> Verdict:
        return Verdict(429, {"code": -1003, "msg": f"Too much request weight used; current limit is "
                                                   f"{self.config.weight_limit} request weight per {_per(self.config.weight_window_s)}. Please "
                                                   "use WebSocket Streams for live updates to avoid polling the API."},
                       {weight_header(self.config.weight_window_s): str(c.used),
                        "Retry-After": self._retry(c.wait_until - now)})

    def _ban(self, c: _Client, now: float) -> Verdict:
        until = int(c.banned_until * 1000)
        return Verdict(418, {"code": -1003, "msg": f"Way too much request weight used; IP banned until {until}. "
                                                   "Please use WebSocket Streams for live updates to avoid bans."},
                       {weight_header(self.config.weight_window_s): str(c.used),
                        "Retry-After": self._retry(c.banned_until - now)})

    def _retry(self, seconds: float) -> str:
        return str(max(1, math.ceil(seconds / self.rate)))

    def order_usage(self, ip: str) -> tuple[int, int]:
        """(orders this 10 s, orders today) of a client, for GET /api/v3/rateLimit/order."""
        with self._lock:
            c = self._client(ip, self._now())
            return c.orders_10s, c.orders_1d
