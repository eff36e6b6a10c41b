"""Conservation: over any order sequence, BTC + ETH + BNB balances change exactly by the fills
and commissions in the ledger, locked funds equal what open orders hold, nothing goes negative."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ethbtc.sim import SimConfig, build_engine
from ethbtc.sim.apierrors import ApiError
from ethbtc.sim.engine import Engine
from tests.support.sim_fixtures import make_candles, spot_client

CANDLES = make_candles(120, seed=5, bar_vol=0.006)
START = {"BTC": D("1"), "ETH": D("5"), "BNB": D("0.02")}
TICK, STEP = D("0.00001"), D("0.0001")

qty = st.integers(1, 30000).map(lambda k: k * STEP)
side = st.sampled_from(["BUY", "SELL"])
op = st.one_of(
    st.tuples(st.just("market"), side, qty),
    st.tuples(st.just("market_quote"), side, st.integers(1, 20000).map(lambda k: k * D("0.00001"))),
    st.tuples(st.just("maker"), side, qty, st.integers(-60, 60)),
    st.tuples(st.just("limit"), side, qty, st.integers(-60, 60), st.sampled_from(["GTC", "IOC", "FOK"])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("advance"), st.floats(0.05, 4.0)),
)


def ledger_deltas(engine: Engine) -> dict[str, D]:
    delta: dict[str, D] = defaultdict(D)
    for f in engine.fills:
        sign = 1 if f.side == "BUY" else -1
        delta["ETH"] += sign * f.qty
        delta["BTC"] -= sign * f.quote_qty
        delta[f.commission_asset] -= f.commission
    return delta


def check_invariants(engine: Engine) -> None:
    delta = ledger_deltas(engine)
    for asset, start in START.items():
        total = engine.free[asset] + engine.locked[asset]
        assert total - start == delta[asset], asset
        assert engine.free[asset] >= 0 and engine.locked[asset] >= 0, asset
        assert total == total.quantize(D("1e-8")), asset
    held: dict[str, D] = defaultdict(D)
    for o in engine.open.values():
        held[o.lock_asset or ""] += o.locked
    for asset in START:
        assert engine.locked[asset] == held[asset], asset
    for o in engine.orders.values():
        assert o.executed_qty == sum((f.qty for f in o.fills), D(0))
        assert o.cum_quote == sum((f.quote_qty for f in o.fills), D(0))
        assert (o.status == "FILLED") == (o.executed_qty == o.orig_qty)
        assert o.is_open == (o.order_id in engine.open)


def run(engine: Engine, ops: list[tuple]) -> None:
    for step in ops:
        kind = step[0]
        try:
            if kind == "market":
                engine.place(side=step[1], order_type="MARKET", quantity=step[2])
            elif kind == "market_quote":
                engine.place(side=step[1], order_type="MARKET", quote_qty=step[2])
            elif kind in ("maker", "limit"):
                bid, ask = engine.market.bid_ask(engine.pos)
                price = (bid if step[1] == "BUY" else ask) + step[3] * TICK
                if kind == "maker":
                    engine.place(side=step[1], order_type="LIMIT_MAKER", quantity=step[2], price=price)
                else:
                    engine.place(side=step[1], order_type="LIMIT", quantity=step[2], price=price, time_in_force=step[4])
            elif kind == "cancel":
                ids = sorted(engine.orders)
                if ids:
                    engine.cancel(order_id=ids[step[1] % len(ids)])
            else:
                engine.advance(step[1])
        except ApiError as err:
            assert err.code in (-2010, -2011, -1013), err
        check_invariants(engine)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, max_size=40), pay_in_bnb=st.booleans(), partial=st.sampled_from([1.0, 0.5, 0.3]),
       maker=st.sampled_from(["0", "0.00075", "0.001"]), slippage=st.sampled_from([0.0, 5.0]))
def test_balances_change_exactly_by_fills_and_commissions(ops, pay_in_bnb, partial, maker, slippage) -> None:
    cfg = SimConfig(balances=dict(START), start=10, pay_fees_in_bnb=pay_in_bnb, bnb_btc_price="0.0125",
                    partial_fill=partial, maker_fee=maker, slippage_bps=slippage)
    engine = build_engine(CANDLES, cfg)
    run(engine, ops)
    engine.advance(len(CANDLES))  # replay to the end: every fill that can happen happens
    check_invariants(engine)


def test_conservation_over_http_matches_the_ledger_dump(sim_factory) -> None:
    sim = sim_factory(CANDLES, balances={k: str(v) for k, v in START.items()}, start=10, partial_fill=0.5,
                      pay_fees_in_bnb=True, bnb_btc_price="0.0125")
    client = spot_client(sim)
    rng = random.Random(4)
    for _ in range(40):
        book = client.book_ticker("ETHBTC")
        s = rng.choice(["BUY", "SELL"])
        q = f"{rng.randint(10, 20000) * STEP}"
        try:
            if rng.random() < 0.4:
                client.new_order("ETHBTC", s, "MARKET", quantity=q)
            else:
                ref = D(book["bidPrice"] if s == "BUY" else book["askPrice"])
                offset = rng.randint(0, 30) * TICK
                client.new_order("ETHBTC", s, "LIMIT_MAKER", quantity=q, price=str(ref - offset if s == "BUY" else ref + offset))
        except Exception as exc:  # rejected orders are part of the sequence
            assert getattr(exc, "error_code", None) == -2010, exc
        if rng.random() < 0.3:
            sim.advance(rng.uniform(0.2, 2))
    sim.advance(200)
    delta: dict[str, D] = defaultdict(D)
    ledger = sim.ledger()
    assert ledger and {f["commissionAsset"] for f in ledger} >= {"BNB"}
    for f in ledger:
        sign = 1 if f["side"] == "BUY" else -1
        delta["ETH"] += sign * D(f["qty"])
        delta["BTC"] -= sign * D(f["quoteQty"])
        delta[f["commissionAsset"]] -= D(f["commission"])
    for b in client.account()["balances"]:
        assert D(b["free"]) + D(b["locked"]) - START[b["asset"]] == delta[b["asset"]], b["asset"]
