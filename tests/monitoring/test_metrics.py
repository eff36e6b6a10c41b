"""BotMetrics: names by Prometheus conventions, bounded labels, the R26 blocker state set, and
the dashboard only referencing metrics that really exist (no Prometheus binary needed)."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ethbtc.monitoring.metrics import REASONS, BotMetrics
from tests.support.prom_fixtures import dashboard_queries
from tests.support.synthetic_bot import SyntheticBot


def families(m: BotMetrics) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}


def sample(m: BotMetrics, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError(f"{name}{labels}")


def bar(m: BotMetrics, reason: str = "hold", close: float = 0.05, **kw: object) -> None:
    args: dict[str, object] = dict(
        bar_open_time=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC), close=close, trend_ratio=-0.01,
        entry_band=0.02, exit_band=0.005, buy_level=0.049, sell_level=0.0508, gate_value=0.03,
        gate_open=True, signal_state="BTC", target_w=0.0, desired_w=0.0, current_w=0.0, reason=reason)
    args.update(kw)
    m.observe_bar(**args)  # type: ignore[arg-type]


def test_names_follow_prometheus_conventions() -> None:
    m = SyntheticBot().metrics
    fams = families(m)
    ours = {n: f for n, f in fams.items() if not n.startswith(("process_", "python_"))}
    assert all(n.startswith("ethbtc_") for n in ours), sorted(ours)
    for name, fam in ours.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
        assert fam.documentation, f"{name} has no HELP text"
        for s in fam.samples:
            if fam.type == "counter":
                assert s.name.endswith("_total"), s.name
            assert not any(k in s.labels for k in ("order_id", "client_order_id", "time", "timestamp"))
    assert "ethbtc_build_info" in {s.name for f in fams.values() for s in f.samples}


def test_build_info_and_interval() -> None:
    m = BotMetrics()
    m.set_build_info("1.2.3", "TESTNET", "ethbtc", "1h")
    assert sample(m, "ethbtc_build_info", version="1.2.3", mode="testnet", symbol="ETHBTC", interval="1h") == 1
    assert sample(m, "ethbtc_bar_interval_seconds") == 3600
    with pytest.raises(ValueError, match="mode"):
        m.set_build_info("1", "paper", "ETHBTC", "15m")


def test_values_are_unknown_until_observed_then_set() -> None:
    m = BotMetrics()
    assert math.isnan(sample(m, "ethbtc_wealth_btc"))
    assert "ethbtc_blocker" not in {s.name for f in families(m).values() for s in f.samples}
    m.observe_portfolio(btc=0.5, eth=10.0, bnb=0.1, wealth_btc=1.0, session_start_w=0.9, peak_w=1.25,
                        day_start_w=1.1, session_start_price=0.045)
    assert sample(m, "ethbtc_pnl_btc") == pytest.approx(0.1)
    assert sample(m, "ethbtc_drawdown_ratio") == pytest.approx(0.2)
    assert sample(m, "ethbtc_day_pnl_btc") == pytest.approx(-0.1)
    assert sample(m, "ethbtc_balance_eth") == 10.0
    assert sample(m, "ethbtc_session_start_price") == 0.045


def test_observe_bar_levels_proximity_and_time() -> None:
    m = BotMetrics()
    bar(m, close=0.05, buy_level=0.049, sell_level=0.0505, signal_state="ETH")
    assert sample(m, "ethbtc_buy_level_distance_bps") == pytest.approx(-200)
    assert sample(m, "ethbtc_sell_level_distance_bps") == pytest.approx(100)
    assert sample(m, "ethbtc_signal_state") == 1
    assert sample(m, "ethbtc_gate_open") == 1
    assert sample(m, "ethbtc_last_bar_open_time_seconds") == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC).timestamp()
    bar(m, bar_open_time=1714564800000, trend_ratio=float("nan"), buy_level=float("nan"),
        sell_level=float("nan"), reason="warmup")  # epoch ms; warm-up NaNs pass through
    assert sample(m, "ethbtc_last_bar_open_time_seconds") == 1714564800
    assert math.isnan(sample(m, "ethbtc_buy_level_distance_bps"))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(REASONS), min_size=1, max_size=30))
def test_blocker_is_a_state_set_of_all_r26_reasons(reasons: list[str]) -> None:
    """SPEC R26: one series per reason (model + live), exactly the last one active; every
    decided bar is counted under its reason."""
    m = BotMetrics(process_metrics=False)
    for r in reasons:
        bar(m, reason=r)
    blocker = {s.labels["reason"]: s.value for s in families(m)["ethbtc_blocker"].samples}
    assert set(blocker) == set(REASONS) and len(REASONS) == 13
    assert [r for r, v in blocker.items() if v == 1] == [reasons[-1]]
    for r in REASONS:
        assert sample(m, "ethbtc_bar_decisions_total", reason=r) == reasons.count(r)


def test_set_blocker_for_exchange_side_reason_does_not_count_a_bar() -> None:
    m = BotMetrics(process_metrics=False)
    bar(m, reason="trade")
    m.set_blocker("insufficient_balance")
    assert m.blocker == "insufficient_balance"
    assert sample(m, "ethbtc_bar_decisions_total", reason="insufficient_balance") == 0
    with pytest.raises(ValueError, match="reason"):
        m.set_blocker("because")


def test_labels_stay_bounded() -> None:
    m = BotMetrics(process_metrics=False)
    m.observe_request("/api/v3/order?symbol=ETHBTC&signature=abc", 0.1, error_code=-2010)
    m.observe_request("/api/v3/some/new/path/12345", 0.2, error_code="Weird Error! 99")
    m.observe_order("SELL", "LIMIT_MAKER", "EXPIRED_IN_MATCH")
    m.observe_order("buy", "market", "NEW")
    text = m.exposition().decode()
    assert 'ethbtc_api_errors_total{code="-2010",endpoint="/api/v3/order"} 1.0' in text
    assert 'ethbtc_api_errors_total{code="other",endpoint="other"} 1.0' in text
    assert "signature" not in text and "12345" not in text
    assert sample(m, "ethbtc_orders_total", side="sell", type="limit_maker", result="expired") == 1
    assert sample(m, "ethbtc_orders_total", side="buy", type="market", result="other") == 1
    with pytest.raises(ValueError):
        m.observe_order("short", "market", "FILLED")


def test_fills_fees_and_counters() -> None:
    m = BotMetrics(process_metrics=False)
    m.observe_fill("buy", True, qty=2.0, quote_qty=0.1, fee_btc=0.000075)
    m.observe_fill("buy", False, qty=1.0, quote_qty=0.05, fee_btc=0.00005)
    m.inc_ttl_cancel()
    m.inc_taker_fallback()
    m.observe_order_latency(12.0)
    m.set_breakers(maxdd_hit=True, daily_paused=False)
    m.set_used_weight(42)
    assert sample(m, "ethbtc_fills_total", side="buy", liquidity="maker") == 1
    assert sample(m, "ethbtc_filled_eth_total", side="buy") == 3.0
    assert sample(m, "ethbtc_filled_btc_total", side="buy") == pytest.approx(0.15)
    assert sample(m, "ethbtc_fees_btc_total", liquidity="taker") == pytest.approx(0.00005)
    assert sample(m, "ethbtc_ttl_cancels_total") == 1 and sample(m, "ethbtc_taker_fallbacks_total") == 1
    assert sample(m, "ethbtc_order_latency_seconds_count") == 1
    assert sample(m, "ethbtc_breaker_tripped", breaker="max_drawdown") == 1
    assert sample(m, "ethbtc_breaker_tripped", breaker="daily_loss") == 0
    assert sample(m, "ethbtc_api_used_weight") == 42


def test_instances_are_independent() -> None:
    a, b = BotMetrics(), BotMetrics()
    a.inc_ttl_cancel()
    assert sample(a, "ethbtc_ttl_cancels_total") == 1 and sample(b, "ethbtc_ttl_cancels_total") == 0


def test_dashboard_references_only_exported_metrics() -> None:
    """Every metric name used in a dashboard query is exported by a fully driven bot."""
    bot = SyntheticBot()
    for _ in range(150):
        bot.step()
    exported = {s.name for f in families(bot.metrics).values() for s in f.samples} | {"up"}
    keywords = {"sum", "by", "rate", "increase", "histogram_quantile", "time", "le", "instance", "label_values",
                "endpoint", "code", "reason", "result", "liquidity", "side", "breaker"}
    used = set()
    for q in dashboard_queries():
        for name in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*(?=\s*[{\[(])|\b(?:ethbtc|process)_[a-z0-9_]+", q.expr):
            if name not in keywords:
                used.add(name)
    missing = sorted(n for n in used if n not in exported)
    assert not missing, f"dashboard uses metrics the bot does not export: {missing}"
    assert len(used) > 30


def test_readme_monitoring_table_documents_every_metric(root: Path) -> None:
    section = (root / "docs" / "monitoring.md").read_text()  # the Monitoring page (README links to it)
    documented = set(re.findall(r"`(ethbtc_[a-z0-9_]+)`", section))
    m = BotMetrics(process_metrics=False)
    exported = {f.name + ("_total" if f.type == "counter" else "")
                for f in text_string_to_metric_families(m.exposition().decode()) if f.name.startswith("ethbtc_")}
    assert exported - documented == set(), "metrics missing from docs/monitoring.md's table"
    assert documented - exported == set(), "docs/monitoring.md documents metrics that do not exist"
