"""The REAL ``live_executor.py`` as a scraped bot: a subprocess in testnet mode against the exchange
simulator, implementing the ``BotDriver`` protocol of ``tests/support/prom_fixtures.py`` (like
``tests/support/synthetic_bot.py``), so the Prometheus/dashboard/health proofs run on the product itself.

Clock: 1-minute candles whose open times are anchored to the wall clock. The simulator replays the
older bars accelerated (``speed`` mode) and a pacer thread keeps the market clock from running more
than a moment ahead of wall time (``realtime`` mode once caught up), so the executor decides a
freshly closed bar at every minute boundary, as on Binance, and ``/health`` is 200.
``stall()`` freezes the simulator (``manual`` clock) and makes ``/api/v3/klines`` answer 503, so
no new bar can arrive; ``resume()`` undoes both. Faults and partial fills are switched on so the
run also produces API errors, TTL cancels and taker fallbacks (maker and taker fills).

A taker fill inside the scraped window is made certain, not left to this machine's speed: after
``release()`` the pacer freezes the market while the executor has an order open, until one taker
fill has happened (a maker order resting on a frozen market cannot fill, so its TTL expires and
the executor falls back to MARKET). Without that, whether a catch-up order outlives its 0.5 s TTL
depends on how many bars the replay runs in that half second (CI once saw none in 90 s).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from ethbtc.sim import SimServer, serve_sim
from tests.support.live_harness import executor_cmd, executor_env, write_params
from tests.support.prom_fixtures import free_port
from tests.support.sim_fixtures import DEFAULT_BALANCES, SIM_KEY, SIM_SECRET, make_candles

BAR_MS = 60_000
HISTORY_BARS = 1600  # >= what the executor asks for (1440 bars of a day + warm-up)
CATCH_UP_BARS = 120  # replayed at speed after the executor starts: trades, fills, errors
FUTURE_BARS = 600  # bars after "now": the run can last ten minutes of wall time
SPEED = 8.0  # bars per second while behind the wall clock
LEAD_MS = 500  # how far the market clock may run ahead of the wall clock
# a sprinkle of transient faults on everything but klines (those would only delay bars)
FAULTS: dict[str, Any] = {"error_5xx": 0.04, "seed": 7, "endpoints": ["/api/v3/order", "/api/v3/account",
                                                                      "/api/v3/myTrades", "/api/v3/openOrders"]}


def anchored_candles(now_ms: int) -> pd.DataFrame:
    """1m candles; bar HISTORY_BARS opens CATCH_UP_BARS minutes before ``now_ms``."""
    n = HISTORY_BARS + CATCH_UP_BARS + FUTURE_BARS
    df = make_candles(n, seed=5, minutes=1, bar_vol=0.002)
    first = pd.Timestamp((now_ms - (CATCH_UP_BARS + HISTORY_BARS) * BAR_MS) // 1000, unit="s", tz="UTC")
    df.index = pd.date_range(first, periods=n, freq="1min", name="open_time")
    return df


class ExecutorDriver:
    """``live_executor.py --mode testnet`` against an in-process simulator, until ``stop()``.

    Optional: ``candles`` (a function of "now" in ms, default ``anchored_candles``), ``params``
    (config overrides), ``faults`` (``None`` = none), ``extra_args`` for the executor; ``restart``
    runs a new executor process on the same state, simulator and port."""

    def __init__(self, workdir: Path, poll_sec: float = 0.05, ttl_sec: float = 0.5, *,
                 candles: Callable[[int], pd.DataFrame] = anchored_candles, params: dict[str, Any] | None = None,
                 faults: dict[str, Any] | None = FAULTS, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.candles, self.params, self.faults, self.extra_args = candles, dict(params or {}), faults, list(extra_args)
        self.port = free_port()
        self.sim: SimServer | None = None
        self._sim_cm: Any = None
        self.proc: subprocess.Popen[str] | None = None
        self.poll_sec, self.ttl_sec = poll_sec, ttl_sec
        self._stalled = threading.Event()
        self._released = threading.Event()  # the market stays still until release()
        self._stop = threading.Event()
        self._pacer = threading.Thread(target=self._pace, name="sim-pacer", daemon=True)
        self.log_path = workdir / "executor.log"

    # ---------------------------------------------------------------- BotDriver protocol
    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}"

    def start(self) -> ExecutorDriver:
        candles = self.candles(int(time.time() * 1000))
        self._sim_cm = serve_sim(candles, balances=dict(DEFAULT_BALANCES), api_key=SIM_KEY, api_secret=SIM_SECRET,
                                 start=HISTORY_BARS, clock="manual", partial_fill=0.5,
                                 wall_clock=True)  # the history is anchored to the wall clock: so is serverTime
        self.sim = self._sim_cm.__enter__()
        self.sim.set_faults(**(self.faults or {}))
        self._log = open(self.log_path, "w")  # noqa: SIM115 -- closed in stop()
        self._spawn()
        self._pacer.start()
        return self

    def _spawn(self, *extra: str) -> None:
        params = write_params(self.workdir, **({"bar_interval_minutes": 1, "ttl_sec": self.ttl_sec,
                                                 "poll_sec": self.poll_sec} | self.params))
        args = ["--params", str(params), "--mode", "testnet", "--state", str(self.workdir / "state.json"),
                "--metrics-port", str(self.port), "--metrics-addr", "127.0.0.1", "--http-timeout", "3",
                *self.extra_args, *extra]
        self.proc = subprocess.Popen(executor_cmd(*args), env=executor_env(self.sim), stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True)

    def restart(self, *extra: str, params: dict[str, Any] | None = None) -> None:
        """Stop the executor (SIGTERM, as an operator would) and start it again with ``extra`` flags
        (e.g. ``--reset-risk``) and ``params`` merged into its config; market and state carry on."""
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(30)
        self.params |= params or {}
        self._spawn(*extra)

    def release(self) -> None:
        """Let the market run (call once Prometheus scrapes the executor: the catch-up trades then
        happen inside the scraped window)."""
        self._released.set()

    def stall(self) -> None:
        """Freeze the exchange: the market clock stops and klines answer 503 (no new bar arrives)."""
        assert self.sim is not None
        self._stalled.set()
        self.sim.engine.market.clock.set_mode("manual")
        self.sim.set_faults(error_5xx=1.0, endpoints=["/api/v3/klines"])

    def resume(self) -> None:
        assert self.sim is not None
        self.sim.set_faults(**(self.faults or {}))
        self._stalled.clear()

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._pacer.join(5) if self._pacer.is_alive() else None
        if self._sim_cm is not None:
            self._sim_cm.__exit__(None, None, None)
            self._sim_cm = None
        if not self._log.closed:
            self._log.close()

    # ---------------------------------------------------------------- helpers
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _pace(self) -> None:
        """Speed while the market is behind the wall clock, real time once it is (just) ahead."""
        assert self.sim is not None
        clock, market = self.sim.engine.market.clock, self.sim.engine.market
        while not self._stop.wait(0.1):  # the market stands still until the executor is up ...
            try:
                if requests.get(f"{self.url}/metrics", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
        while not self._stop.is_set() and not self._released.wait(0.1):  # ... and released
            pass
        engine = self.sim.engine
        with engine.lock:
            seen = len(engine.fills)  # fills before the release (the start-up bar's order)
        taker_done = False
        while not self._stop.wait(0.02):
            hold = False  # an order resting before the first taker fill: still until its TTL sends it as MARKET
            if not taker_done:
                with engine.lock:
                    taker_done = any(not f.is_maker for f in engine.fills[seen:])
                    hold = bool(engine.open) and not taker_done
            if self._stalled.is_set() or hold:
                want = "manual"
            else:
                ahead = market.time_ms(clock.pos()) - time.time() * 1000
                want = "realtime" if ahead >= LEAD_MS else "speed"
            if clock.mode != want:
                clock.set_mode(want, SPEED if want == "speed" else None)
