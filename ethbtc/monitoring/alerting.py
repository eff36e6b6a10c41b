"""Notifications through Prometheus Alertmanager: its config from ``.env``, and per-trade notices.

Alertmanager is the only router of everything the operator is told (docs/monitoring.md >
"Alerts"): Prometheus fires the rules of ``grafana/alerts.yml`` at it, and the executor posts one
``EthbtcTrade`` alert per executed rebalance to its API (``--alertmanager-url`` /
``ALERTMANAGER_URL``), so Telegram, e-mail and webhook settings, grouping and silences live in
one place.

- ``render_config(base, env)``: the shipped ``grafana/alertmanager.yml`` (routes, inhibition,
  receivers without channels) with the channels the environment configures filled in
  (``TELEGRAM_BOT_TOKEN``/``TELEGRAM_CHAT_ID``, ``ALERT_EMAIL_TO`` + ``SMTP_*``,
  ``ALERT_WEBHOOK_URL``). No channel set = receivers stay empty = no notifications. Alertmanager
  cannot read environment variables itself (and ``chat_id`` has no ``_file`` form), hence this
  step: ``python -m ethbtc.monitoring.alerting render --out alertmanager.yml`` (compose runs it as the
  one-shot ``alertmanager-config`` service).
- ``TradeNotifier``: posts trade notices from a background thread (a slow or absent Alertmanager
  never delays an order; an outage is one warning line); each notice's labels name its bar, so a
  re-sent notice is the same alert to Alertmanager, never a second message.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import logging
import os
import queue
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from ..errors import UserError
from ..fileio import atomic_path

log = logging.getLogger("ethbtc.monitoring.alerting")

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "grafana" / "alertmanager.yml"
TRADE_ALERT = "EthbtcTrade"
# Which receivers of the shipped config get which channel (e-mail would be spam per trade).
CHANNELS_OF: dict[str, tuple[str, ...]] = {
    "critical": ("telegram", "email", "webhook"),
    "warning": ("telegram", "email", "webhook"),
    "trades": ("telegram", "webhook"),
}
TELEGRAM_MESSAGE = (
    '{{ if eq .Status "firing" }}{{ if eq .CommonLabels.alertname "' + TRADE_ALERT + '" }}TRADE{{ else }}'
    "FIRING {{ .CommonLabels.severity | toUpper }}{{ end }}{{ else }}RESOLVED{{ end }}: {{ .CommonLabels.alertname }}\n"
    '{{ range .Alerts }}{{ if eq .Status "resolved" }}no longer: {{ end }}{{ .Annotations.summary }}\n'
    '{{ if and (eq .Status "firing") .Annotations.action }}What to do: {{ .Annotations.action }}\n{{ end }}'
    "{{ end }}"
)


def _env(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def render_config(base: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``base`` with the channels configured in ``env`` added to its receivers (a new dict)."""
    out = copy.deepcopy(base)
    channels: dict[str, dict[str, Any]] = {}
    token, chat = _env(env, "TELEGRAM_BOT_TOKEN"), _env(env, "TELEGRAM_CHAT_ID")
    if token or chat:
        if not (token and chat):
            raise UserError("set both TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID in .env (or neither to send no "
                            "Telegram messages); docs/monitoring.md 'Alerts' shows how to get them")
        if not re.fullmatch(r"-?\d{1,20}", chat):
            raise UserError(f"TELEGRAM_CHAT_ID must be a number such as 123456789 or -1001234567890, got {chat!r}")
        if not re.fullmatch(r"\d+:[\w-]+", token):
            raise UserError("TELEGRAM_BOT_TOKEN does not look like a bot token from @BotFather (digits:letters)")
        channels["telegram"] = {"telegram_configs": [{
            "bot_token": token, "chat_id": int(chat), "parse_mode": "", "message": TELEGRAM_MESSAGE,
            "send_resolved": True}]}
    to = _env(env, "ALERT_EMAIL_TO")
    if to:
        host, sender = _env(env, "SMTP_SMARTHOST"), _env(env, "SMTP_FROM")
        if not re.fullmatch(r"[\w.-]+:\d{1,5}", host) or not sender:
            raise UserError("ALERT_EMAIL_TO needs SMTP_SMARTHOST (host:port, e.g. smtp.gmail.com:587) and SMTP_FROM "
                            "in .env")
        email: dict[str, Any] = {"to": to, "from": sender, "smarthost": host, "send_resolved": True,
                                 "require_tls": _env(env, "SMTP_REQUIRE_TLS").lower() not in ("0", "false", "no")}
        if _env(env, "SMTP_USERNAME"):
            email["auth_username"] = _env(env, "SMTP_USERNAME")
            email["auth_password"] = _env(env, "SMTP_PASSWORD")
        channels["email"] = {"email_configs": [email]}
    hook = _env(env, "ALERT_WEBHOOK_URL")
    if hook:
        if not re.match(r"^https?://[^\s/]+", hook):
            raise UserError(f"ALERT_WEBHOOK_URL must be an http(s):// URL, got {hook[:12]!r}...")
        channels["webhook"] = {"webhook_configs": [{"url": hook, "send_resolved": True}]}
    receivers = {r["name"]: r for r in out.get("receivers", [])}
    for name, kinds in CHANNELS_OF.items():
        if name not in receivers:
            raise UserError(f"the Alertmanager base config has no receiver named {name!r}")
        for kind in kinds:
            if kind in channels:
                for key, configs in channels[kind].items():
                    cfgs = copy.deepcopy(configs)
                    if name == "trades":  # a trade notice has nothing to resolve
                        for c in cfgs:
                            c["send_resolved"] = False
                    receivers[name][key] = cfgs
    return out


