"""seed_testnet_order.py against the paper exchange, and its refusal of mainnet URLs (issue 5)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

import seed_testnet_order
from ethbtc.cli import run_main
from ethbtc.endpoints import classify_base_url
from ethbtc.errors import UserError
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "seed_testnet_order.py"


def run_script(tmp_path: Path, base_url: str, *args: str, key: str = SIM_KEY) -> subprocess.CompletedProcess:
    dotenv = tmp_path / "seed.env"
    dotenv.write_text(f"BINANCE_KEY={key}\nBINANCE_SECRET={SIM_SECRET}\nBINANCE_BASE_URL={base_url}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    env.update(DOTENV_PATH=str(dotenv), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_buys_half_an_eth_on_the_simulator_and_prints_fills_and_balances(sim, tmp_path) -> None:
    run = run_script(tmp_path, sim.base_url, "--side", "BUY", "--qty", "0.5")
    assert run.returncode == 0, run.stderr
    (fill,) = sim.ledger()
    assert (fill["side"], fill["qty"], fill["isMaker"]) == ("BUY", "0.50000000", False)
    balances = sim.engine.balances()
    assert balances["ETH"] == (D("0.5") - D(fill["commission"]), D(0))
    assert balances["BTC"] == (D("1") - D(fill["quoteQty"]), D(0))
    out = run.stdout
    assert "FILLED" in out and f"fill 0.50000000 @ {fill['price']}" in out
    assert f"ETH   free {balances['ETH'][0]:.8f}" in out and f"BTC   free {balances['BTC'][0]:.8f}" in out
    assert SIM_SECRET not in out + run.stderr


def test_sells_by_quote_quantity(sim_factory, tmp_path) -> None:
    sim = sim_factory(balances={"BTC": "0", "ETH": "1"})
    run = run_script(tmp_path, sim.base_url, "--side", "sell", "--quote-qty", "0.01")
    assert run.returncode == 0, run.stderr
    (fill,) = sim.ledger()
    assert fill["side"] == "SELL" and D("0.0099") < D(fill["quoteQty"]) <= D("0.01")


def test_exchange_rejection_is_one_line(sim, tmp_path) -> None:
    run = run_script(tmp_path, sim.base_url, "--side", "BUY", "--qty", "1000")
    assert run.returncode == 2
    assert run.stderr.strip() == "error: exchange rejected the request: -2010 Account has insufficient balance " \
                                 "for requested action."
    wrong_key = run_script(tmp_path, sim.base_url, "--side", "BUY", "--qty", "0.5", key="nope")
    assert wrong_key.returncode == 2 and "-2015" in wrong_key.stderr


def test_credentials_in_the_base_url_are_refused_without_echoing_them(sim, tmp_path) -> None:
    """Secrets come from BINANCE_KEY/BINANCE_SECRET only; a user:password@ URL is an error that
    never prints the password (the report line names the base URL on success)."""
    url = sim.base_url.replace("http://", "http://me:s3cret-pass@")
    run = run_script(tmp_path, url, "--side", "BUY", "--qty", "0.5")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "must not carry credentials" in run.stderr
    assert "s3cret" not in run.stdout + run.stderr and not sim.ledger()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("url", ["https://api.binance.com", "https://api3.binance.com/", "https://api-gcp.binance.com",
                                 "https://api.binance.us", "HTTPS://API.BINANCE.COM:443"])
def test_refuses_mainnet_without_touching_the_network(no_network, monkeypatch, capsys, tmp_path, url) -> None:
    monkeypatch.setenv("DOTENV_PATH", str(tmp_path / "absent.env"))
    monkeypatch.setenv("BINANCE_BASE_URL", url)
    monkeypatch.setenv("BINANCE_KEY", "k")
    monkeypatch.setenv("BINANCE_SECRET", "very-secret")
    rc = run_main(seed_testnet_order.main, ["--side", "BUY", "--qty", "0.5"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: refusing to trade on mainnet") and err.count("\n") == 1
    assert "very-secret" not in err


def test_refuses_unknown_hosts_and_missing_keys(no_network, monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("DOTENV_PATH", str(tmp_path / "absent.env"))
    for name in ("BINANCE_KEY", "BINANCE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BINANCE_BASE_URL", "https://exchange.example.com")
    assert run_main(seed_testnet_order.main, ["--side", "BUY", "--qty", "0.5"]) == 2
    assert "refusing unknown exchange URL" in capsys.readouterr().err
    monkeypatch.setenv("BINANCE_BASE_URL", "http://127.0.0.1:9")
    assert run_main(seed_testnet_order.main, ["--side", "BUY", "--qty", "0.5"]) == 2
    assert "BINANCE_KEY and BINANCE_SECRET must be set" in capsys.readouterr().err
    for bad in (["--side", "BUY", "--qty", "-1"], ["--side", "BUY"], ["--side", "HOLD", "--qty", "1"]):
        with pytest.raises(SystemExit) as info:
            seed_testnet_order.main(bad)
        assert info.value.code == 2


def test_classify_base_url() -> None:
    assert classify_base_url("https://testnet.binance.vision") == "testnet"
    assert classify_base_url("https://api.binance.com/api") == "mainnet"
    assert classify_base_url("https://fapi.binance.com") == "mainnet"
    assert classify_base_url("https://data-api.binance.vision") == "mainnet"
    assert classify_base_url("http://127.0.0.1:8765") == "local"
    assert classify_base_url("http://localhost:8765") == "local"
    assert classify_base_url("http://[::1]:8765") == "local"
    assert classify_base_url("https://notbinance.com.example.org") == "unknown"
    assert classify_base_url("https://evilbinance.com") == "unknown"
    with pytest.raises(UserError):
        classify_base_url("api.binance.com")
    for with_credentials in ("http://k:s3cret-pass@127.0.0.1:1", "https://s3cret-pass@testnet.binance.vision"):
        with pytest.raises(UserError, match="must not carry credentials") as err:
            classify_base_url(with_credentials)
        assert "s3cret" not in str(err.value)
