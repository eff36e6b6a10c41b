"""The edges of one bar's orders (issue 22, survivors of ``make mutation`` over
``ethbtc/live/orders.py``), against the paper exchange over real HTTP: after the ttl, the unfilled
rest goes MARKET exactly when taker_fallback is on (SPEC R32).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ethbtc.sim import SimServer
from tests.live_harness import fast_dir
from tests.test_rule_edges_live import recording_engine

_ = fast_dir
BAR = 1_614_556_800_000


@pytest.mark.parametrize("fallback", [True, False])
def test_r32_the_unfilled_rest_goes_market_only_with_taker_fallback(sim: SimServer, fast_dir: Path,
                                                                    fallback: bool) -> None:
    """SPEC R32: the LIMIT_MAKER is cancelled after ttl_sec; with taker_fallback the unfilled rest
    goes as MARKET (and fills), without it nothing more is sent and the rest stays unfilled."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=fallback, ttl_sec=0.001)  # gone before a fill
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    kinds = [s.type_ for s in acct.sent]
    assert kinds[0] == "LIMIT_MAKER"
    if fallback:
        assert kinds == ["LIMIT_MAKER", "MARKET"] and ex.qty_filled == Decimal("0.5") and ex.reason == "trade"
        assert acct.sent[1].client_id == f"eb-ETHBTC-{BAR}-BM0"
    else:
        assert kinds == ["LIMIT_MAKER"] and ex.qty_filled < Decimal("0.5")
