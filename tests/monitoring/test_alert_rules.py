"""The shipped alert rules (``grafana/alerts.yml``) under ``promtool test rules``: Prometheus's own
rule-evaluation engine on synthetic series, so an alert's expression is judged by the real thing.

EthbtcApiErrors pages on more than 5 exchange errors with one code in 15 minutes. A LIMIT_MAKER the
exchange refuses because it would cross the book (-2010 "would immediately match") is the
executor's normal cue to re-price; the adapter labels it ``would_take`` and the alert leaves it out,
while the -2010 of a missing balance still pages.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.prom_fixtures import require_binary

ALERTS = Path(__file__).resolve().parents[2] / "grafana" / "alerts.yml"
ORDER = 'ethbtc_api_errors_total{instance="bot:9000",job="ethbtc",endpoint="/api/v3/order",code="%s"}'


def rule(name: str) -> dict[str, Any]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r.get("alert") == name)


def promtool_test(tmp_path: Path, series: dict[str, str], eval_time: str, expected: list[dict[str, Any]]) -> str:
    """Run one ``promtool test rules`` case; returns promtool's output (asserts it passed)."""
    promtool = require_binary("promtool")
    case = {"rule_files": [str(ALERTS)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m",
                       "input_series": [{"series": s, "values": v} for s, v in series.items()],
                       "alert_rule_test": [{"eval_time": eval_time, "alertname": "EthbtcApiErrors",
                                            "exp_alerts": expected}]}]}
    path = tmp_path / "api_errors_test.yml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def fired(code: str, count: int) -> dict[str, Any]:
    action = rule("EthbtcApiErrors")["annotations"]["action"]
    return {"exp_labels": {"severity": "warning", "instance": "bot:9000", "code": code},
            "exp_annotations": {"summary": f"{count} exchange API errors with code {code} in 15 minutes",
                                "action": action}}


def test_maker_repricing_alone_never_pages(tmp_path: Path) -> None:
    # two refused crossing maker orders a minute, 30 in 15 minutes: a fast market, not a fault
    promtool_test(tmp_path, {ORDER % "would_take": "0+2x30"}, "16m", [])


def test_a_missing_balance_still_pages_next_to_repricing(tmp_path: Path) -> None:
    promtool_test(tmp_path, {ORDER % "would_take": "0+2x30", ORDER % "-2010": "0+1x30"}, "16m", [fired("-2010", 15)])


def test_the_threshold_is_more_than_five_in_fifteen_minutes(tmp_path: Path) -> None:
    # 5 in 15 minutes stays quiet, 6 fires (increase over a fully sampled window is exact here)
    promtool_test(tmp_path, {ORDER % "-1013": "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"}, "15m", [])
    promtool_test(tmp_path, {ORDER % "-1013": "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 6"}, "15m", [fired("-1013", 6)])
