"""live_executor.py as a user runs it: mode safety (R33), key check, state errors, single instance,
SIGTERM, dry mode with metrics/health, one-line errors, no secret in any output."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ethbtc.live.state import StateStore
from ethbtc.sim import SimServer
from tests.support.live_harness import KEY, SECRET, executor_cmd, executor_env, fast_dir, write_params
from tests.support.sim_fixtures import make_candles

_ = fast_dir
Factory = Callable[..., SimServer]


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(executor_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and lines[-1].startswith("error: "), proc.stderr[-1500:]
    return lines[-1]


def base_args(folder: Path, *extra: str) -> list[str]:
    return ["--params", str(write_params(folder)), "--state", str(folder / "state.json"), "--metrics-port", "0",
            *extra]


@pytest.mark.parametrize(("mode", "url", "expected"), [
    ("live", "https://testnet.binance.vision", "live refuses"),
    ("live", "http://127.0.0.1:9", "local exchange simulator"),
    ("testnet", "https://api.binance.com", "testnet refuses the mainnet URL"),
])
def test_a_mode_refuses_the_wrong_endpoint(fast_dir: Path, mode: str, url: str, expected: str) -> None:
    """SPEC R33: refused before any connection (these URLs are not reachable from here anyway)."""
    line = one_line_error(run(base_args(fast_dir, "--mode", mode), executor_env(BINANCE_BASE_URL=url)))
    assert expected in line
    assert not (fast_dir / "state.json").exists()


def test_wrong_key_fails_at_the_first_signed_read_with_the_fix(sim: SimServer, fast_dir: Path) -> None:
    line = one_line_error(run(base_args(fast_dir, "--mode", "testnet"), executor_env(sim, BINANCE_KEY="wrong-key")))
    assert "-2015" in line and "Enable Spot" in line and "whitelist" in line
    assert sim.order_log == [] and not (fast_dir / "state.json").exists()
    line = one_line_error(run(base_args(fast_dir, "--mode", "testnet"), executor_env(sim, BINANCE_SECRET="nope")))
    assert "BINANCE_SECRET does not match" in line


def test_testnet_without_keys_is_refused(sim: SimServer, fast_dir: Path) -> None:
    env = executor_env(sim)
    del env["BINANCE_KEY"], env["BINANCE_SECRET"]
    assert "needs BINANCE_KEY and BINANCE_SECRET" in one_line_error(run(base_args(fast_dir, "--mode", "testnet"), env))


def test_corrupt_state_stops_with_its_path(sim: SimServer, fast_dir: Path) -> None:
    state = fast_dir / "state.json"
    state.write_text('{"version": 1, "mode": "testnet", "sym')
    line = one_line_error(run(base_args(fast_dir, "--mode", "testnet", "--once"), executor_env(sim)))
    assert str(state) in line and "corrupt" in line
    assert state.read_text() == '{"version": 1, "mode": "testnet", "sym'
    assert sim.order_log == []


@pytest.mark.parametrize(("extra", "expected"), [
    (["--mode", "paper"], "must be one of dry, testnet, live"),
    (["--interval", "1h"], "does not match the config's bar interval"),
    (["--ttl-sec", "-1"], "must be a positive number"),
    (["--klines-limit", "abc"], "not an integer"),
])
def test_bad_flags_are_one_line_errors(fast_dir: Path, extra: list[str], expected: str) -> None:
    assert expected in one_line_error(run(base_args(fast_dir, *extra), executor_env()))


def test_missing_params_file(fast_dir: Path) -> None:
    line = one_line_error(run(["--params", str(fast_dir / "nope.json")], executor_env()))
    assert "nope.json" in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_dry_mode_never_sends_an_order_and_serves_metrics(sim_factory: Factory, fast_dir: Path) -> None:
    """SPEC R33: dry trades a paper wallet on public data; the exchange's order log stays empty."""
    sim = sim_factory(make_candles(800, seed=2), clock="speed", speed=10.0, start=100)
    port = _free_port()
    env = executor_env(sim)
    del env["BINANCE_KEY"], env["BINANCE_SECRET"]  # dry needs no keys
    args = ["--params", str(write_params(fast_dir, ttl_sec=0.1, poll_sec=0.05)), "--state", str(fast_dir / "state.json"),
            "--mode", "dry", "--max-bars", "80", "--metrics-port", str(port), "--metrics-addr", "127.0.0.1"]
    proc = subprocess.Popen(executor_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = health = ""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            status, body = _get(f"http://127.0.0.1:{port}/metrics")
            if "ethbtc_bar_decisions_total" in body and 'reason="trade"} 0' not in body:
                metrics = body
                _, health = _get(f"http://127.0.0.1:{port}/health")
        except OSError:
            pass
        time.sleep(0.2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert sim.order_log == [] and sim.ledger() == []
    fills = pd.read_csv(fast_dir / "trades_log.csv")
    assert len(fills) > 0
    assert 'ethbtc_build_info{interval="15m",mode="dry",symbol="ETHBTC"' in metrics
    assert "ethbtc_fills_total" in metrics and "ethbtc_api_request_duration_seconds_count" in metrics
    assert json.loads(health)["mode"] == "dry"
    assert "PnL" in out and out.strip().splitlines()[-1].startswith("session (dry, ETHBTC): 80 bars acted on")
    state = StateStore(fast_dir / "state.json").load()
    assert state is not None and state.session_start_w == 1.0 and state.paper is not None


def test_second_instance_is_refused_and_sigterm_exits_cleanly(sim: SimServer, fast_dir: Path) -> None:
    args = base_args(fast_dir, "--mode", "testnet", "--poll-sec", "0.1")
    first = subprocess.Popen(executor_cmd(*args), env=executor_env(sim), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (fast_dir / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (fast_dir / "state.json").exists()
        line = one_line_error(run(args, executor_env(sim)))
        assert f"PID {first.pid}" in line and "another executor" in line
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    assert "session (testnet, ETHBTC)" in out
    assert StateStore(fast_dir / "state.json").load() is not None


def test_sigterm_cancels_the_resting_order_and_saves(sim: SimServer, fast_dir: Path) -> None:
    """The market stands still (manual clock), so the post-only order rests until SIGTERM."""
    args = ["--params", str(write_params(fast_dir, ttl_sec=600.0, poll_sec=0.05)), "--state", str(fast_dir / "state.json"),
            "--mode", "testnet", "--metrics-port", "0"]
    proc = subprocess.Popen(executor_cmd(*args), env=executor_env(sim), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not sim.engine.open:
            sim.advance(1)
            time.sleep(0.4)
        assert sim.engine.open, "no order was placed"
        resting = next(iter(sim.engine.open.values())).client_order_id
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert not sim.engine.open and sim.engine.orders[sim.engine.by_client_id[resting]].status == "CANCELED"
    assert not any(o.client_order_id.endswith("M0") for o in sim.engine.orders.values())  # no fallback on stop
    state = StateStore(fast_dir / "state.json").load()
    assert state is not None and state.pending is None and state.open_order_ids == []


def test_no_secret_in_any_output(sim: SimServer, fast_dir: Path) -> None:
    """Keys only from the environment; logs (text and JSON, -vv), state, ledger, journal never carry them."""
    outputs = []
    for flags in (["-vv"], ["-vv", "--log-json"]):
        for _ in range(3):
            sim.advance(1)
        proc = run(base_args(fast_dir, "--mode", "testnet", "--once", *flags), executor_env(sim))
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs += [proc.stdout, proc.stderr]
    bad = run(base_args(fast_dir, "--mode", "testnet", "--once", "-vv"), executor_env(sim, BINANCE_SECRET="x" + SECRET))
    outputs += [bad.stdout, bad.stderr]
    outputs += [p.read_text() for p in fast_dir.iterdir() if p.is_file()]
    blob = "\n".join(outputs)
    assert "DEBUG" in blob and "{" in blob  # the verbose and JSON runs did log
    assert KEY not in blob and SECRET not in blob and "signature=" not in blob.replace("signature=***", "")


def test_dotenv_is_read_before_flags(fast_dir: Path) -> None:
    dotenv = fast_dir / "bot.env"
    dotenv.write_text("MODE=live\nBINANCE_BASE_URL=https://testnet.binance.vision\nBINANCE_KEY=k\nBINANCE_SECRET=s\n")
    env = executor_env(DOTENV_PATH=str(dotenv))
    for name in ("BINANCE_KEY", "BINANCE_SECRET"):
        env.pop(name)
    assert "live refuses" in one_line_error(run(base_args(fast_dir), env))  # MODE and URL came from the file
    assert "testnet refuses" in one_line_error(run(base_args(fast_dir, "--mode", "testnet"),
                                                   env | {"BINANCE_BASE_URL": "https://api.binance.com"}))


def test_an_interval_the_exchange_does_not_serve_is_refused_at_start(sim: SimServer, fast_dir: Path) -> None:
    params = write_params(fast_dir, bar_interval_minutes=60)  # the simulator replays 15m candles
    line = one_line_error(run(["--params", str(params), "--state", str(fast_dir / "state.json"), "--mode", "testnet",
                               "--metrics-port", "0", "--once"], executor_env(sim)))
    assert "ETHBTC 1h" in line and "-1120" in line
    assert not (fast_dir / "state.json").exists()
