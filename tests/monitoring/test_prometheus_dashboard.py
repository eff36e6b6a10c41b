"""Issue 7 proof with a REAL Prometheus: it scrapes the bot, and every PromQL expression of the
Grafana dashboard returns data; promtool accepts the shipped config, rules and our exposition.

The bot is ``tests/support/synthetic_bot.py`` until the live executor exists; the executor's tests can
override the ``bot_driver`` fixture (same name, module scope) and import these test functions.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.prom_fixtures import (
    SHIPPED_CONFIG,
    BotDriver,
    PrometheusServer,
    evaluate_dashboard,
    render_config,
    require_binary,
    wait_for,
    warmed_prometheus,
)
from tests.support.synthetic_bot import SyntheticBot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bot_driver() -> Iterator[BotDriver]:
    require_binary("prometheus")  # skip before starting anything
    bot = SyntheticBot(bar_seconds=0.2, seed=3).start()
    yield bot
    bot.stop()


@pytest.fixture(scope="module")
def prom(bot_driver: BotDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    checks = [("at least 8 scrapes of the bot", "count_over_time(ethbtc_heartbeat_time_seconds[5m]) >= 8"),
              ("fills", "sum(ethbtc_fills_total) > 0"),
              ("API errors", "sum(ethbtc_api_errors_total) > 0"),
              ("order latencies", "sum(ethbtc_order_latency_seconds_count) > 0"),
              ("levels after warm-up", "ethbtc_buy_level_price > 0")]
    with warmed_prometheus(bot_driver.target, tmp_path_factory.mktemp("prometheus"), checks) as server:
        yield server


def test_prometheus_scrapes_the_bot(prom: PrometheusServer, bot_driver: BotDriver) -> None:
    targets = prom.api("targets")["activeTargets"]
    ours = [t for t in targets if t["labels"]["job"] == "ethbtc"]
    assert [t["labels"]["instance"] for t in ours] == [bot_driver.target]
    assert ours[0]["health"] == "up", ours[0].get("lastError")
    info = prom.query("ethbtc_build_info")
    assert info[0]["metric"]["mode"] == "dry" and info[0]["metric"]["symbol"] == "ETHBTC"


def test_every_dashboard_query_returns_data(prom: PrometheusServer, bot_driver: BotDriver) -> None:
    """Issue 7: each PromQL expression in the dashboard returns at least one finite sample."""
    problems = evaluate_dashboard(prom, bot_driver.target)
    assert not problems, "dashboard queries without data:\n" + "\n".join(problems)


def test_evaluation_catches_a_query_without_data(prom: PrometheusServer, bot_driver: BotDriver,
                                                 tmp_path: Path) -> None:
    """Control: the check above can fail (a misspelt metric is reported, not ignored)."""
    dash = tmp_path / "d.json"
    dash.write_text('{"panels": [{"title": "typo", "targets": [{"refId": "A", '
                    '"expr": "ethbtc_welth_btc{instance=\\"$instance\\"}"}]}]}')
    assert evaluate_dashboard(prom, bot_driver.target, dash) == [
        f'typo [A]: ethbtc_welth_btc{{instance="{bot_driver.target}"}} -> no data']


def test_blocker_has_exactly_one_active_reason(prom: PrometheusServer) -> None:
    active = prom.query("ethbtc_blocker == 1")
    assert len(active) == 1, active
    assert prom.value("count(ethbtc_blocker)") == 13  # SPEC R26: 9 model + 4 live reasons


def test_alert_rules_load_and_evaluate(prom: PrometheusServer) -> None:
    def evaluated() -> list[dict]:
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        done = rules and all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
        return rules if done else []

    rules = wait_for(evaluated, 30, "alert rules to be evaluated")
    assert {r["name"] for r in rules} >= {"EthbtcBotDown", "EthbtcLoopStalled", "EthbtcBarStale"}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert "EthbtcBotDown" not in firing and "EthbtcBreakerTripped" not in firing


def test_promtool_check_metrics_passes_on_live_output(bot_driver: BotDriver) -> None:
    promtool = require_binary("promtool")
    text = requests.get(f"{bot_driver.url}/metrics", timeout=5).text
    assert "ethbtc_fills_total" in text
    run = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_check_metrics_rejects_bad_names() -> None:
    """Control: promtool's lint does flag a counter without _total."""
    promtool = require_binary("promtool")
    bad = "# HELP ethbtc_orders Orders\n# TYPE ethbtc_orders counter\nethbtc_orders 1\n"
    run = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, text=True)
    assert run.returncode != 0 and "_total" in run.stdout + run.stderr


def test_promtool_check_config_shipped_and_rendered(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    for config in (SHIPPED_CONFIG, render_config("127.0.0.1:9", tmp_path / "prometheus.yml")):
        run = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "SUCCESS" in run.stdout + run.stderr
    run = subprocess.run([promtool, "check", "rules", str(SHIPPED_CONFIG.parent / "alerts.yml")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
