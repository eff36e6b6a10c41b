"""Issue 7 on the REAL executor: ``live_executor.py --mode testnet`` against the exchange simulator
(``tests/support/executor_driver.py``), scraped by a real Prometheus.

- every PromQL expression of the Grafana dashboard returns data (``evaluate_dashboard``);
- ``promtool check metrics`` accepts the executor's own /metrics;
- ``/health`` is 200 while fresh bars are decided and turns 503 (``stale_bar``) two intervals
  after the simulator freezes (1-minute bars: the flip takes one to two minutes of wall time).

Runs last in file order on purpose: the health test stalls the shared executor.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.executor_driver import ExecutorDriver
from tests.support.prom_fixtures import (
    PrometheusServer,
    evaluate_dashboard,
    require_binary,
    wait_for,
    warmed_prometheus,
)

pytestmark = pytest.mark.slow
INTERVAL_S = 60.0


def health(driver: ExecutorDriver) -> tuple[int, dict]:
    r = requests.get(f"{driver.url}/health", timeout=3)
    return r.status_code, r.json()


@pytest.fixture(scope="module")
def bot_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutorDriver]:
    require_binary("prometheus")  # skip before starting anything
    driver = ExecutorDriver(tmp_path_factory.mktemp("executor")).start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="module")
def prom(bot_driver: ExecutorDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    checks = [("fresh bars (the simulator caught up with the wall clock)",
               "time() - ethbtc_last_bar_open_time_seconds < 3 * ethbtc_bar_interval_seconds"),
              ("at least 8 scrapes of the executor", "count_over_time(ethbtc_heartbeat_time_seconds[5m]) >= 8"),
              # increases seen by Prometheus itself: the dashboard's increase()[5m] ratios need them
              ("maker fills", 'sum(increase(ethbtc_fills_total{liquidity="maker"}[5m])) > 0'),
              ("taker fills", 'sum(increase(ethbtc_fills_total{liquidity="taker"}[5m])) > 0'),
              ("API errors", "sum(increase(ethbtc_api_errors_total[5m])) > 0"),
              ("order latencies", "sum(increase(ethbtc_order_latency_seconds_count[5m])) > 0")]
    with warmed_prometheus(bot_driver.target, tmp_path_factory.mktemp("prometheus"), checks,
                           alive=lambda: None if bot_driver.alive() else "executor died:\n" + bot_driver.log_tail(),
                           on_up=bot_driver.release) as server:
        yield server


def test_prometheus_scrapes_the_real_executor(prom: PrometheusServer, bot_driver: ExecutorDriver) -> None:
    ours = [t for t in prom.api("targets")["activeTargets"] if t["labels"]["job"] == "ethbtc"]
    assert [t["labels"]["instance"] for t in ours] == [bot_driver.target]
    assert ours[0]["health"] == "up", ours[0].get("lastError")
    info = prom.query("ethbtc_build_info")
    assert info[0]["metric"]["mode"] == "testnet" and info[0]["metric"]["interval"] == "1m"
    assert bot_driver.sim is not None and bot_driver.sim.ledger(), "the executor traded on the simulator"


def test_every_dashboard_query_returns_data_from_the_executor(prom: PrometheusServer,
                                                              bot_driver: ExecutorDriver) -> None:
    """Issue 7: each dashboard expression returns a finite sample; no exceptions."""
    problems = evaluate_dashboard(prom, bot_driver.target)
    assert not problems, "dashboard queries without data:\n" + "\n".join(problems)


def test_promtool_check_metrics_on_executor_output(bot_driver: ExecutorDriver, prom: PrometheusServer) -> None:
    promtool = require_binary("promtool")
    text = requests.get(f"{bot_driver.url}/metrics", timeout=5).text
    for name in ("ethbtc_fills_total", "ethbtc_api_errors_total", "ethbtc_bar_decisions_total", "ethbtc_build_info"):
        assert name in text
    run = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_health_ok_while_bars_flow_then_503_when_the_exchange_freezes(bot_driver: ExecutorDriver,
                                                                       prom: PrometheusServer) -> None:
    status, doc = wait_for(lambda: (lambda s, d: (s, d) if s == 200 else None)(*health(bot_driver)), 90,
                           "/health 200 on fresh bars")
    assert doc["status"] == "ok" and doc["mode"] == "testnet"
    assert doc["last_bar_age_seconds"] <= 2 * INTERVAL_S
    decided = prom.value("sum(ethbtc_bar_decisions_total)")
    assert decided is not None and decided > 1

    bot_driver.stall()
    time.sleep(1)  # a bar already being fetched may still land
    status, doc = health(bot_driver)
    assert status == 200, doc  # freezing does not make it unhealthy at once
    last_bar = doc["last_bar"]
    status, doc = wait_for(lambda: (lambda s, d: (s, d) if s == 503 else None)(*health(bot_driver)),
                           3 * INTERVAL_S + 10, "/health 503 after the simulator froze", every=1.0)
    assert doc["status"] == "stale_bar", doc
    assert doc["last_bar"] == last_bar  # no bar arrived while frozen
    assert doc["last_bar_age_seconds"] > 2 * INTERVAL_S
    assert doc["last_loop_age_seconds"] < 2 * INTERVAL_S  # the loop itself kept running
    assert bot_driver.alive(), bot_driver.log_tail()
    bot_driver.resume()
