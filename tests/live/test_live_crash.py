"""Crash safety (SPEC R31, R34): ``kill -9`` the real live_executor.py at random moments, again and again.

The paper exchange replays an accelerated market (paused while the executor is down, so a restart
usually lands in the very bar it was killed in; sometimes bars close meanwhile, exercising the
catch-up); the executor (testnet mode, real HTTP) is killed
by the test at random times and by armed fail points at the dangerous moments (after an order was
placed but before the state knew, after the intent was saved, after a ledger row, after the state
was saved) and restarted each time. Afterwards: the state file parsed after every kill, no client
order id was ever accepted twice, no bar was acted on twice, every bar was decided, and the trade
ledger equals the exchange's fill ledger exactly.

The chaos variant (issue 9) adds a misbehaving exchange at the same time -- 5xx (some executed),
429/418 with Retry-After, timeouts, connections dropped after an order executed, clock skew,
partial fills -- and a drawdown breaker that trips mid-run; on top of the checks above, the
exchange's final balances equal the start balances plus the executor's ledger (fills and
commissions) to 1e-8, a tripped breaker flag is never lost across kills, and the decision journal
shows it latched (R24): from the first bar whose wealth is max_dd_frac below its peak, target 0.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ethbtc.live.state import StateStore
from ethbtc.sim import FaultConfig, SimServer
from tests.support.live_harness import executor_cmd, executor_env, fast_dir, write_params
from tests.support.sim_fixtures import DEFAULT_BALANCES, make_candles

_ = fast_dir
Factory = Callable[..., SimServer]
FAILPOINTS = ("after_order_placed=0.3,after_intent_saved=0.1,before_order_sent=0.1,after_ledger_row=0.1,"
              "after_state_saved=0.03")
BARS_PER_SEC = 2.0  # while the executor runs


class Market:
    """Moves the manual-clock simulator in small steps while the executor runs; pauses while it is down,
    so a restart usually finds the very bar it was killed in (the case where acting twice could happen)."""

    def __init__(self, sim: SimServer, bars_per_sec: float) -> None:
        self.sim = sim
        self.step = bars_per_sec * 0.05
        self.running = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.05):
            if self.running.is_set():
                self.sim.advance(self.step)

    def close(self) -> None:
        self.done.set()
        self.thread.join()


def mixed_faults(seed: int) -> FaultConfig:
    """Every kind of exchange misbehaviour at once (about 10% of requests, a drop after every 12th order), plus a skewed server clock."""
    return FaultConfig(error_5xx=0.04, error_5xx_executes=True, rate_limit_429=0.02, ban_418=0.01, retry_after=1,
                       delay=0.015, delay_seconds=1.0, drop_after_order=0.08, time_skew_ms=700, seed=seed)


def crash_replay(sim_factory: Factory, folder: Path, restarts: int, seed: int, faults: FaultConfig | None = None,
                 partial_fill: float = 1.0, **params: Any) -> dict[str, object]:
    rng = random.Random(seed)
    start = 60
    candles = make_candles(start + restarts * 12 + 200, seed=seed)
    sim = sim_factory(candles, start=start, partial_fill=partial_fill, faults=faults or FaultConfig())
    market = Market(sim, BARS_PER_SEC)
    params_path = write_params(folder, **({"ttl_sec": 0.15, "poll_sec": 0.05} | params))
    state_path = folder / "state.json"
    cmd = executor_cmd("--params", str(params_path), "--mode", "testnet", "--state", str(state_path),
                       "--metrics-port", "0", "--http-timeout", "0.6" if faults else "3")
    log = open(folder / "executor.log", "a")  # noqa: SIM115 - appended to by every run
    crashes = folder / "failpoints.log"
    kills = {"test": 0, "failpoint": 0, "parsed": 0, "downtime_bars": 0, "gave_up": 0}
    breaker_seen, breaker_lost = False, 0
    try:
        while kills["test"] + kills["failpoint"] + kills["gave_up"] < restarts:
            extra = {"ETHBTC_FAILPOINTS": f"{FAILPOINTS};seed={rng.randrange(1 << 30)}"} if rng.random() < 0.6 else {}
            proc = subprocess.Popen(cmd, env=executor_env(sim, ETHBTC_FAILPOINTS_LOG=str(crashes), **extra),
                                    stdout=log, stderr=log)
            time.sleep(1.2)  # start-up with the market paused
            market.running.set()
            try:
                proc.wait(timeout=rng.uniform(0.2, 3.0))
                kills["failpoint"] += 1
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                kills["test"] += 1
            market.running.clear()
            if faults is not None and proc.returncode == 1:  # start-up met too many faults in a row: exit 1
                kills["failpoint"] -= 1
                kills["gave_up"] += 1
            else:
                assert proc.returncode == -9, f"executor exited {proc.returncode}: see {folder / 'executor.log'}"
            state = StateStore(state_path).load()  # raises on a corrupt file
            kills["parsed"] += 1
            tripped = state is not None and bool(state.kernel.get("risk_maxdd_hit"))
            breaker_lost += breaker_seen and not tripped
            breaker_seen = breaker_seen or tripped
            if rng.random() < 0.3:  # a longer outage: bars close while the executor is down (catch-up)
                missed = rng.randint(2, 6)
                sim.advance(missed)
                kills["downtime_bars"] += missed
        # a last clean run finishes whatever the last crash interrupted, decides a few bars, exits 0
        injected = dict(sim.faults.state()["injected"])  # type: ignore[call-overload]
        sim.set_faults()
        market.running.set()
        final = subprocess.run([*cmd, "--max-bars", "3"], env=executor_env(sim), stdout=log, stderr=log, timeout=120)
        assert final.returncode == 0
    finally:
        market.close()
        log.close()
    points = Counter(crashes.read_text().split()) if crashes.exists() else Counter()
    final_state = StateStore(state_path).load()
    tripped = final_state is not None and bool(final_state.kernel.get("risk_maxdd_hit"))
    breaker_lost += breaker_seen and not tripped
    return {"sim": sim, "kills": kills, "points": points, "injected": injected,
            "breaker": {"seen": breaker_seen or tripped, "lost": breaker_lost}}


def reconcile(sim: SimServer, folder: Path, start: dict[str, str] = DEFAULT_BALANCES) -> dict[str, Decimal]:
    """Exchange balances minus (start + the executor's ledger): every asset must come out at zero."""
    expect = {a: Decimal(v) for a, v in start.items()}
    for row in pd.read_csv(folder / "trades_log.csv", dtype=str).itertuples():
        sign = 1 if row.side == "BUY" else -1
        expect["ETH"] = expect.get("ETH", Decimal(0)) + sign * Decimal(row.qty)
        expect["BTC"] = expect.get("BTC", Decimal(0)) - sign * Decimal(row.quote_qty)
        expect[row.commission_asset] = expect.get(row.commission_asset, Decimal(0)) - Decimal(row.commission)
    actual = {a: free + locked for a, (free, locked) in sim.engine.balances().items()}
    return {a: actual.get(a, Decimal(0)) - expect.get(a, Decimal(0)) for a in set(actual) | set(expect)}


def check(sim: SimServer, folder: Path) -> dict[str, int]:
    with sim.engine.lock:
        created = Counter(o.client_order_id for o in sim.engine.orders.values())
        open_orders = len(sim.engine.open)
    assert created and max(created.values()) == 1, "a client order id was accepted twice"
    per_bar: dict[str, set[str]] = {}
    for cid in created:
        per_bar.setdefault(cid.split("-")[2], set()).add(cid.rsplit("-", 1)[1][0])
    assert all(len(sides) == 1 for sides in per_bar.values()), "a bar was acted on twice"
    assert open_orders == 0
    journal = pd.read_csv(folder / "decisions_log.csv")
    bars = journal.drop_duplicates("bar_open_ms", keep="last")["bar_open_ms"]
    assert bars.is_monotonic_increasing and (bars.diff().dropna() == 900_000).all(), "a bar was not decided"
    state = StateStore(folder / "state.json").load()
    assert state is not None and state.pending is None and state.last_bar_open_ms == int(bars.iloc[-1])
    ours = pd.read_csv(folder / "trades_log.csv", dtype=str)
    theirs = sim.ledger()
    assert [int(t) for t in ours["trade_id"]] == [f["tradeId"] for f in theirs], "ledger != exchange fills"
    for col, key in (("client_order_id", "clientOrderId"), ("side", "side")):
        assert list(ours[col]) == [f[key] for f in theirs]
    for col, key in (("qty", "qty"), ("price", "price"), ("quote_qty", "quoteQty"), ("commission", "commission")):
        assert [float(v) for v in ours[col]] == [float(f[key]) for f in theirs]
    return {"bars": len(bars), "orders": len(created), "fills": len(theirs), "bars_with_orders": len(per_bar)}


@pytest.mark.slow
def test_kill_minus_nine_thirty_times(sim_factory: Factory, fast_dir: Path) -> None:
    out = crash_replay(sim_factory, fast_dir, restarts=30, seed=5)
    stats = check(out["sim"], fast_dir)  # type: ignore[arg-type]
    print("crash test:", out["kills"], dict(out["points"]), stats)  # type: ignore[call-overload]
    kills: dict[str, int] = out["kills"]  # type: ignore[assignment]
    assert kills["test"] + kills["failpoint"] >= 30 and kills["parsed"] == kills["test"] + kills["failpoint"]
    assert out["points"]["after_order_placed"] >= 1  # type: ignore[index]
    assert stats["orders"] >= 20 and stats["bars"] >= 60


CHAOS_MAX_DD = 0.0005  # the first fill's fee is half of it: the breaker trips early in every run


def drawdown_breaker_latched(folder: Path, max_dd: float, start: dict[str, str] = DEFAULT_BALANCES) -> int | None:
    """SPEC R24 read from the decision journal: W_t is the holdings entering bar t (the previous
    row's ``btc``/``eth``, which the journal records after that bar's own trade; the start balances
    for the first row) marked at the bar's close. At the first bar where W_t is ``max_dd`` or more
    below its running peak (a hair of margin for the last digit), and at every bar after it, the
    target is 0. Returns that bar's row (None: no such bar)."""
    journal = pd.read_csv(folder / "decisions_log.csv").drop_duplicates("bar_open_ms")  # re-decided bars repeat
    btc = journal["btc"].astype(float).shift(1, fill_value=float(start["BTC"]))
    eth = journal["eth"].astype(float).shift(1, fill_value=float(start["ETH"]))
    wealth = btc + eth * journal["close"].astype(float)
    deep = (1 - wealth / wealth.cummax()) >= max_dd * (1 + 1e-6)
    if not deep.any():
        return None
    first = int(deep.to_numpy().argmax())
    after = journal.iloc[first:]
    late = after[after["target_w"].astype(float) != 0.0]
    assert late.empty, (f"wealth fell {max_dd:.2%} below its peak at bar {journal['bar_time'].iloc[first]} but the "
                        f"breaker did not hold the target at 0:\n{late[['bar_time', 'reason', 'target_w']]}")
    return first


def chaos_crash(sim_factory: Factory, folder: Path, restarts: int, seed: int) -> dict[str, Any]:
    """Mixed faults + half fills + kill -9 + a drawdown breaker that trips mid-run; every invariant checked."""
    out = crash_replay(sim_factory, folder, restarts, seed, faults=mixed_faults(seed), partial_fill=0.5,
                       max_dd_frac=CHAOS_MAX_DD)
    stats = check(out["sim"], folder)  # type: ignore[arg-type]
    diff = reconcile(out["sim"], folder)  # type: ignore[arg-type]
    assert all(abs(d) <= Decimal("1e-8") for d in diff.values()), f"balances do not reconcile: {diff}"
    assert out["breaker"]["lost"] == 0, "a tripped drawdown breaker was lost across a kill"  # type: ignore[index]
    deep_bar = drawdown_breaker_latched(folder, CHAOS_MAX_DD)
    return {**out, "stats": stats, "diff": diff, "deep_bar": deep_bar}


def test_chaos_mixed_faults_and_kills(sim_factory: Factory, fast_dir: Path) -> None:
    """SPEC R24, R31, R34: the invariants hold with every fault kind at once and random kill -9."""
    out = chaos_crash(sim_factory, fast_dir, restarts=8, seed=41)
    print("chaos crash:", out["kills"], out["injected"], out["stats"], out["breaker"])
    # the breaker is meant to trip early and then hold the account flat, so only a few fills happen
    # here (4 to 12 seen); fill-heavy crash coverage is test_kill_minus_nine_thirty_times
    assert sum(out["injected"].values()) >= 10 and out["stats"]["fills"] >= 2
    assert out["breaker"]["seen"] or out["deep_bar"] is None, "wealth fell through max_dd_frac, no trip recorded"
    assert out["breaker"]["seen"], "the tiny max_dd_frac never tripped: the breaker check proved nothing"


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("ETHBTC_SOAK"), reason="long chaos replay: make soak")
def test_chaos_mixed_faults_and_kills_long(sim_factory: Factory, fast_dir: Path) -> None:
    out = chaos_crash(sim_factory, fast_dir, restarts=60, seed=43)
    print("soak chaos crash:", out["kills"], out["injected"], out["stats"], out["breaker"])
    for kind in ("error_5xx", "rate_limit_429", "delay", "drop_after_order"):
        assert out["injected"].get(kind, 0) >= 1, f"no {kind} fault was injected"


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("ETHBTC_SOAK"), reason="long crash replay: make soak")
def test_kill_minus_nine_two_hundred_times(sim_factory: Factory, fast_dir: Path) -> None:
    out = crash_replay(sim_factory, fast_dir, restarts=200, seed=17)
    stats = check(out["sim"], fast_dir)  # type: ignore[arg-type]
    print("soak crash test:", out["kills"], dict(out["points"]), stats)  # type: ignore[call-overload]
