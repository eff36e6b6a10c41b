"""Paper exchange /sim control endpoints and the ``python -m ethbtc.sim`` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from binance.error import ClientError

from ethbtc.sim.server import is_local
from tests.support.sim_fixtures import make_candles

ROOT = Path(__file__).resolve().parents[2]


def test_advance_and_state(sim, sim_candles) -> None:
    state = requests.get(f"{sim.base_url}/sim/state", timeout=5).json()
    assert (state["barIndex"], state["barFraction"], state["clock"]["mode"]) == (200, 0.0, "manual")
    assert state["marketTime"] == int(sim_candles.index[200].value // 1_000_000)
    assert state["balances"]["BTC"] == {"free": "1.00000000", "locked": "0.00000000"}
    after = requests.post(f"{sim.base_url}/sim/advance", json={"bars": 3}, timeout=5).json()
    assert after["barIndex"] == 203
    assert requests.post(f"{sim.base_url}/sim/advance?bars=0.5", timeout=5).json()["barFraction"] == 0.5
    assert requests.post(f"{sim.base_url}/sim/advance", timeout=5).json()["barIndex"] == 204
    end = requests.post(f"{sim.base_url}/sim/advance", json={"bars": 10_000}, timeout=5).json()
    assert end["finished"] is True and end["barIndex"] == len(sim_candles) - 1
    bad = requests.post(f"{sim.base_url}/sim/advance", json={"bars": -1}, timeout=5)
    assert bad.status_code == 400 and set(bad.json()) == {"code", "msg"}
    assert requests.get(f"{sim.base_url}/sim/nothing", timeout=5).status_code == 404
    for junk in ("[" * 100_000, "{oops", "[1, 2]"):  # deep nesting overflows json's recursion
        bad = requests.post(f"{sim.base_url}/sim/faults", data=junk, timeout=5)
        assert bad.status_code == 400 and bad.json()["code"] == -1000, bad.text


def test_ledger_and_order_log(sim, sim_client) -> None:
    sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.2", newClientOrderId="m1")
    with pytest.raises(ClientError):
        sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="1000")
    bid = float(sim_client.book_ticker("ETHBTC")["bidPrice"])
    resting = sim_client.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price=f"{bid:.5f}")
    sim_client.cancel_order("ETHBTC", orderId=resting["orderId"])
    ledger = requests.get(f"{sim.base_url}/sim/ledger", timeout=5).json()
    assert [(f["clientOrderId"], f["side"], f["qty"], f["isMaker"]) for f in ledger] == [
        ("m1", "BUY", "0.20000000", False)]
    assert set(ledger[0]) >= {"time", "symbol", "side", "orderId", "clientOrderId", "price", "qty", "quoteQty",
                              "commission", "commissionAsset", "isMaker"}
    log = requests.get(f"{sim.base_url}/sim/orders", timeout=5).json()
    assert [(e["method"], e["httpStatus"], e.get("code")) for e in log] == [
        ("POST", 200, None), ("POST", 400, -2010), ("POST", 200, None), ("DELETE", 200, None)]
    assert "signature" not in log[0]["params"] and log[0]["params"]["newClientOrderId"] == "m1"
    assert [e["seq"] for e in log] == [1, 2, 3, 4]


def test_requests_with_bad_signature_are_logged_too(sim) -> None:
    requests.post(f"{sim.base_url}/api/v3/order?symbol=ETHBTC&timestamp=1&signature=00",
                  headers={"X-MBX-APIKEY": "wrong"}, timeout=5)
    (entry,) = sim.order_log
    assert (entry["httpStatus"], entry["code"]) == (401, -2015)


def test_control_endpoints_answer_localhost_only() -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("::ffff:127.0.0.1")
    assert not is_local("192.168.1.20") and not is_local("10.0.0.1") and not is_local("::ffff:10.0.0.1")


def start_cli(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    data = tmp_path / "ethbtc.csv"
    df = make_candles(300).reset_index()
    df["open_time"] = df["open_time"].astype("int64") // 1_000_000
    df.to_csv(data, index=False)
    proc = subprocess.Popen([sys.executable, "-m", "ethbtc.sim", "--data", str(data), "--port", "0", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line + proc.stderr.read()
    return proc, line.split()[-1]


def test_cli_serves_until_sigterm_and_writes_the_ledger(tmp_path) -> None:
    ledger = tmp_path / "out" / "ledger.json"
    proc, url = start_cli(tmp_path, "--manual", "--btc", "0.5", "--api-key", "k", "--api-secret", "sup3r-s3cret",
                          "--start", "2021-03-02", "--ledger-out", str(ledger))
    try:
        from binance.spot import Spot

        client = Spot(api_key="k", api_secret="sup3r-s3cret", base_url=url, timeout=5)
        assert client.klines("ETHBTC", "15m", limit=1)[0][0] == 1614643200000  # 2021-03-02 00:00 UTC
        client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.5")
        assert requests.get(f"{url}/sim/state", timeout=5).json()["clock"]["mode"] == "manual"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped: 1 fills" in out and "Traceback" not in err
    assert json.loads(ledger.read_text())[0]["qty"] == "0.50000000"
    assert "sup3r-s3cret" not in out + err  # the secret is never printed


def test_cli_speed_mode_moves_the_market_by_itself(tmp_path) -> None:
    proc, url = start_cli(tmp_path, "--speed", "50", "--start", "10")
    try:
        first = requests.get(f"{url}/sim/state", timeout=5).json()["marketTime"]
        time.sleep(0.3)
        assert requests.get(f"{url}/sim/state", timeout=5).json()["marketTime"] > first
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "missing.csv"], "not found"),
    (["--data", "{data}", "--interval", "1h"], "interval"),
    (["--data", "{data}", "--pay-fees-in-bnb"], "BNB price"),
    (["--data", "{data}", "--start", "2030-01-01"], "after the end"),
    (["--data", "{data}", "--partial-fill", "2"], "partial-fill"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, message) -> None:
    data = tmp_path / "c.csv"
    make_candles(50).reset_index().to_csv(data, index=False)
    argv = [a.replace("{data}", str(data)) for a in args]
    run = subprocess.run([sys.executable, "-m", "ethbtc.sim", "--port", "0", *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2
    assert run.stderr.startswith("error:") and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_cli_help() -> None:
    run = subprocess.run([sys.executable, "-m", "ethbtc.sim", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and "--data" in run.stdout and "--fault-drop" in run.stdout
