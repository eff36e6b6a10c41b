"""The exchange adapter against the paper exchange over real HTTP: typed errors, retries, idempotent orders."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from ethbtc.live import klines as klines_mod
from ethbtc.live.errors import (
    AuthError,
    InsufficientBalance,
    MinNotional,
    TransientError,
    WouldTake,
)
from ethbtc.live.exchange import Exchange, RetryPolicy
from ethbtc.live.klines import KlineFeed
from ethbtc.sim import SimServer
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET

Factory = Callable[..., SimServer]


def adapter(sim: SimServer, *, key: str = SIM_KEY, secret: str = SIM_SECRET, timeout: float = 5.0,
            recv_window_ms: int = 5000, sleeps: list[float] | None = None) -> Exchange:
    def sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)
    return Exchange(sim.base_url, "ETHBTC", key, secret, timeout=timeout, recv_window_ms=recv_window_ms,
                    retry=RetryPolicy(attempts=4, base_sec=0.01, cap_sec=0.02, sleep=sleep))


def accepted_orders(sim: SimServer) -> list[str]:
    """Client ids of the orders the exchange created (whatever the client was told)."""
    with sim.engine.lock:
        return [o.client_order_id for o in sim.engine.orders.values()]


def test_rejections_are_typed_with_their_blocker_reason(sim: SimServer) -> None:
    ex = adapter(sim)
    outcomes: list[tuple[str, str | None]] = []
    ex.on_request = lambda path, _s, code: outcomes.append((path, code)) if path == "/api/v3/order" else None
    bid, ask = ex.book()
    with pytest.raises(InsufficientBalance) as err:
        ex.place_order("eb-t-1", "BUY", "MARKET", Decimal("1000"))
    assert err.value.reason == "insufficient_balance"
    with pytest.raises(MinNotional) as err2:
        ex.place_order("eb-t-2", "BUY", "LIMIT_MAKER", Decimal("0.0001"), bid)
    assert err2.value.reason == "min_notional"
    with pytest.raises(WouldTake) as err3:
        ex.place_order("eb-t-3", "BUY", "LIMIT_MAKER", Decimal("1"), ask)
    assert err3.value.reason == "order_rejected"
    # metrics labels: a maker order that would cross is a re-price ("would_take"), not the -2010 of a
    # missing balance, so the EthbtcApiErrors alert (grafana/alerts.yml) does not page on re-pricing
    assert [code for _, code in outcomes] == ["-2010", "-1013", "would_take"]
    assert ex.get_order("eb-none") is None and ex.cancel_order("eb-none") is None


def test_resting_order_lifecycle_and_fills(sim: SimServer) -> None:
    ex = adapter(sim)
    bid, _ = ex.book()
    info = ex.place_order("eb-t-rest", "BUY", "LIMIT_MAKER", Decimal("1"), bid)
    assert info.is_open and [o.client_id for o in ex.open_orders()] == ["eb-t-rest"]
    done = ex.cancel_order("eb-t-rest")
    assert done is not None and done.status == "CANCELED" and ex.order_fills(done) == []
    m = ex.place_order("eb-t-mkt", "BUY", "MARKET", Decimal("2"))
    fills = ex.order_fills(m)
    assert sum(f.qty for f in fills) == m.executed_qty == Decimal("2")
    assert {f.client_id for f in fills} == {"eb-t-mkt"} and all(not f.is_maker for f in fills)
    assert [o.client_id for o in ex.recent_orders()] == ["eb-t-rest", "eb-t-mkt"]


def test_5xx_on_reads_is_retried_then_gives_up(sim: SimServer) -> None:
    sleeps: list[float] = []
    ex = adapter(sim, sleeps=sleeps)
    sim.set_faults(error_5xx=1.0, endpoints=["/api/v3/account"], max_faults=2)
    assert ex.balances()["BTC"][0] == Decimal("1")
    assert len(sleeps) == 2  # two backoffs, third attempt answered
    sim.set_faults(error_5xx=1.0, endpoints=["/api/v3/account"])
    with pytest.raises(TransientError, match="gave up after 4 attempts"):
        ex.balances()


def test_429_honours_retry_after_and_throttles_the_loop(sim: SimServer) -> None:
    sleeps: list[float] = []
    ex = adapter(sim, sleeps=sleeps)
    sim.set_faults(rate_limit_429=1.0, retry_after=3, max_faults=1)
    before = ex.throttle_until
    ex.book()
    assert sleeps == [3.0] and ex.throttle_until > before


def test_clock_skew_triggers_a_resync(sim: SimServer) -> None:
    ex = adapter(sim)
    sim.set_faults(time_skew_ms=-20_000)  # the server is 20 s behind us: our timestamps look 'ahead'
    assert ex.balances()["BTC"][0] == Decimal("1")
    # the offset is the exchange clock (here the replayed market time) less ours, plus the skew
    expected = sim.exchange_ms() - int(time.time() * 1000) - 20_000
    assert abs(ex.client.time_offset_ms - expected) < 1_000


@pytest.mark.parametrize("faults", [
    {"drop_after_order": 1.0},  # executed, connection dropped
    {"error_5xx": 1.0, "error_5xx_executes": True, "endpoints": ["/api/v3/order"]},  # executed, 503 answered
    {"error_5xx": 1.0, "endpoints": ["/api/v3/order"]},  # refused with 503 before executing
], ids=["drop-after-execution", "5xx-after-execution", "5xx-before-execution"])
def test_an_order_with_unknown_outcome_exists_exactly_once(sim: SimServer, faults: dict[str, object]) -> None:
    ex = adapter(sim, recv_window_ms=1000)
    sim.set_faults(max_faults=1, **faults)
    info = ex.place_order("eb-t-once", "BUY", "MARKET", Decimal("1"))
    assert info.client_id == "eb-t-once" and info.status == "FILLED"
    assert sum(sim.faults.state()["injected"].values()) == 1  # the fault did happen
    assert accepted_orders(sim) == ["eb-t-once"]
    assert len(sim.ledger()) == 1


def test_a_delayed_order_request_is_waited_out_before_any_resend(sim: SimServer) -> None:
    """The client times out while the exchange still holds the request; a blind resend would double it."""
    ex = adapter(sim, timeout=0.3, recv_window_ms=1500)
    sim.set_faults(delay=1.0, delay_seconds=0.8, endpoints=["/api/v3/order"], max_faults=1)
    info = ex.place_order("eb-t-slow", "BUY", "MARKET", Decimal("1"))
    assert info.executed_qty == Decimal("1")
    assert sim.faults.state()["injected"] == {"delay": 1}
    assert accepted_orders(sim) == ["eb-t-slow"] and len(sim.ledger()) == 1


def test_wrong_keys_are_auth_errors_with_the_fix(sim: SimServer) -> None:
    with pytest.raises(AuthError) as err:
        adapter(sim, key="wrong").balances()
    assert "-2015" in str(err.value) and "Enable Spot" in str(err.value) and "testnet.binance.vision" in str(err.value)
    with pytest.raises(AuthError, match="-1022.*BINANCE_SECRET does not match"):
        adapter(sim, secret="wrong").balances()
    assert not any(e["method"] == "POST" for e in sim.order_log)


def test_feed_sees_only_closed_bars_and_pages_history(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(klines_mod, "PAGE", 50)
    ex = adapter(sim)
    ex.sync_time()
    candles = sim.engine.market.series
    sim.advance(0.5)  # market at bar 200, half way
    feed = KlineFeed(ex, "15m", 900_000, history=120)
    df = feed.refresh()
    assert len(df) == 120
    assert int(df.index[-1].value // 1_000_000) == int(candles.open_ms[199])  # bar 200 is still open
    assert list(df["close"]) == list(candles.c[80:200])
    assert feed.refresh().equals(df)  # nothing new
    sim.advance(0.5)
    df2 = feed.refresh()
    assert len(df2) == 120 and int(df2.index[-1].value // 1_000_000) == int(candles.open_ms[200])
    sim.advance(130)  # long downtime: more than a page of new bars
    df3 = feed.refresh()
    assert int(df3.index[-1].value // 1_000_000) == int(candles.open_ms[330])
    assert list(df3["close"]) == list(candles.c[211:331])


def test_the_executor_slows_down_before_a_429_not_after(sim_factory: Callable[..., SimServer]) -> None:
    """rest-api.md LIMITS: past the request weight Binance answers 429 (and bans clients that go on).
    The adapter reads X-MBX-USED-WEIGHT-* and, past 80% of the limit, waits for the window to
    reset: a burst of 150 klines calls (weight 2 each, 300 in all) against a limit of 60 per 3 s
    never meets a 429."""
    from ethbtc.sim.limits import LimitConfig

    sim = sim_factory(limits=LimitConfig(weight_limit=60, weight_window_s=3))
    refused: list[int] = []
    admit = sim.limiter.admit

    def counting(*args: object, **kwargs: object) -> object:
        verdict = admit(*args, **kwargs)  # type: ignore[arg-type]
        if verdict.status != 200:
            refused.append(verdict.status)
        return verdict

    sim.limiter.admit = counting  # type: ignore[method-assign]
    ex = Exchange(sim.base_url, "ETHBTC", SIM_KEY, SIM_SECRET, timeout=5.0)
    ex.filters()  # exchangeInfo rateLimits: 60 per 3 SECOND
    assert (ex.weight_limit, ex.weight_window_s) == (60, 3)
    peak = 0
    for _ in range(150):
        ex.klines("15m", limit=2)
        peak = max(peak, ex.used_weight)
    assert refused == [] and 48 <= peak <= 60
