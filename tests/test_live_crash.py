"""Crash safety (SPEC R31, R34): ``kill -9`` the real live_executor.py at random moments, again and again.

The paper exchange replays an accelerated market (paused while the executor is down, so a restart
usually lands in the very bar it was killed in; sometimes bars close meanwhile, exercising the
catch-up); the executor (testnet mode, real HTTP) is killed
by the test at random times and by armed fail points at the dangerous moments (after an order was
placed but before the state knew, after the intent was saved, after a ledger row, after the state
was saved) and restarted each time. Afterwards: the state file parsed after every kill, no client
order id was ever accepted twice, no bar was acted on twice, every bar was decided, and the trade
ledger equals the exchange's fill ledger exactly.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ethbtc.live.state import StateStore
from ethbtc.sim import SimServer
from tests.live_harness import executor_cmd, executor_env, fast_dir, write_params
from tests.sim_fixtures import make_candles

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


def crash_replay(sim_factory: Factory, folder: Path, restarts: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    start = 60
    candles = make_candles(start + restarts * 12 + 200, seed=seed)
    sim = sim_factory(candles, start=start)
    market = Market(sim, BARS_PER_SEC)
    params = write_params(folder, ttl_sec=0.15, poll_sec=0.05)
    state_path = folder / "state.json"
    cmd = executor_cmd("--params", str(params), "--mode", "testnet", "--state", str(state_path),
                       "--metrics-port", "0", "--http-timeout", "3")
    log = open(folder / "executor.log", "a")  # noqa: SIM115 - appended to by every run
    crashes = folder / "failpoints.log"
    kills = {"test": 0, "failpoint": 0, "parsed": 0, "downtime_bars": 0}
    try:
        while kills["test"] + kills["failpoint"] < restarts:
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
            assert proc.returncode == -9, f"executor exited {proc.returncode}: see {folder / 'executor.log'}"
            StateStore(state_path).load()  # raises on a corrupt file
            kills["parsed"] += 1
            if rng.random() < 0.3:  # a longer outage: bars close while the executor is down (catch-up)
                missed = rng.randint(2, 6)
                sim.advance(missed)
                kills["downtime_bars"] += missed
        # a last clean run finishes whatever the last crash interrupted, decides a few bars, exits 0
        market.running.set()
        final = subprocess.run([*cmd, "--max-bars", "3"], env=executor_env(sim), stdout=log, stderr=log, timeout=120)
        assert final.returncode == 0
    finally:
        market.close()
        log.close()
    points = Counter(crashes.read_text().split()) if crashes.exists() else Counter()
    return {"sim": sim, "kills": kills, "points": points}


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


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("ETHBTC_SOAK"), reason="long crash replay: make soak")
def test_kill_minus_nine_two_hundred_times(sim_factory: Factory, fast_dir: Path) -> None:
    out = crash_replay(sim_factory, fast_dir, restarts=200, seed=17)
    stats = check(out["sim"], fast_dir)  # type: ignore[arg-type]
    print("soak crash test:", out["kills"], dict(out["points"]), stats)  # type: ignore[call-overload]
