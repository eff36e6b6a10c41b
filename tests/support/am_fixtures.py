"""Real-Alertmanager test harness (issue 21), next to ``prom_fixtures``' real Prometheus.

- ``Receiver``: a local HTTP server standing in for the Telegram Bot API (Alertmanager's
  ``api_url`` points at it; it answers ``sendMessage`` like Telegram does) and for a generic
  webhook; it records every message with its arrival time.
- ``MailSink``: a local SMTP server (aiosmtpd) receiving Alertmanager's e-mails.
- ``routing_config(env, receiver)``: the shipped ``grafana/alertmanager.yml`` rendered by
  ``ethbtc.monitoring.alerting.render_config`` with test channels, then only the *waiting* times shortened
  (group_wait / group_interval); repeat intervals, routes, inhibition stay as shipped.
- ``AlertmanagerServer`` / ``running_alertmanager``: the Debian ``prometheus-alertmanager``
  binary on a free 127.0.0.1 port with temporary storage.

Tests skip with a clear message when the binaries are absent.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ethbtc.monitoring.alerting import SHIPPED, render_config
from tests.support.prom_fixtures import ServerProcess, free_port

AM_HINT = ("install it with `apt-get install -y prometheus-alertmanager` "
           "(.ci/run does this when it is missing)")
TOKEN = "123456:test-token-not-real"
CHAT_ID = -100777


def require_alertmanager() -> tuple[str, str]:
    """Paths of the alertmanager server and amtool, or skip."""
    server = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    amtool = shutil.which("amtool")
    if server is None or amtool is None:
        pytest.skip(f"Alertmanager binaries not found: {AM_HINT}")
    return server, amtool


@dataclass
class Message:
    at: float  # time.time() on arrival
    channel: str  # telegram | webhook
    body: dict[str, Any]
    path: str

    @property
    def text(self) -> str:  # telegram text; for the webhook a one-line digest
        if self.channel == "telegram":
            return str(self.body.get("text", ""))
        return f"{self.body.get('status')} {self.body.get('commonLabels', {}).get('alertname')}"

    @property
    def status(self) -> str:
        if self.channel == "webhook":
            return str(self.body["status"])
        head = self.text.split(":", 1)[0]
        return "resolved" if head.startswith("RESOLVED") else "firing"

    def alertname(self) -> str | None:
        if self.channel == "webhook":
            return self.body.get("commonLabels", {}).get("alertname")
        first = self.text.split("\n", 1)[0]
        return first.split(": ", 1)[1].strip() if ": " in first else None


@dataclass
class Receiver:
    """Telegram Bot API + webhook stand-in on 127.0.0.1."""

    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body = json.loads(raw or b"{}")
                else:  # form-encoded (older Telegram clients)
                    from urllib.parse import parse_qs
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                channel = "telegram" if self.path.endswith("/sendMessage") else "webhook"
                with outer.lock:
                    outer.messages.append(Message(time.time(), channel, body, self.path))
                    n = len(outer.messages)
                if channel == "telegram":
                    reply = {"ok": True, "result": {"message_id": n, "date": int(time.time()),
                                                    "chat": {"id": int(body.get("chat_id", 0)), "type": "group"},
                                                    "text": body.get("text", "")}}
                else:
                    reply = {"ok": True}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Message]:
        with self.lock:
            return list(self.messages)

    def of(self, alertname: str, channel: str | None = None, status: str | None = None) -> list[Message]:
        return [m for m in self.snapshot() if m.alertname() == alertname and (channel is None or m.channel == channel)
                and (status is None or m.status == status)]


@dataclass
class Mail:
    at: float
    to: list[str]
    subject: str
    body: str


class MailSink:
    """SMTP on 127.0.0.1 (no TLS, no login) that keeps every message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[Mail] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                part = msg.get_body(preferencelist=("plain", "html"))
                outer.mails.append(Mail(time.time(), list(envelope.rcpt_tos), str(msg["Subject"]),
                                        part.get_content() if part is not None else ""))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def channel_env(receiver: Receiver, mail: MailSink | None = None) -> dict[str, str]:
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": str(CHAT_ID), "ALERT_WEBHOOK_URL": f"{receiver.url}/hook"}
    if mail is not None:
        env |= {"ALERT_EMAIL_TO": "ops@example.org", "SMTP_SMARTHOST": f"127.0.0.1:{mail.port}",
                "SMTP_FROM": "ethbtc-bot@example.org", "SMTP_REQUIRE_TLS": "false"}
    return env


def routing_config(env: Mapping[str, str], receiver: Receiver, wait: str = "1s", interval: str = "2s") -> dict[str, Any]:
    """Shipped routes/receivers/inhibition + test channels; waits shortened, repeats unchanged."""
    config = render_config(yaml.safe_load(SHIPPED.read_text()), env)
    for r in config["receivers"]:
        for tg in r.get("telegram_configs", []):
            tg["api_url"] = receiver.url
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        if "group_wait" in route or route is config["route"]:
            route["group_wait"] = wait
        if "group_interval" in route or route is config["route"]:
            route["group_interval"] = interval
    return config


class AlertmanagerServer(ServerProcess):
    name = "alertmanager"

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.binary, self.amtool = require_alertmanager()
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        super().__init__(workdir)

    def start(self, timeout: float = 30) -> AlertmanagerServer:
        self.launch([self.binary, f"--config.file={self.config_path}", f"--storage.path={self.workdir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=info"],
                    timeout)
        return self

    def post(self, alerts: list[dict[str, Any]]) -> None:
        r = requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert r.status_code == 200, r.text

    def alerts(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/api/v2/alerts", timeout=5).json()


@contextlib.contextmanager
def running_alertmanager(config: dict[str, Any], workdir: Path) -> Iterator[AlertmanagerServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = AlertmanagerServer(config, workdir)
    try:
        yield server.start()
    finally:
        server.stop()


def amtool_check(amtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