def configured_channels(config: dict[str, Any]) -> list[str]:
    """Channel kinds present in a rendered config, e.g. ['telegram', 'webhook']."""
    kinds = {k.removesuffix("_configs") for r in config.get("receivers", []) for k in r if k.endswith("_configs")}
    return sorted(kinds)


# ------------------------------------------------------------------------------- trade notices
@dataclass(frozen=True)
class TradeNotice:
    """What one bar's executed rebalance did (figures in base/quote units, e.g. ETH/BTC)."""

    symbol: str
    mode: str
    bar_close: str  # ISO time of the bar's close: the notice's identity
    side: str  # BUY / SELL
    qty: float
    avg_price: float
    quote_qty: float
    fee_quote: float
    fills: int
    weight: float  # base-asset weight after the trade, 0..1
    wealth: float
    pnl: float  # since session start, in the quote asset

    def alert(self, now: dt.datetime, hold: dt.timedelta = dt.timedelta(minutes=10)) -> dict[str, Any]:
        base, quote = self.symbol[:-3] if self.symbol.endswith("BTC") else self.symbol, "BTC"
        summary = (f"{self.mode} {self.symbol}: {self.side} {_amount(self.qty)} {base} at {_amount(self.avg_price)} "
                   f"({_amount(self.quote_qty)} {quote}, {self.fills} fill{'s' if self.fills != 1 else ''}), "
                   f"fee {_amount(self.fee_quote)} {quote}; {base} weight now {self.weight:.1%}; "
                   f"PnL {'+' if self.pnl >= 0 else '-'}{_amount(abs(self.pnl))} {quote} since session start")
        return {
            "labels": {"alertname": TRADE_ALERT, "severity": "info", "symbol": self.symbol, "mode": self.mode,
                       "side": self.side.lower(), "bar": self.bar_close},
            "annotations": {"summary": summary, "qty": f"{self.qty:.8f}", "price": f"{self.avg_price:.8f}",
                            "quote_qty": f"{self.quote_qty:.8f}", "fee": f"{self.fee_quote:.8f}",
                            "fills": str(self.fills), "weight": f"{self.weight:.6f}",
                            "wealth": f"{self.wealth:.8f}", "pnl": f"{self.pnl:.8f}"},
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + hold),  # then it is resolved; the trades receivers send no "resolved"
        }


