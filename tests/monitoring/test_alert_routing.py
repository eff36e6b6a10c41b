"""Issue 21: alerts reach the operator through a REAL Alertmanager, end to end.

The real ``live_executor.py --mode testnet`` trades on the paper exchange (``ethbtc.sim``), a real
Prometheus scrapes it with the shipped ``grafana/prometheus.yml`` + ``grafana/alerts.yml`` and fires
at a real Alertmanager (Debian ``prometheus-alertmanager``) running the shipped
``grafana/alertmanager.yml`` as ``ethbtc.monitoring.alerting.render_config`` fills it from ".env" values. A
local HTTP server stands in for the Telegram Bot API (``api_url``) and for a webhook, a local SMTP
server (aiosmtpd) receives the e-mails.

- the market falls while the bot holds ETH: the drawdown breaker (SPEC R24) trips, and each channel
  (Telegram, webhook, e-mail) gets exactly ONE firing ``EthbtcBreakerTripped`` message with the right labels; a restart without
  ``--reset-risk`` keeps it firing (no "resolved"); after ``--reset-risk`` each channel gets one
  "resolved" message;
- every executed rebalance produces exactly one ``EthbtcTrade`` notice whose figures match the
  executor's trade ledger;
- inhibition: "bot down" silences what it causes; ``amtool check-config`` accepts the shipped file.

Only the waiting times (scrape/evaluation 1 s, group_wait 1 s, group_interval 2 s) are shortened
here; routes, repeat intervals and inhibition are the shipped ones.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from ethbtc.monitoring.alerting import SHIPPED, TRADE_ALERT, TradeNotice, TradeNotifier, configured_channels
from ethbtc.monitoring.alerting import render_config as render_am
from tests.support.am_fixtures import (
    CHAT_ID,
    TOKEN,
    MailSink,
    Receiver,
    amtool_check,
    channel_env,
    require_alertmanager,
    routing_config,
    running_alertmanager,
)
from tests.support.executor_driver import HISTORY_BARS, ExecutorDriver, anchored_candles
from tests.support.prom_fixtures import PrometheusServer, free_port, render_config, require_binary, wait_for

pytestmark = pytest.mark.slow
BAR_S = 60
CRASH_AT = HISTORY_BARS + 20  # 20 bars into the replayed catch-up, while Prometheus watches
CRASH_BARS, CRASH_STEP = 40, 0.003  # -0.3 % a bar for 40 bars: about -11 %
MAX_DD = 0.01  # the breaker under test (R24, dynamic: 1 - W/peak >= 1 %)


def crash_candles(now_ms: int) -> pd.DataFrame:
    """The driver's wall-clock-anchored candles with a steady fall: the bot (a dip buyer) enters ETH
    on the way down and its drawdown passes MAX_DD."""
    df = anchored_candles(now_ms)
    factor = np.ones(len(df))
    factor[CRASH_AT:CRASH_AT + CRASH_BARS] = (1 - CRASH_STEP) ** np.arange(1, CRASH_BARS + 1)
    factor[CRASH_AT + CRASH_BARS:] = factor[CRASH_AT + CRASH_BARS - 1]
    cols = ["open", "high", "low", "close"]
    df[cols] = np.round(df[cols].to_numpy() * factor[:, None], 5)
    return df


class BreakerWatch:
    """Polls the executor's /metrics every 0.1 s: when did max_drawdown read 1, and 0 again."""

    LINE = re.compile(r'^ethbtc_breaker_tripped\{breaker="max_drawdown"\} (\S+)$', re.MULTILINE)

    def __init__(self, url: str) -> None:
        self.url, self.samples = url, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                m = self.LINE.search(requests.get(f"{self.url}/metrics", timeout=1).text)
            except requests.RequestException:
                continue
            if m:
                self.samples.append((time.time(), float(m.group(1))))

    def first(self, value: float, after: float = 0.0) -> float | None:
        return next((t for t, v in list(self.samples) if v == value and t > after), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# ------------------------------------------------------------------------------ config checks
def test_amtool_accepts_the_shipped_and_the_rendered_config(tmp_path: Path, receiver: Receiver) -> None:
    _, amtool = require_alertmanager()
    run = amtool_check(amtool, SHIPPED)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 receivers" in run.stdout and "2 inhibit rules" in run.stdout
    env = channel_env(receiver) | {"ALERT_EMAIL_TO": "ops@example.org", "SMTP_SMARTHOST": "smtp.example.org:587",
                                   "SMTP_FROM": "bot@example.org", "SMTP_USERNAME": "bot", "SMTP_PASSWORD": "pw-x"}
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(yaml.safe_dump(render_am(yaml.safe_load(SHIPPED.read_text()), env)))
    run = amtool_check(amtool, rendered)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_channel_in_env_means_no_notifications() -> None:
    """README: all channel variables empty = receivers without any channel."""
    base = yaml.safe_load(SHIPPED.read_text())
    assert configured_channels(base) == []
    assert configured_channels(render_am(base, {"TELEGRAM_BOT_TOKEN": "", "ALERT_WEBHOOK_URL": " "})) == []
    text = SHIPPED.read_text()
    assert "bot_token" not in text and "auth_password" not in text and "http" not in text.split("receivers:")[1]


def test_trade_receivers_send_no_resolved_and_no_email(receiver: Receiver) -> None:
    env = channel_env(receiver) | {"ALERT_EMAIL_TO": "ops@example.org", "SMTP_SMARTHOST": "smtp.example.org:587",
                                   "SMTP_FROM": "bot@example.org"}
    cfg = render_am(yaml.safe_load(SHIPPED.read_text()), env)
    rec = {r["name"]: r for r in cfg["receivers"]}
    assert set(rec["trades"]) == {"name", "telegram_configs", "webhook_configs"}
    assert all(c["send_resolved"] is False for k in ("telegram_configs", "webhook_configs") for c in rec["trades"][k])
    for name in ("critical", "warning"):
        assert {"telegram_configs", "webhook_configs", "email_configs"} <= set(rec[name])
        assert rec[name]["telegram_configs"][0]["chat_id"] == CHAT_ID


@pytest.mark.parametrize(("env", "needle"), [
    ({"TELEGRAM_BOT_TOKEN": TOKEN}, "TELEGRAM_CHAT_ID"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "@mychannel"}, "must be a number"),
    ({"TELEGRAM_BOT_TOKEN": "paste-here", "TELEGRAM_CHAT_ID": "42"}, "does not look like a bot token"),
    ({"ALERT_EMAIL_TO": "ops@example.org"}, "SMTP_SMARTHOST"),
    ({"ALERT_WEBHOOK_URL": "hooks.example.org/x"}, "http(s)://"),
])
def test_render_cli_bad_env_is_one_line_exit_2(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    """Bad input: one `error:` line naming the variable, exit 2, no traceback, no secret echoed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ALERT_", "SMTP_"))}
    run = subprocess.run([sys.executable, "-m", "ethbtc.monitoring.alerting", "render", "--out", str(tmp_path / "am.yml"),
                          "--env-file", os.devnull], env=clean | env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
    assert needle in run.stderr and "Traceback" not in run.stderr
    assert TOKEN not in run.stderr and not (tmp_path / "am.yml").exists()


def test_render_cli_writes_a_private_file(tmp_path: Path, receiver: Receiver) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ALERT_", "SMTP_"))}
    out = tmp_path / "am.yml"
    run = subprocess.run([sys.executable, "-m", "ethbtc.monitoring.alerting", "render", "--out", str(out), "--env-file",
                          os.devnull], env=clean | channel_env(receiver), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "channels telegram, webhook" in run.stdout and TOKEN not in run.stdout + run.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(out.read_text())["receivers"][0]["telegram_configs"][0]["bot_token"] == TOKEN


def test_trade_notifier_survives_an_absent_alertmanager(caplog: pytest.LogCaptureFixture) -> None:
    """No Alertmanager listening: notify() returns at once, one warning per outage, never an exception."""
    notifier = TradeNotifier(f"http://127.0.0.1:{free_port()}", timeout=1.0, attempts=1)
    notice = TradeNotice("ETHBTC", "testnet", "2026-01-01T00:15:00Z", "BUY", 1.5, 0.05, 0.075, 0.000075, 2,
                         0.5, 0.15, 0.001)
    with caplog.at_level(logging.DEBUG, logger="ethbtc.monitoring.alerting"):
        notifier.notify(notice)
        notifier.notify(notice)
        notifier.close(timeout=30)
    failures = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING, logging.DEBUG] and notifier.sent == 0
    alert = notice.alert(dt.datetime(2026, 1, 1, 0, 15, 1, tzinfo=dt.UTC))
    assert alert["labels"] == {"alertname": TRADE_ALERT, "severity": "info", "symbol": "ETHBTC", "mode": "testnet",
                               "side": "buy", "bar": "2026-01-01T00:15:00Z"}
    assert alert["annotations"]["summary"] == ("testnet ETHBTC: BUY 1.5 ETH at 0.05 (0.075 BTC, 2 fills), fee "
                                               "0.000075 BTC; ETH weight now 50.0%; PnL +0.001 BTC since session start")
    assert alert["endsAt"] > alert["startsAt"]


# ------------------------------------------------------------------------------ inhibition
def test_bot_down_inhibits_what_it_causes(tmp_path: Path) -> None:
    """Shipped inhibit rules on a real Alertmanager: with EthbtcBotDown firing for an instance, its
    breaker/stale alerts stay silent; the same alert of another instance still arrives."""
    rec = Receiver()
    try:
        with running_alertmanager(routing_config(channel_env(rec), rec), tmp_path / "am") as am:
            now = dt.datetime.now(dt.UTC).isoformat()

            def alert(name: str, instance: str, severity: str, **labels: str) -> dict[str, Any]:
                return {"labels": {"alertname": name, "instance": instance, "job": "ethbtc", "severity": severity}
                        | labels, "annotations": {"summary": f"{name} on {instance}"}, "startsAt": now}

            am.post([alert("EthbtcBotDown", "a:9109", "critical"),
                     alert("EthbtcBreakerTripped", "a:9109", "warning", breaker="max_drawdown"),
                     alert("EthbtcBarStale", "a:9109", "critical"),
                     alert("EthbtcBreakerTripped", "b:9109", "warning", breaker="max_drawdown"),
                     alert("EthbtcLoopStalled", "c:9109", "critical"),
                     alert("EthbtcBarStale", "c:9109", "critical")])
            wait_for(lambda: len([m for m in rec.snapshot() if m.channel == "webhook"]) >= 3, 30,
                     "three webhook messages")
            time.sleep(4)  # two more group intervals: nothing else may come
            got = sorted((m.body["commonLabels"]["alertname"], m.body["commonLabels"]["instance"])
                         for m in rec.snapshot() if m.channel == "webhook")
            assert got == [("EthbtcBotDown", "a:9109"), ("EthbtcBreakerTripped", "b:9109"),
                           ("EthbtcLoopStalled", "c:9109")], got
            assert len([m for m in rec.snapshot() if m.channel == "telegram"]) == 3
    finally:
        rec.close()


# ------------------------------------------------------------------------------ end to end
def ledger_trades(path: Path) -> dict[str, dict[str, float]]:
    """The executor's trades_log.csv grouped by bar close: qty, notional, fee in BTC, fills, side."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"qty": 0.0, "quote": 0.0, "fee": 0.0, "fills": 0})
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            close = pd.Timestamp(int(row["bar_open_ms"]) + BAR_S * 1000, unit="ms", tz="UTC")
            key = close.strftime("%Y-%m-%dT%H:%M:%SZ")
            t = out[key]
            t["qty"] += float(row["qty"])
            t["quote"] += float(row["quote_qty"])
            c = float(row["commission"])
            t["fee"] += c if row["commission_asset"] == "BTC" else c * float(row["price"]) \
                if row["commission_asset"] == "ETH" else 0.0
            t["fills"] += 1
            t["side"] = row["side"].lower()
    return dict(out)


def test_breaker_trip_and_trades_reach_every_channel(tmp_path: Path, receiver: Receiver) -> None:
    require_binary("prometheus")
    require_alertmanager()
    mail = MailSink()
    env = channel_env(receiver, mail)
    with contextlib.closing(mail), running_alertmanager(routing_config(env, receiver), tmp_path / "am") as am:
        driver = ExecutorDriver(tmp_path / "executor", candles=crash_candles, faults=None,
                                params={"max_dd_frac": MAX_DD}, extra_args=["--alertmanager-url", am.url])
        (tmp_path / "executor").mkdir()
        driver.start()
        prom: PrometheusServer | None = None
        watch: BreakerWatch | None = None
        try:
            workdir = tmp_path / "prometheus"
            workdir.mkdir()
            path = render_config(driver.target, workdir / "prometheus.yml")
            config = yaml.safe_load(path.read_text())
            targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
            assert targets == ["alertmanager:9093"], "the shipped prometheus.yml must send alerts to Alertmanager"
            config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [am.url.split("//")[1]]
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            prom = PrometheusServer(path, workdir).start()
            wait_for(lambda: prom.query('up{job="ethbtc"} == 1'), 60, "the executor to be scraped")
            wait_for(lambda: requests.get(f"{prom.url}/api/v1/alertmanagers", timeout=2)
                     .json()["data"]["activeAlertmanagers"], 30, "Prometheus to discover Alertmanager")
            watch = BreakerWatch(driver.url)
            driver.release()

            # 1. the breaker trips: one firing message per channel
            def firing() -> bool:
                return bool(receiver.of("EthbtcBreakerTripped", "webhook", "firing")
                            and receiver.of("EthbtcBreakerTripped", "telegram", "firing"))

            wait_for(lambda: firing() or (None if driver.alive() else pytest.fail(driver.log_tail())), 240,
                     "the breaker-tripped message on both channels", every=0.2)
            t_trip = watch.first(1.0)
            assert t_trip is not None
            time.sleep(6)  # three group intervals and six rule evaluations later: still one message
            hooks = receiver.of("EthbtcBreakerTripped", "webhook")
            tgs = receiver.of("EthbtcBreakerTripped", "telegram")
            assert [m.status for m in hooks] == ["firing"] and [m.status for m in tgs] == ["firing"]
            body = hooks[0].body
            assert body["receiver"] == "warning" and len(body["alerts"]) == 1
            labels = body["alerts"][0]["labels"]
            assert labels == {"alertname": "EthbtcBreakerTripped", "breaker": "max_drawdown", "severity": "warning",
                              "instance": driver.target, "job": "ethbtc"}
            assert "--reset-risk" in body["alerts"][0]["annotations"]["action"]
            tg = tgs[0]
            assert tg.path == f"/bot{TOKEN}/sendMessage" and int(tg.body["chat_id"]) == CHAT_ID
            assert tg.text.startswith("FIRING WARNING: EthbtcBreakerTripped\n")
            assert f"Risk breaker max_drawdown is active on {driver.target}" in tg.text and "What to do:" in tg.text
            dd = prom.value('ethbtc_drawdown_ratio') or 0.0
            journal = (tmp_path / "executor" / "decisions_log.csv").read_text()
            assert "risk_maxdd" in journal, "the executor's own journal shows the R24 trip"

            # 2. a restart alone does not clear a latched breaker: no "resolved"
            driver.restart()
            wait_for(lambda: prom.query('ethbtc_breaker_tripped{breaker="max_drawdown"} == 1 and on(instance) '
                                        '(time() - process_start_time_seconds < 60)'), 60,
                     "the restarted executor scraped with the breaker still latched")
            time.sleep(5)
            assert not receiver.of("EthbtcBreakerTripped", status="resolved")

            # 3. --reset-risk (and a looser limit): one "resolved" message per channel
            t_restart = time.time()
            driver.restart("--reset-risk", params={"max_dd_frac": 0.5})
            wait_for(lambda: receiver.of("EthbtcBreakerTripped", "webhook", "resolved")
                     and receiver.of("EthbtcBreakerTripped", "telegram", "resolved"), 90,
                     "the resolved message on both channels")
            t_reset = watch.first(0.0, after=t_restart)
            time.sleep(5)
            for channel in ("webhook", "telegram"):
                assert [m.status for m in receiver.of("EthbtcBreakerTripped", channel)] == ["firing", "resolved"]
            resolved_tg = receiver.of("EthbtcBreakerTripped", "telegram", "resolved")[0]
            assert resolved_tg.text.startswith("RESOLVED: EthbtcBreakerTripped\nno longer: Risk breaker max_drawdown")
            assert "What to do" not in resolved_tg.text

            # e-mail: the same firing + resolved pair, and no trade ever (not for e-mail)
            def breaker_mails() -> list[Any]:
                return [m for m in mail.mails if "EthbtcBreakerTripped" in m.subject]

            wait_for(lambda: len(breaker_mails()) >= 2, 30, "the two breaker e-mails")
            mails = breaker_mails()
            assert [(m.to, m.subject.split("]")[0]) for m in mails] == [
                (["ops@example.org"], "[FIRING:1"), (["ops@example.org"], "[RESOLVED")], [m.subject for m in mails]
            assert "max_drawdown" in mails[0].subject and "max_drawdown" in mails[0].body
            assert not [m for m in mail.mails if TRADE_ALERT in m.subject], "trades are not e-mailed"

            # 4. one trade notice per executed rebalance, with the ledger's figures
            driver.stop()  # flushes queued notices (SIGTERM), then nothing trades any more
            trades = ledger_trades(tmp_path / "executor" / "trades_log.csv")
            assert trades, "the executor traded"

            def notices() -> list[Any]:
                return [m for m in receiver.of(TRADE_ALERT, "webhook")]

            wait_for(lambda: len(notices()) >= len(trades), 30, f"{len(trades)} trade notices")
            time.sleep(3)
            by_bar: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for m in notices():
                assert m.body["receiver"] == "trades" and m.status == "firing"
                for a in m.body["alerts"]:
                    by_bar[a["labels"]["bar"]].append(a)
            assert sorted(by_bar) == sorted(trades), "one notice per bar with fills, no other"
            assert all(len(v) == 1 for v in by_bar.values()), "exactly one notice per trade"
            for bar, t in trades.items():
                a = by_bar[bar][0]
                ann = a["annotations"]
                assert a["labels"]["side"] == t["side"] and a["labels"]["mode"] == "testnet"
                assert float(ann["qty"]) == pytest.approx(t["qty"], rel=1e-9, abs=1e-8)
                assert float(ann["price"]) == pytest.approx(t["quote"] / t["qty"], rel=1e-6)
                assert float(ann["fee"]) == pytest.approx(t["fee"], rel=1e-6, abs=1e-8)
                assert int(ann["fills"]) == t["fills"]
                assert 0.0 <= float(ann["weight"]) <= 1.0
            tg_trades = receiver.of(TRADE_ALERT, "telegram")
            assert len(tg_trades) == len(trades)
            assert all(m.text.startswith(f"TRADE: {TRADE_ALERT}\ntestnet ETHBTC: ") for m in tg_trades)
            assert not [m for m in receiver.snapshot() if m.alertname() == TRADE_ALERT and m.status == "resolved"]

            # 5. no secret in any log
            for log in (am.log_text(), prom.log_path.read_text(errors="replace"), driver.log_path.read_text()):
                assert TOKEN not in log and TOKEN.split(":")[1] not in log

            # the closing note's figures
            trip_msgs = receiver.of("EthbtcBreakerTripped")
            report = ["", "=== messages as received (issue 21) ==="]
            for m in receiver.snapshot():
                report.append(f"[{dt.datetime.fromtimestamp(m.at, dt.UTC):%H:%M:%S.%f}] {m.channel} {m.path}")
                report.append("    " + (m.text if m.channel == "telegram" else
                                        yaml.safe_dump(m.body["alerts"][0]["labels"] | {"status": m.status},
                                                       default_flow_style=True).strip()).replace("\n", "\n    "))
            report += [f"[{dt.datetime.fromtimestamp(m.at, dt.UTC):%H:%M:%S.%f}] e-mail to {m.to}: {m.subject}"
                       for m in mail.mails]
            report.append(f"max drawdown seen by Prometheus at the end of the trip phase: {dd:.4f}")
            report.append("breaker 1 on /metrics -> firing message: " + ", ".join(
                [f"{m.channel} {m.at - t_trip:.1f}s" for m in trip_msgs if m.status == "firing"]
                + [f"e-mail {mails[0].at - t_trip:.1f}s"]))
            if t_reset is not None:
                report.append("breaker 0 on /metrics after --reset-risk -> resolved message: " + ", ".join(
                    [f"{m.channel} {m.at - t_reset:.1f}s" for m in trip_msgs if m.status == "resolved"]
                    + [f"e-mail {mails[1].at - t_reset:.1f}s"]))
            lags = [m.at - dt.datetime.fromisoformat(a["startsAt"]).timestamp()
                    for m in notices() for a in m.body["alerts"]]
            report.append(f"trade notices: {len(lags)}, executor post -> webhook: "
                          f"median {np.median(lags):.2f}s, max {max(lags):.2f}s")
            print("\n".join(report))
        finally:
            if watch is not None:
                watch.stop()
            if prom is not None:
                prom.stop()
            driver.stop()
