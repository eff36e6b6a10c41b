"""One small HTTP server for the bot: ``/metrics`` (Prometheus) and ``/health`` (JSON, 200/503).

Runs in a daemon thread next to the bar loop and stops cleanly::

    server = start_from_args(args, metrics, health)    # None when --metrics-port 0
    ...
    if server: server.stop()

Default port 9109 (``--metrics-port`` or ``METRICS_PORT``), address 127.0.0.1 (``--metrics-addr``
or ``METRICS_ADDR``): /metrics shows balances and PnL, so on bare metal only the machine itself may
read it. The Docker image sets ``METRICS_ADDR=0.0.0.0`` (Prometheus scrapes it from another
container; compose publishes the port on the host's 127.0.0.1 only). Port 0 disables the server.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..cli import number
from ..errors import UserError
from .health import HealthState

if TYPE_CHECKING:  # prometheus_client loads when a server is made: the CLI parsers import this module
    from prometheus_client import CollectorRegistry

DEFAULT_PORT = 9109
DEFAULT_ADDR = "127.0.0.1"  # balances are not for the network; the image sets 0.0.0.0

StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: no access log
        pass


def make_app(registry: CollectorRegistry, health: HealthState | None) -> Callable[[dict, StartResponse], Iterable[bytes]]:
    """The WSGI application: /metrics, /health, and a tiny index on /."""
    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app(registry)

    def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/health":
            if health is None:
                ok, doc = True, {"status": "ok"}
            else:
                ok, doc = health.check()
            body = json.dumps(doc).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                    ("Cache-Control", "no-store")])
            return [body]
        if path == "/":
            body = b"ethbtc bot: /metrics (Prometheus), /health (JSON)\n"
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class MetricsServer:
    """Serves ``make_app`` on ``addr:port`` from a daemon thread (port 0 here = any free port)."""

    def __init__(self, registry: CollectorRegistry, health: HealthState | None = None,
                 addr: str = DEFAULT_ADDR, port: int = DEFAULT_PORT) -> None:
        server_class = _ThreadingServerV6 if ":" in addr else _ThreadingServer
        try:
            self._server = make_server(addr, port, make_app(registry, health),
                                       server_class=server_class, handler_class=_QuietHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"metrics port {addr}:{port} is already in use: choose another with "
                                f"--metrics-port, or 0 to disable the metrics server") from None
            raise UserError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from None
        self.addr = addr
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"metrics-http-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr in ("0.0.0.0", "") else "[::1]" if self.addr == "::" else self.addr
        return f"http://{host}:{self.port}"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket, join the thread (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _env_port() -> int:
    raw = os.environ.get("METRICS_PORT", str(DEFAULT_PORT))
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"METRICS_PORT must be a port number, got {raw!r}") from None


def add_metrics_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=number(int, 0, 65535), default=None,
                        help=f"port for /metrics and /health (default METRICS_PORT or {DEFAULT_PORT}; 0 disables)")
    parser.add_argument("--metrics-addr", default=None,
                        help=f"address to listen on (default METRICS_ADDR or {DEFAULT_ADDR})")


def start_from_args(args: argparse.Namespace, registry: CollectorRegistry,
                    health: HealthState | None) -> MetricsServer | None:
    """Start the server as the flags/env say; ``None`` when disabled (port 0)."""
    port = args.metrics_port if getattr(args, "metrics_port", None) is not None else _env_port()
    addr = getattr(args, "metrics_addr", None) or os.environ.get("METRICS_ADDR") or DEFAULT_ADDR
    if not 0 <= port <= 65535:
        raise UserError(f"metrics port (--metrics-port/METRICS_PORT) must be 0..65535, got {port}")
    if port == 0:
        return None
    return MetricsServer(registry, health, addr, port).start()