def _amount(x: float) -> str:
    """At most 8 decimals (Binance's precision), no trailing zeros: 0.05107, 8.4222, 0.00043105."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_alertmanager_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/@]+(/\S*)?", url):
        raise UserError(f"--alertmanager-url/ALERTMANAGER_URL must look like http://127.0.0.1:9093, got {url!r}")
    return url


class TradeNotifier:
    """Posts notices to ``{url}/api/v2/alerts`` from a daemon thread; a few retries, then a warning."""

    def __init__(self, url: str, timeout: float = 5.0, attempts: int = 3) -> None:
        self.url = check_alertmanager_url(url)
        self.timeout, self.attempts = timeout, attempts
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="trade-notices", daemon=True)
        self._thread.start()
        self.sent = 0
        self.failing = False  # the last notice could not be delivered

    def notify(self, notice: TradeNotice) -> None:
        try:
            self._queue.put_nowait(notice.alert(dt.datetime.now(dt.UTC)))
        except queue.Full:
            log.warning("trade notice for %s dropped: Alertmanager has not taken the last 1000", notice.bar_close)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = threading.Event()
        while (alert := self._queue.get()) is not None:
            for attempt in range(self.attempts):
                try:
                    r = requests.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=self.timeout)
                    if r.status_code < 300:
                        self.sent += 1
                        self.failing = False
                        break
                    problem = f"HTTP {r.status_code}: {r.text[:200]}"
                except requests.RequestException as exc:
                    problem = type(exc).__name__
                if attempt + 1 == self.attempts:  # one warning per outage, not one per trade
                    log.log(logging.DEBUG if self.failing else logging.WARNING,
                            "trade notice for bar %s not delivered to Alertmanager %s (%s); further failures "
                            "are logged at debug level until it answers again", alert["labels"]["bar"], self.url,
                            problem)
                    self.failing = True
                else:
                    stop.wait(1.0 + 2 * attempt)


# ------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    from ..cli import ArgumentParser

    p = ArgumentParser(prog="python -m ethbtc.monitoring.alerting",
                       description="Alertmanager helpers. 'render': write the Alertmanager config with the "
                                   "notification channels of .env (TELEGRAM_*, ALERT_EMAIL_TO/SMTP_*, "
                                   "ALERT_WEBHOOK_URL); none set = no notifications.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="write alertmanager.yml from the shipped base and .env")
    r.add_argument("--base", type=Path, default=SHIPPED, help=f"routes and receivers (default {SHIPPED.name})")
    r.add_argument("--out", type=Path, required=True, help="where to write the config (holds secrets)")
    r.add_argument("--mode", default="600", help="file mode, octal (default 600; compose uses 644 so the "
                                                 "alertmanager container user can read it)")
    r.add_argument("--env-file", type=Path, default=None,
                   help="dotenv file to read (default DOTENV_PATH or ./.env; real environment variables win)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from dotenv import load_dotenv

    args = build_parser().parse_args(argv)
    env_file = args.env_file or Path(os.environ.get("DOTENV_PATH") or ".env")
    if args.env_file is not None and not env_file.exists():
        raise UserError(f"--env-file {env_file} does not exist")
    load_dotenv(env_file, override=False)
    try:
        mode = int(args.mode, 8)
    except ValueError:
        raise UserError(f"--mode must be an octal file mode such as 600, got {args.mode!r}") from None
    try:
        base = yaml.safe_load(args.base.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the Alertmanager base config {args.base}: {exc}") from None
    config = render_config(base, os.environ)
    text = (f"# Rendered by `python -m ethbtc.monitoring.alerting render` from {args.base.name} and .env: holds secrets, "
            "do not commit.\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    with atomic_path(args.out) as tmp:  # the mode is set before the secrets are written
        tmp.chmod(mode)
        tmp.write_text(text, encoding="utf-8")
    chans = configured_channels(config)
    print(f"wrote {args.out}: channels {', '.join(chans) if chans else 'none (no notifications will be sent)'}")
    return 0


if __name__ == "__main__":
    from ..cli import run_main

    sys.exit(run_main(main))
