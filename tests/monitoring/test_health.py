"""/health and the metrics HTTP server (issue 7): 200 while the loop is alive and the last bar
is at most two intervals old, 503 when the loop stalls; one port serves /metrics and /health."""

from __future__ import annotations

import argparse
import socket

import pytest
import requests

from ethbtc.errors import UserError
from ethbtc.monitoring import healthcheck
from ethbtc.monitoring.health import HealthState
from ethbtc.monitoring.logs import register_secret
from ethbtc.monitoring.metrics import BotMetrics
from ethbtc.monitoring.metrics_server import MetricsServer, add_metrics_args, start_from_args
from tests.support.prom_fixtures import wait_for
from tests.support.synthetic_bot import SyntheticBot

BAR = 900.0  # 15m


class FakeClock:
    def __init__(self, t: float = 1_714_564_800.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_health_transitions_with_a_controlled_clock() -> None:
    clock = FakeClock()
    h = HealthState("testnet", BAR, clock=clock)
    ok, doc = h.check()
    assert not ok and doc["status"] == "starting" and doc["last_bar"] is None
    h.bar_processed(clock.t - BAR)  # the bar that closed just now
    ok, doc = h.check()
    assert ok and doc["status"] == "ok" and doc["mode"] == "testnet"
    assert doc["last_bar"] == "2024-05-01T11:45:00Z" and doc["last_bar_age_seconds"] == 0

    clock.t += 2 * BAR  # loop ticks (waiting) but no new bar for exactly two intervals: still ok
    h.loop_tick()
    assert h.check()[0]
    clock.t += 1
    h.loop_tick()
    assert h.check()[1]["status"] == "stale_bar" and not h.check()[0]

    h.bar_processed(clock.t - BAR)
    assert h.check()[0]
    clock.t += 2 * BAR + 1  # nothing at all: the loop is stalled
    assert h.check()[1]["status"] == "stalled" and not h.check()[0]


def test_health_reports_errors_redacted_and_breakers() -> None:
    clock = FakeClock()
    h = HealthState("live", BAR, max_loop_age_seconds=60, clock=clock)
    h.bar_processed(clock.t - BAR)
    register_secret("hEaLtHsEcReTkEy0123456789")
    h.record_error("GET /api/v3/account?timestamp=1&signature=f00dfeed failed, key hEaLtHsEcReTkEy0123456789")
    h.set_breakers(maxdd_hit=True, daily_paused=False)
    ok, doc = h.check()
    assert ok, "a latched breaker is reported, not unhealthy (a restart would not help)"
    assert doc["breakers"] == {"max_drawdown": True, "daily_loss": False}
    assert "f00dfeed" not in doc["last_error"]["message"] and "hEaLtH" not in doc["last_error"]["message"]
    assert "signature=***" in doc["last_error"]["message"]
    clock.t += 61  # custom loop age: stalled well before two bars
    assert h.check()[1]["status"] == "stalled"
    h.mark_stopped()
    assert h.check()[1]["status"] == "stopped"


def test_one_port_serves_metrics_and_health() -> None:
    clock = FakeClock()
    m, h = BotMetrics(), HealthState("dry", BAR, clock=clock)
    m.heartbeat(now=clock.t)
    with MetricsServer(m.registry, h, "127.0.0.1", 0) as server:
        r = requests.get(f"{server.url}/health", timeout=5)
        assert r.status_code == 503 and r.json()["status"] == "starting"
        h.bar_processed(clock.t - BAR)
        r = requests.get(f"{server.url}/health", timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
        assert set(r.json()) == {"status", "mode", "last_bar", "last_bar_age_seconds", "last_loop",
                                 "last_loop_age_seconds", "last_error", "breakers"}
        metrics = requests.get(f"{server.url}/metrics", timeout=5)
        assert metrics.status_code == 200 and "ethbtc_heartbeat_time_seconds 1.7145648e+09" in metrics.text
        assert requests.get(f"{server.url}/nope", timeout=5).status_code == 404
        port = server.port
    with pytest.raises(requests.ConnectionError):  # stopped cleanly: the port is closed
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_health_flips_to_503_when_the_loop_stalls_and_back_when_it_resumes() -> None:
    """Real time, real HTTP: the driver stops heart-beating (like a frozen simulator)."""
    bot = SyntheticBot(bar_seconds=0.2, max_loop_age_seconds=1.0).start()
    try:
        url = f"{bot.url}/health"
        wait_for(lambda: requests.get(url, timeout=2).status_code == 200, 20, "/health 200 while bars flow")
        bot.stall()
        doc = wait_for(lambda: requests.get(url, timeout=2).status_code == 503 and requests.get(url, timeout=2).json(),
                       20, "/health 503 after the loop stalled")
        assert doc["status"] in ("stalled", "stale_bar")
        bot.resume()
        wait_for(lambda: requests.get(url, timeout=2).status_code == 200, 20, "/health 200 after resuming")
    finally:
        bot.stop()
    assert bot.health.check()[1]["status"] == "stopped"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_metrics_args(p)
    return p.parse_args(argv)


def test_port_zero_disables_and_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    m = BotMetrics(process_metrics=False)
    assert start_from_args(parse(["--metrics-port", "0"]), m.registry, None) is None
    monkeypatch.setenv("METRICS_PORT", "0")
    assert start_from_args(parse([]), m.registry, None) is None
    monkeypatch.setenv("METRICS_PORT", "nine")
    with pytest.raises(UserError, match="METRICS_PORT"):
        start_from_args(parse([]), m.registry, None)
    monkeypatch.setenv("METRICS_PORT", "70000")
    with pytest.raises(UserError, match="0..65535"):
        start_from_args(parse([]), m.registry, None)
    with pytest.raises(SystemExit):  # the flag is range-checked by argparse, before any work
        parse(["--metrics-port", "70000"])


def test_port_in_use_is_a_clear_user_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        args = parse(["--metrics-port", str(port), "--metrics-addr", "127.0.0.1"])
        with pytest.raises(UserError, match=f"127.0.0.1:{port} is already in use"):
            start_from_args(args, BotMetrics(process_metrics=False).registry, None)


def test_healthcheck_probe_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m ethbtc.monitoring.healthcheck`` (Docker HEALTHCHECK): 0 on 200, 1 on 503 or no answer."""
    clock = FakeClock()
    h = HealthState("dry", BAR, clock=clock)
    with MetricsServer(BotMetrics(process_metrics=False).registry, h, "127.0.0.1", 0) as server:
        url = f"{server.url}/health"
        assert healthcheck.main(["--url", url]) == 1
        assert "unhealthy: HTTP 503 status=starting" in capsys.readouterr().out
        h.bar_processed(clock.t - BAR)
        assert healthcheck.main(["--url", url]) == 0
        assert "healthy: HTTP 200 status=ok" in capsys.readouterr().out
    assert healthcheck.main(["--url", url, "--timeout", "2"]) == 1  # server gone
    assert "unhealthy" in capsys.readouterr().out
