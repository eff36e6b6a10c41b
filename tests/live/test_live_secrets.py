"""Secret hygiene of the real live_executor.py (issue 9): known fake keys, every output scanned.

The executor runs against the paper exchange with realistic fake keys across log levels (default,
-v, -vv), ``--log-json``, a misbehaving exchange (5xx, 429) while ``/metrics`` and ``/health`` are
scraped, and the error paths (wrong secret -> -1022 bad signature, unknown key -> 401/-2015,
every request 503 -> exit 1 with the request URL in the exception). Logs, metrics text, health
bodies, state, ledgers and journals are scanned with :mod:`tests.support.secret_scan` for the keys, the
secrets and any ``signature=`` value: zero hits.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from ethbtc.sim import SimServer
from tests.support.live_harness import executor_cmd, executor_env, fast_dir, write_params
from tests.support.secret_scan import Text, scan

_ = fast_dir
Factory = Callable[..., SimServer]
FAKE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
FAKE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
WRONG_KEY = "Qx7Lr2mWvB9sTzK4pN8cYhF3dJ6gA1eU5oI0tRkMnXbVqZwHsLyCjGfDaEuPiOl2"
WRONG_SECRET = "Zt5Nw8Hq2Lm4Vx7Rk9Bp3Cy6Jd1Fg0Sa5Ue8Ti2Ow4Qz7Xn9Mb3Kv6Hc1Gr0Ly5"
SECRETS = (FAKE_KEY, FAKE_SECRET, WRONG_KEY, WRONG_SECRET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secret_env(sim: SimServer, **extra: str) -> dict[str, str]:
    return executor_env(sim, **({"BINANCE_KEY": FAKE_KEY, "BINANCE_SECRET": FAKE_SECRET} | extra))


def base(folder: Path, *flags: str) -> list[str]:
    params = write_params(folder, ttl_sec=0.2, poll_sec=0.05)
    return executor_cmd("--params", str(params), "--mode", "testnet", "--state", str(folder / "state.json"),
                        "--http-timeout", "1", *flags)


def run_once(sim: SimServer, folder: Path, flags: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    sim.advance(1)
    return subprocess.run(base(folder, "--once", "--metrics-port", "0", *flags), env=secret_env(sim, **env),
                          capture_output=True, text=True, timeout=120)


def scraped_run(sim: SimServer, folder: Path, bars: int) -> tuple[subprocess.CompletedProcess[str], list[Text]]:
    """A -vv run on a faulty exchange, /metrics and /health scraped on every bar."""
    port = free_port()
    sim.set_faults(error_5xx=0.15, error_5xx_executes=True, rate_limit_429=0.05, retry_after=0, seed=5)
    # the output goes to files, not pipes: -vv logs whole kline replies, which fill a pipe's 64 KiB
    # while nobody reads it, and the executor then blocks on its log write until the deadline
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(base(folder, "-vv", "--max-bars", str(bars), "--metrics-port", str(port)),
                                env=secret_env(sim), stdout=out, stderr=err, text=True)
        scraped: list[Text] = []
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
            for path in ("/metrics", "/health"):
                try:
                    r = requests.get(f"http://127.0.0.1:{port}{path}", timeout=2)
                    scraped.append(Text(f"{path} #{len(scraped)}", r.text))
                except requests.RequestException:
                    pass
            sim.advance(1)
        proc.wait(timeout=60)
        sim.set_faults()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read()), scraped


def hygiene_run(sim_factory: Factory, folder: Path, bars: int = 6) -> dict[str, object]:
    """Every path once; returns the hits (must be empty) and what each path did."""
    sim = sim_factory(api_key=FAKE_KEY, api_secret=FAKE_SECRET)
    texts: list[Text] = []
    codes: dict[str, int] = {}

    def keep(label: str, proc: subprocess.CompletedProcess[str]) -> None:
        codes[label] = proc.returncode
        texts.extend([Text(f"{label} stdout", proc.stdout), Text(f"{label} stderr", proc.stderr)])

    for flags in ([], ["-v", "--log-json"]):
        keep(" ".join(flags) or "default", run_once(sim, folder, flags))
    proc, scraped = scraped_run(sim, folder, bars)
    keep("faulty -vv + metrics", proc)
    texts += scraped
    for flags in (["-vv"], ["-v", "--log-json"]):
        keep(f"wrong secret {flags}", run_once(sim, folder, flags, BINANCE_SECRET=WRONG_SECRET))
    keep("wrong key -vv --log-json", run_once(sim, folder, ["-vv", "--log-json"], BINANCE_KEY=WRONG_KEY))
    sim.set_faults(error_5xx=1.0)
    for flags in (["-vv"], ["--log-json"]):
        keep(f"all 503 {flags}", run_once(sim, folder, flags))
    sim.set_faults()
    hits = scan([*texts, folder], SECRETS)
    blob = "\n".join(str(t.content) for t in texts)
    return {"hits": hits, "codes": codes, "scraped": len(scraped), "blob": blob, "sources": len(texts)}


def test_no_secret_anywhere_across_levels_json_and_error_paths(sim_factory: Factory, fast_dir: Path) -> None:
    out = hygiene_run(sim_factory, fast_dir)
    codes: dict[str, int] = out["codes"]  # type: ignore[assignment]
    blob: str = out["blob"]  # type: ignore[assignment]
    assert out["hits"] == [], "\n".join(map(str, out["hits"]))  # type: ignore[call-overload]
    # the paths really ran: good runs succeeded, the error paths failed as they should, and said why
    assert all(codes[k] == 0 for k in ("default", "-v --log-json", "faulty -vv + metrics"))
    assert all(codes[k] != 0 for k in codes if k.startswith(("wrong", "all 503")))
    assert "-1022" in blob and "-2015" in blob and "503" in blob and "DEBUG" in blob
    assert out["scraped"] >= 4 and "ethbtc_" in blob and '"status"' in blob  # metrics and health were read
