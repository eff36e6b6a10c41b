"""Soak (issue 9): a long accelerated replay of the real live_executor.py, watching RSS and open fds.

The paper exchange runs its market clock fast (``clock='speed'``); the executor (testnet mode,
real HTTP, the trading-heavy ``ACTIVE`` config) decides every bar (when it falls behind the fast
clock it catches up, as after an outage) until the journal holds the wanted bars, then SIGTERM. The test
samples the executor's resident memory and open file descriptors from /proc while it runs and
asserts no growth trend over the second half of the run (least-squares slope per 1,000 bars), and
that every bar was decided. CI runs ~1,500 bars; ``make soak`` runs 50,000.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethbtc.sim import SimServer
from tests.support.live_harness import executor_cmd, executor_env, fast_dir, write_params
from tests.support.sim_fixtures import make_candles

_ = fast_dir
Factory = Callable[..., SimServer]
RSS_SLOPE_MB_PER_1K_BARS = 0.5  # a leak of >= 0.5 KB per bar fails; allocator noise stays well below
FD_GROWTH = 2  # a few sockets may come and go; a leak of one per bar would show hundreds


def _proc(pid: int) -> tuple[float, int]:
    """Resident memory (MB) and open descriptors of a process, read from /proc."""
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    return rss_kb / 1024.0, len(os.listdir(f"/proc/{pid}/fd"))


def soak_run(sim_factory: Factory, folder: Path, bars: int, bars_per_sec: float = 60.0) -> dict[str, float]:
    warm = 80
    sim = sim_factory(make_candles(warm + 2 * bars + 400, seed=29), start=warm, clock="speed", speed=bars_per_sec)
    params = write_params(folder, ttl_sec=0.05, poll_sec=0.01)
    cmd = executor_cmd("--params", str(params), "--mode", "testnet", "--state", str(folder / "state.json"),
                       "--metrics-port", "0", "--klines-limit", "200")
    samples: list[tuple[int, float, int]] = []  # bars decided so far, RSS MB, fds
    journal = folder / "decisions_log.csv"
    with open(folder / "executor.log", "w") as log:
        proc = subprocess.Popen(cmd, env=executor_env(sim), stdout=log, stderr=log)
        try:
            while proc.poll() is None:
                time.sleep(0.2)
                try:
                    rss, fds = _proc(proc.pid)
                    done = max(0, sum(1 for _ in journal.open()) - 1) if journal.exists() else 0
                except (FileNotFoundError, ProcessLookupError, StopIteration):
                    break
                samples.append((done, rss, fds))
                if done >= bars:  # --max-bars counts bars acted on, not catch-up bars: stop as an operator would
                    proc.terminate()
                    break
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, f"executor exited {proc.returncode}: see {folder / 'executor.log'}"
    decided = pd.read_csv(journal).drop_duplicates("bar_open_ms")["bar_open_ms"]
    assert len(decided) >= bars and (decided.diff().dropna() == 900_000).all(), "a bar was not decided"
    arr = np.array(samples, dtype=float)
    half = arr[arr[:, 0] >= arr[-1, 0] / 2]
    assert len(half) >= 5, "too few samples to see a trend"
    slope = float(np.polyfit(half[:, 0] / 1000.0, half[:, 1], 1)[0]) if np.ptp(half[:, 0]) > 0 else 0.0
    return {"bars": float(len(decided)), "samples": float(len(arr)), "rss_start_mb": float(arr[0, 1]),
            "rss_end_mb": float(arr[-1, 1]), "rss_slope_mb_per_1k": slope,
            "fd_growth": float(half[:, 2].max() - half[0, 2]), "fills": float(len(sim.ledger()))}


def check_soak(stats: dict[str, float]) -> None:
    assert stats["rss_slope_mb_per_1k"] < RSS_SLOPE_MB_PER_1K_BARS, f"RSS grows: {stats}"
    assert stats["fd_growth"] <= FD_GROWTH, f"open descriptors grow: {stats}"
    assert stats["fills"] >= stats["bars"] / 50, "the soak barely traded: it exercised little"


def test_soak_short_no_memory_or_fd_growth(sim_factory: Factory, fast_dir: Path) -> None:
    stats = soak_run(sim_factory, fast_dir, bars=1500)
    print("soak (CI):", stats)
    check_soak(stats)


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("ETHBTC_SOAK"), reason="50,000-bar soak: make soak")
def test_soak_fifty_thousand_bars(sim_factory: Factory, fast_dir: Path) -> None:
    stats = soak_run(sim_factory, fast_dir, bars=50_000, bars_per_sec=80.0)
    print("soak (50k):", stats)
    check_soak(stats)
