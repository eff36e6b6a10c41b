"""BotMetrics fed by the real strategy's live step (SPEC R30 path): the reasons match the
kernel's, and the exported buy level is the close at which the entry condition would hold."""

from __future__ import annotations

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ethbtc import kernel
from ethbtc.config import build_config
from ethbtc.indicators import trend_ratio
from ethbtc.monitoring.metrics import LIVE_REASONS, MODEL_REASONS, REASONS, BotMetrics
from ethbtc.strategy import EthBtcStrategy
from tests.support.helpers import frame, random_walk


def values(m: BotMetrics) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(m.exposition().decode())
            for s in f.samples if not s.labels}


def test_blocker_reasons_are_the_kernels_plus_the_live_ones() -> None:
    assert MODEL_REASONS == kernel.REASONS  # SPEC R26, same order
    assert REASONS == kernel.REASONS + LIVE_REASONS
    assert LIVE_REASONS == ("min_notional", "insufficient_balance", "order_rejected", "exchange_error")


@pytest.mark.parametrize("kind", ["sma", "roc"])
def test_observe_decision_from_the_strategy_step(kind: str) -> None:
    lookback = 24
    cfg = build_config({"trend_kind": kind, "trend_lookback": lookback, "flip_band_entry": 0.01,
                        "flip_band_exit": 0.002, "vol_window": 12, "gate_window_days": 0})
    strategy = EthBtcStrategy(cfg, bar_minutes=15)
    df = frame(random_walk(300, seed=5))
    decision = strategy.step(strategy.new_state(), df, btc=1.0, eth=0.0)
    m = BotMetrics(process_metrics=False)
    m.observe_decision(decision, sma_lookback=lookback if kind == "sma" else None)
    v = values(m)
    assert m.blocker == decision.reason
    assert v["ethbtc_close_price"] == decision.close and v["ethbtc_trend_ratio"] == decision.ratio
    assert v["ethbtc_last_bar_open_time_seconds"] == decision.bar_open_ms / 1000
    assert v["ethbtc_weight_target_ratio"] == decision.target_w
    for level, band in ((v["ethbtc_buy_level_price"], decision.entry_band),
                        (v["ethbtc_sell_level_price"], decision.exit_band)):
        moved = df["close"].to_numpy().copy()
        moved[-1] = level  # today's close at the level, bands and earlier closes unchanged
        r = trend_ratio(pd.Series(moved), kind, lookback)[-1]
        assert r == pytest.approx(-band, abs=1e-9)
