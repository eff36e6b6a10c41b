"""HTTP layer of the paper exchange: Binance REST paths, authentication, faults, /sim control.

``/api/...`` and ``/sapi/...`` speak Binance's shapes (see ``rest``); ``/sim/...`` are unsigned
control endpoints answered only to localhost:

- ``POST /sim/advance`` (``bars``, default 1; query or JSON body): move the market clock
  forward, filling resting orders the price trades through; returns the state.
- ``GET /sim/state``: balances, market time, bar index, clock mode, price, book.
- ``GET /sim/ledger``: every fill (time, symbol, side, orderId, clientOrderId, price, qty,
  quoteQty, commission, commissionAsset, isMaker, tradeId).
- ``GET /sim/orders``: every order request received (POST/DELETE on order paths), rejected ones too.
- ``GET /sim/faults``, ``POST /sim/faults`` (JSON :class:`~ethbtc.sim.faults.FaultConfig`).

- ``POST /sim/clock`` (``mode``: manual | speed | realtime, ``barsPerSecond``): change the replay
  clock from the current position on; ``manual`` freezes the market (a stalled feed).

One time line: the EXCHANGE clock answers /api/v3/time (plus fault skew) and stamps every
order, trade, kline and ledger time. In real-time replay with the time origin ``now`` (the CLI's
default) it is the wall clock and the replayed market runs on it; frozen (``/sim/clock``
manual) the market falls behind the clock exactly like a stalled feed, so klines go stale. In
accelerated and manual replay the exchange clock is the replayed market time (ahead of the wall
clock with origin ``now``, historical with origin ``data``); signed timestamps are then checked
as documented in :mod:`ethbtc.sim.auth`, so a client that synced from /api/v3/time keeps working.
Rate limits (request weight, order counts; :mod:`ethbtc.sim.limits`) count exchange-clock time and
answer before fault injection, as Binance's limiter sits in front of its matching engine.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from . import auth
from .apierrors import ApiError
from .build import SimConfig, build_engine
from .engine import Engine
from .faults import FaultConfig, FaultInjector
from .limits import LimitConfig, RateLimiter
from .rest import ORDER_PATHS, ROUTES, RestApi
from .rules import fmt

log = logging.getLogger("ethbtc.sim")


def is_local(address: str) -> bool:
    """True for a loopback client address (IPv4, IPv6 or IPv4-mapped IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@dataclass
class Reply:
    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class _HTTPServer(ThreadingHTTPServer):
    """A client that vanishes mid-request (a killed executor, a timed-out read) is routine here:
    logged at debug level instead of socketserver's traceback on stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # reset, aborted, broken pipe
            log.debug("client %s went away mid-request", client_address)
            return
        super().handle_error(request, client_address)


class SimServer:
    """A running paper exchange: ``base_url``, ``engine``, control helpers, ``close()``."""

    def __init__(self, engine: Engine, *, api_key: str, api_secret: str, faults: FaultConfig | None = None,
                 host: str = "127.0.0.1", port: int = 0, limits: LimitConfig | None = None) -> None:
        self.engine = engine
        free = engine.free_clock  # rate limits run on the exchange clock when it runs by itself
        self.limiter = (RateLimiter(limits, lambda: engine.exchange_ms() / 1000, free[1]) if free is not None
                        else RateLimiter(limits))
        self.api_key = api_key
        self._secret = api_secret
        self.faults = FaultInjector(faults)
        self.rest = RestApi(engine, self.server_ms, self.limiter.config)
        self.order_log: list[dict[str, object]] = []
        self._log_lock = threading.Lock()
        self._offsets: collections.deque[int] = collections.deque(maxlen=auth.OFFSETS_KEPT)
        self._stop = threading.Event()
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.sim = self  # type: ignore[attr-defined]
        bound_host, bound_port = self.httpd.server_address[:2]
        self.base_url = f"http://{host if host not in ('', '0.0.0.0') else '127.0.0.1'}:{bound_port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="ethbtc-sim", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    # -- clocks and control
    def exchange_ms(self) -> int:
        """The exchange clock without fault skew (see the module docstring)."""
        with self.engine.lock:
            self.engine.sync()
            return self.engine.exchange_ms()

    def server_ms(self) -> int:
        """serverTime as shown to clients; remembers the offset so a client synced to it passes."""
        exchange = self.exchange_ms()
        offset = exchange - int(time.time() * 1000)
        with self._log_lock:
            if not self._offsets or abs(self._offsets[-1] - offset) > 50:
                self._offsets.append(offset)
        return exchange + self.faults.skew_ms

    def _clock_candidates(self) -> list[int]:
        wall = int(time.time() * 1000)
        with self._log_lock:
            offsets = {0, *self._offsets}
        if self.engine.wall_clock:
            offsets = {0}
        return [wall + o + self.faults.skew_ms for o in sorted(offsets)]

    def set_clock(self, mode: str, bars_per_second: float | None = None) -> dict[str, object]:
        with self.engine.lock:
            self.engine.sync()
            self.engine.market.clock.set_mode(mode, bars_per_second)
        return self.state()

    def advance(self, bars: float = 1) -> dict[str, object]:
        self.engine.advance(bars)
        return self.state()

    def set_faults(self, **settings: Any) -> None:
        """Replace the fault settings (keywords of :class:`FaultConfig`); no keywords = no faults."""
        self.faults.configure(FaultConfig.from_json(settings))

    def ledger(self) -> list[dict[str, object]]:
        with self.engine.lock:
            self.engine.sync()
            return [f.to_json() for f in self.engine.fills]

    def state(self) -> dict[str, object]:
        e = self.engine
        with e.lock:
            balances = e.balances()
            i, f = e.market.locate(e.pos)
            bid, ask = e.market.bid_ask(e.pos)
            n = len(e.market.series)
            return {
                "serverTime": self.server_ms(),
                "marketTime": e.market_time(),
                "marketTimeIso": pd.Timestamp(e.market_time(), unit="ms", tz="UTC").isoformat(),
                "exchangeTime": e.exchange_ms(), "timeOrigin": e.time_origin, "wallClock": e.wall_clock,
                "dataTimeIso": pd.Timestamp(e.market.series.to_data_ms(e.market_time()), unit="ms",
                                            tz="UTC").isoformat(),
                "barIndex": i, "barFraction": f, "barOpenTime": int(e.market.series.open_ms[i]), "bars": n,
                "finished": e.pos >= n,
                "clock": {"mode": e.market.clock.mode, "barsPerSecond": e.market.clock.bars_per_second},
                "symbol": e.rules.symbol, "price": fmt(e.market.last_price(e.pos)),
                "bidPrice": fmt(bid), "askPrice": fmt(ask),
                "balances": {a: {"free": fmt(fr), "locked": fmt(lk)} for a, (fr, lk) in balances.items()},
                "openOrders": len(e.open), "fills": len(e.fills),
            }

    # -- request handling (socket-free, so it can be tested directly)
    def handle_api(self, method: str, path: str, raw_query: str, raw_body: str, api_key: str | None,
                   client_ip: str = "127.0.0.1") -> Reply:
        params = dict(parse_qsl(raw_body, keep_blank_values=True))
        params.update(parse_qsl(raw_query, keep_blank_values=True))  # rest-api.md: the query string wins
        verdict = self.limiter.admit(client_ip, method, path, params)
        fault = None
        if verdict.status != 200:
            reply = Reply(verdict.status, verdict.body, dict(verdict.headers))
        else:
            fault = self.faults.before(path)
            reply = self._faulted(fault, method, path, params, raw_query, raw_body, api_key, client_ip)
            reply.headers = {**verdict.headers, **reply.headers}
        if reply.drop:
            fault = "drop_after_order"
        if path in ORDER_PATHS and method in ("POST", "DELETE"):
            self._log_order(method, path, params, reply, fault)
        return reply

    def _faulted(self, fault: str | None, method: str, path: str, params: dict[str, str], raw_query: str,
                 raw_body: str, api_key: str | None, client_ip: str) -> Reply:
        retry = {"Retry-After": str(self.faults.config.retry_after)}
        if fault == "ban_418":
            until = self.server_ms() + self.faults.config.retry_after * 1000
            return Reply(418, {"code": -1003, "msg": f"Way too much request weight used; IP banned until {until}. "
                                                     "Please use WebSocket Streams for live updates to avoid bans."},
                         retry)
        if fault == "rate_limit_429":
            return Reply(429, {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request "
                                                     "weight per 1 MINUTE. Please use WebSocket Streams for live "
                                                     "updates to avoid polling the API."}, retry)
        is_new_order = method == "POST" and path == "/api/v3/order"
        if fault == "error_5xx" and not (self.faults.config.error_5xx_executes and is_new_order):
            return self._server_error()
        if fault == "delay":
            self._stop.wait(self.faults.config.delay_seconds)
        reply = self._dispatch(method, path, params, raw_query, raw_body, api_key, client_ip)
        if fault == "error_5xx":
            return self._server_error()
        if is_new_order and reply.status == 200 and self.faults.drop_after_order(path):
            reply.drop = True
        return reply

    def _server_error(self) -> Reply:
        return Reply(self.faults.config.status_5xx,
                     {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})

    def _dispatch(self, method: str, path: str, params: dict[str, str], raw_query: str, raw_body: str,
                  api_key: str | None, client_ip: str = "127.0.0.1") -> Reply:
        route = ROUTES.get((method, path))
        if route is None:
            return Reply(404, {"code": -1000, "msg": f"Unknown endpoint {method} {path} (not simulated)."})
        name, signed = route
        try:
            if signed:
                auth.check_api_key(api_key, self.api_key)
                auth.check_signed(params, raw_query, raw_body, self._secret, self._clock_candidates())
            if name == "rate_limit_order":
                return Reply(200, self.rest.rate_limit_order(params, *self.limiter.order_usage(client_ip),
                                                             self.limiter.config))
            return Reply(200, getattr(self.rest, name)(params))
        except ApiError as err:
            return Reply(err.status, err.body())
        except Exception:
            log.exception("internal error handling %s %s", method, path)
            return Reply(500, {"code": -1000, "msg": "An unknown error occurred while processing the request."})

    def _log_order(self, method: str, path: str, params: dict[str, str], reply: Reply, fault: str | None) -> None:
        body = reply.body if isinstance(reply.body, dict) else {}
        entry: dict[str, object] = {
            "serverTime": self.server_ms(), "marketTime": self.engine.market_time(), "method": method,
            "path": path, "params": {k: v for k, v in params.items() if k != "signature"},
            "httpStatus": reply.status, "fault": fault}
        if "code" in body:
            entry.update(code=body["code"], msg=body["msg"])
        else:
            entry.update(orderId=body.get("orderId"), status=body.get("status"))
        with self._log_lock:
            entry["seq"] = len(self.order_log) + 1
            self.order_log.append(entry)
        log.info("order request %s %s %s -> %s", method, path, entry["params"], reply.status)

    def handle_control(self, method: str, path: str, raw_query: str, raw_body: str) -> Reply:
        args: dict[str, Any] = dict(parse_qsl(raw_query))
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
                return Reply(400, {"code": -1000, "msg": "request body is not JSON"})
            if not isinstance(body, dict):
                return Reply(400, {"code": -1000, "msg": "request body must be a JSON object"})
            args.update(body)
        try:
            if (method, path) == ("POST", "/sim/advance"):
                bars = float(args.get("bars", 1))
                if not bars >= 0:
                    raise ValueError("bars must be >= 0")
                return Reply(200, self.advance(bars))
            if (method, path) == ("POST", "/sim/clock"):
                mode = str(args.get("mode", ""))
                bps = args.get("barsPerSecond")
                return Reply(200, self.set_clock(mode, None if bps is None else float(bps)))
            if (method, path) == ("GET", "/sim/state"):
                return Reply(200, self.state())
            if (method, path) == ("GET", "/sim/ledger"):
                return Reply(200, self.ledger())
            if (method, path) == ("GET", "/sim/orders"):
                with self._log_lock:
                    return Reply(200, list(self.order_log))
            if (method, path) == ("GET", "/sim/faults"):
                return Reply(200, self.faults.state())
            if (method, path) == ("POST", "/sim/faults"):
                self.faults.configure(FaultConfig.from_json(args))
                return Reply(200, self.faults.state())
        except (TypeError, ValueError) as exc:
            return Reply(400, {"code": -1000, "msg": str(exc)})
        return Reply(404, {"code": -1000, "msg": f"Unknown control endpoint {method} {path}."})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ethbtc-sim"
    wbufsize = -1  # headers and body leave in one segment (flushed after each request) ...
    disable_nagle_algorithm = True  # ... and without waiting for the client's delayed ACK

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        sim: SimServer = self.server.sim  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if url.path.startswith("/sim/"):
            if not is_local(self.client_address[0]):
                reply = Reply(403, {"code": -1000, "msg": "control endpoints answer localhost only"})
            else:
                reply = sim.handle_control(method, url.path, url.query, raw_body)
        else:
            reply = sim.handle_api(method, url.path, url.query, raw_body, self.headers.get("X-MBX-APIKEY"),
                                   self.client_address[0])
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before the answer
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


@contextlib.contextmanager
def serve_sim(candles: object, *, balances: dict[str, object] | None = None, api_key: str | None = None,
              api_secret: str | None = None, host: str = "127.0.0.1", port: int = 0,
              **options: Any) -> Iterator[SimServer]:
    """Run a paper exchange on ``candles`` for the duration of a ``with`` block.

    ``options`` are :class:`SimConfig` fields (``clock='manual'`` by default, ``start``,
    ``maker_fee``, ``pay_fees_in_bnb``, ``partial_fill``, ``faults=FaultConfig(...)``, ...).
    """
    cfg = SimConfig(**options)
    if balances is not None:
        cfg.balances = balances
    if api_key is not None:
        cfg.api_key = api_key
    if api_secret is not None:
        cfg.api_secret = api_secret
    server = SimServer(build_engine(candles, cfg), api_key=cfg.api_key, api_secret=cfg.api_secret,
                       faults=cfg.faults, host=host, port=port, limits=cfg.limits).start()
    try:
        yield server
    finally:
        server.close()
