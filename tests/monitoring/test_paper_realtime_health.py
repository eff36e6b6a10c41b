"""A real-time paper run: the executor's /health means something against the paper exchange.

``python -m ethbtc.sim --realtime`` re-stamps its history onto the wall clock (one time line,
issue 15), so ``live_executor.py --mode testnet`` sees fresh bars and ``/health`` is 200; once
the simulator's market is frozen (``POST /sim/clock`` ``manual``: a stalled feed, while the
exchange clock goes on) no bar arrives, and two intervals later ``/health`` is 503 ``stale_bar``
(SPEC: health). No klines fault or clock trick: the simulator as users run it. 1-minute bars
keep the wait at two to three minutes of wall time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.live_harness import ROOT, executor_cmd, executor_env, write_params
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET, make_candles

pytestmark = pytest.mark.slow
INTERVAL_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn: Any, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def test_health_is_200_on_fresh_bars_and_503_stale_bar_once_the_simulator_freezes(tmp_path: Path) -> None:
    data = tmp_path / "ETHBTC_1m.csv"
    df = make_candles(600, seed=11, minutes=1)
    df.reset_index().assign(open_time=lambda d: d["open_time"].astype("int64") // 1_000_000).to_csv(data, index=False)
    sim = subprocess.Popen([sys.executable, "-m", "ethbtc.sim", "--data", str(data), "--interval", "1m", "--port",
                            "0", "--realtime", "--start", "500", "--btc", "1", "--api-key", SIM_KEY,
                            "--api-secret", SIM_SECRET], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    bot = None
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().split()[-1]
        state = requests.get(f"{url}/sim/state", timeout=5).json()
        assert state["wallClock"] and abs(state["serverTime"] - time.time() * 1000) < 2000
        params = write_params(tmp_path, bar_interval_minutes=1, trend_lookback=12, vol_window=12, poll_sec=1.0,
                              ttl_sec=5.0)
        port = free_port()
        env = executor_env(None, BINANCE_BASE_URL=url)
        bot = subprocess.Popen(executor_cmd("--params", str(params), "--mode", "testnet", "--state",
                                            str(tmp_path / "state.json"), "--metrics-port", str(port)),
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def health() -> tuple[int, dict[str, Any]] | None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health", timeout=3)
            except requests.RequestException:
                return None
            return r.status_code, r.json()

        status, doc = wait_for(lambda: (h := health()) and h[0] == 200 and h, 60, "/health 200 on fresh bars")
        assert doc["status"] == "ok" and doc["last_bar_age_seconds"] <= 2 * INTERVAL_S
        frozen = requests.post(f"{url}/sim/clock", data=json.dumps({"mode": "manual"}), timeout=5).json()
        assert frozen["clock"]["mode"] == "manual"
        status, doc = wait_for(lambda: (h := health()) and h[0] == 503 and h, 3 * INTERVAL_S + 30,
                               "/health 503 after the simulator froze", every=2.0)
        assert doc["status"] == "stale_bar", doc
        assert doc["last_bar_age_seconds"] > 2 * INTERVAL_S
        assert doc["last_loop_age_seconds"] < 2 * INTERVAL_S  # the loop kept running
        assert bot.poll() is None
    finally:
        for proc in (bot, sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
