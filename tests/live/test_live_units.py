"""Live executor building blocks without an exchange: filters, client ids, state file, ledger, lock, modes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ethbtc.errors import UserError
from ethbtc.kernel import S_MAXDD_HIT, S_PEAK, STATE_NAMES
from ethbtc.live.exchange import Fill, safe_text
from ethbtc.live.filters import SymbolFilters
from ethbtc.live.ledger import DecisionJournal, TradeLedger
from ethbtc.live.lock import InstanceLock
from ethbtc.live.modes import TESTNET_URL, resolve_base_url
from ethbtc.live.orders import bar_of, client_id, id_prefix
from ethbtc.live.state import StateError, StateStore, fresh_state
from ethbtc.sim.rest import CLIENT_ID_RE
from ethbtc.sim.rules import SymbolRules

FILTERS = SymbolFilters.from_exchange_info({"symbols": [SymbolRules().symbol_info()]}, "ETHBTC")


# --- filters (SPEC R32: rounded to tick and step size) ------------------------------------------
def test_filters_are_read_from_exchange_info() -> None:
    f = FILTERS
    assert (f.base, f.quote, f.tick_size, f.step_size, f.min_notional) == (
        "ETH", "BTC", Decimal("0.00001"), Decimal("0.0001"), Decimal("0.0001"))


@given(st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("1"), places=9))
def test_prices_round_to_the_passive_side_of_the_tick(price: Decimal) -> None:
    buy, sell = FILTERS.price_for("BUY", price), FILTERS.price_for("SELL", price)
    assert buy <= price <= sell and sell - buy <= FILTERS.tick_size
    assert buy % FILTERS.tick_size == 0 and sell % FILTERS.tick_size == 0


@given(st.decimals(min_value=Decimal(0), max_value=Decimal("1000"), places=8))
def test_quantities_round_down_to_the_step(qty: Decimal) -> None:
    q = FILTERS.qty(qty)
    assert 0 <= qty - q < FILTERS.step_size and q % FILTERS.step_size == 0


def test_too_small_names_the_filter() -> None:
    assert FILTERS.too_small(Decimal("0"), Decimal("0.05")) == "min_qty"
    assert FILTERS.too_small(Decimal("0.001"), Decimal("0.05")) == "min_notional"  # 0.00005 BTC < 0.0001
    assert FILTERS.too_small(Decimal("0.002"), Decimal("0.05")) is None


# --- client order ids (SPEC R31) ------------------------------------------------------------------
@given(st.integers(min_value=0, max_value=10**13 * 9), st.sampled_from(["BUY", "SELL"]), st.sampled_from("LM"),
       st.integers(0, 9), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=5, max_size=20))
def test_client_ids_are_deterministic_valid_and_carry_the_bar(bar: int, side: str, kind: str, attempt: int,
                                                              symbol: str) -> None:
    cid = client_id(symbol, bar, side, kind, attempt)
    assert cid == client_id(symbol, bar, side, kind, attempt)
    assert CLIENT_ID_RE.match(cid) and len(cid) <= 36
    assert cid.startswith(id_prefix(symbol)) and bar_of(cid) == bar


def test_client_ids_differ_by_bar_side_kind_and_attempt() -> None:
    ids = {client_id("ETHBTC", b, s, k, a) for b in (1, 2) for s in ("BUY", "SELL") for k in "LM" for a in (0, 1)}
    assert len(ids) == 16
    assert bar_of("web_abc123") is None and bar_of("eb-ETHBTC-x-BL0") is None


# --- state file (SPEC R34) ---------------------------------------------------------------------------
def test_state_round_trips_with_nan_slots(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.json")
    assert store.load() is None
    state = fresh_state("testnet", "ETHBTC", "15m", 1.2345)
    arr = state.kernel_array()
    assert math.isnan(arr[S_PEAK])
    arr[S_MAXDD_HIT] = 1.0
    state.set_kernel(arr)
    store.save(state)
    again = store.load()
    assert again is not None and again.session_start_w == 1.2345
    assert again.kernel_array()[S_MAXDD_HIT] == 1.0 and math.isnan(again.kernel_array()[S_PEAK])
    assert set(json.loads((tmp_path / "s.json").read_text())["kernel"]) == set(STATE_NAMES)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"version": 1}', b"\xff\xfe\x00garbage",
                                     b'{"version": 99, "mode": "dry"}',
                                     b"[" * 50_000])
def test_corrupt_state_is_an_error_naming_the_path_and_is_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as err:
        StateStore(path).load()
    assert str(path) in str(err.value) and "never replaced" in str(err.value)
    assert path.read_bytes() == content


def test_state_missing_a_kernel_slot_is_corrupt(tmp_path: Path) -> None:
    state = fresh_state("dry", "ETHBTC", "15m", 1.0)
    data = state.model_dump()
    del data["kernel"]["peak_w"]
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="peak_w"):
        StateStore(path).load()


# --- ledger ---------------------------------------------------------------------------------------------
def _fill(trade_id: int, qty: str = "0.5") -> Fill:
    return Fill(trade_id=trade_id, order_id=7, client_id="eb-ETHBTC-1-BL0", side="BUY", price=Decimal("0.05"),
                qty=Decimal(qty), quote_qty=Decimal("0.025"), commission=Decimal("0.0005"), commission_asset="ETH",
                time=1_600_000_000_000, is_maker=True, order_type="LIMIT_MAKER")


def test_ledger_dedupes_by_trade_id_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    ledger = TradeLedger(path)
    assert ledger.append(_fill(1), 1_599_999_100_000) and not ledger.append(_fill(1), 1_599_999_100_000)
    ledger.close()
    again = TradeLedger(path)
    assert not again.append(_fill(1), None) and again.append(_fill(2), None)
    assert [r["trade_id"] for r in again.rows()] == ["1", "2"]
    assert again.qty_by_order[7] == Decimal("1")


def test_ledger_cuts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    TradeLedger(path).append(_fill(1), None)
    with open(path, "a") as fh:
        fh.write("2026-01-01T00:00:00Z,,BUY,LIMIT_MA")  # power cut mid-row
    ledger = TradeLedger(path)
    assert [r["trade_id"] for r in ledger.rows()] == ["1"]
    assert ledger.append(_fill(2), None)
    assert path.read_text().count("\n") == 3


def test_ledger_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(UserError, match="not a file of this executor"):
        TradeLedger(path)
    with pytest.raises(UserError):
        DecisionJournal(path)


# --- single instance lock (issue 9) ----------------------------------------------------------------------
def test_second_instance_is_refused_with_the_holder_pid(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from ethbtc.live.lock import InstanceLock; "
        "InstanceLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)"), str(state),
        str(Path(__file__).resolve().parents[2])], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError) as err:
            InstanceLock(state).acquire()
        assert f"PID {holder.pid}" in str(err.value) and str(state) in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    InstanceLock(state).acquire().release()  # a killed holder leaves no stale lock


# --- modes (SPEC R33) --------------------------------------------------------------------------------------
def test_modes_refuse_the_wrong_endpoint() -> None:
    assert resolve_base_url("testnet", None) == TESTNET_URL
    assert resolve_base_url("testnet", "http://127.0.0.1:9") == "http://127.0.0.1:9"
    assert resolve_base_url("live", "") == "https://api.binance.com"
    with pytest.raises(UserError, match="live refuses"):
        resolve_base_url("live", TESTNET_URL)
    with pytest.raises(UserError, match="live refuses"):
        resolve_base_url("live", "http://127.0.0.1:8765")
    with pytest.raises(UserError, match="testnet refuses the mainnet URL"):
        resolve_base_url("testnet", "https://api.binance.com")
    assert resolve_base_url("testnet", "https://example.org/") == "https://example.org"  # unknown: not mainnet
    with pytest.raises(UserError, match="expected http"):
        resolve_base_url("dry", "ftp://x")
    with pytest.raises(UserError, match="must not carry credentials") as err:  # and never echoes them
        resolve_base_url("testnet", "http://user:hunter2-secret@127.0.0.1:8765")
    assert "hunter2" not in str(err.value)


def test_safe_text_cuts_signed_query_strings() -> None:
    exc = ConnectionError("Max retries exceeded with url: /api/v3/order?symbol=ETHBTC&timestamp=1&signature=abcdef0123")
    text = safe_text(exc)
    assert "signature" not in text and "abcdef0123" not in text and "/api/v3/order" in text


def test_numpy_state_survives_json(tmp_path: Path) -> None:
    state = fresh_state("dry", "ETHBTC", "15m", 1.0)
    state.set_kernel(np.array([1.0, 1.6e12, 1.1, 0.0, 19000.0, 1.05, 0.0, 3.0]))
    StateStore(tmp_path / "x.json").save(state)
    assert os.path.getsize(tmp_path / "x.json") > 0
    loaded = StateStore(tmp_path / "x.json").load()
    assert loaded is not None and list(loaded.kernel_array()) == [1.0, 1.6e12, 1.1, 0.0, 19000.0, 1.05, 0.0, 3.0]


def test_state_speaks_the_v3_manuals_names_and_editing_the_flag_resets_risk(tmp_path: Path) -> None:
    """Issue 13 / SPEC R34: top-level session_start_W, risk_maxdd_hit (boolean), last_bar_close;
    the manual's "edit risk_maxdd_hit to false" is an operator reset recorded in the event log."""
    path = tmp_path / "state.json"
    store = StateStore(path)
    state = fresh_state("testnet", "ETHBTC", "15m", 0.16)
    arr = state.kernel_array()
    arr[STATE_NAMES.index("risk_maxdd_hit")] = 1.0
    arr[STATE_NAMES.index("peak_w")] = 0.2
    state.set_kernel(arr)
    store.save(state)
    data = json.loads(path.read_text())
    assert data["session_start_W"] == 0.16 and data["risk_maxdd_hit"] is True and "last_bar_close" in data
    assert "session_start_w" not in data
    data["risk_maxdd_hit"] = False  # what the operator does with an editor
    path.write_text(json.dumps(data))
    loaded = store.load()
    assert loaded is not None and loaded.kernel["risk_maxdd_hit"] == 0.0 and loaded.kernel["peak_w"] is None
    assert "risk_maxdd_hit edited to false" in loaded.events[-1]
    store.save(loaded)
    again = store.load()
    assert again is not None and again.risk_maxdd_hit is False and len(again.events) == len(loaded.events)
    data["risk_maxdd_hit"] = "no"
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="risk_maxdd_hit must be true or false"):
        store.load()


def test_version_1_state_files_still_read(tmp_path: Path) -> None:
    state = fresh_state("dry", "ETHBTC", "15m", 1.5)
    state.set_kernel(state.kernel_array())
    old = json.loads(state.model_dump_json())  # field names as version 1 wrote them
    old = {k: v for k, v in old.items() if k != "risk_maxdd_hit"} | {"version": 1}
    old["kernel"]["risk_maxdd_hit"] = 1.0
    assert "session_start_w" in old
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = StateStore(path).load()
    assert loaded is not None and loaded.session_start_w == 1.5 and loaded.version == 2
    assert loaded.kernel["risk_maxdd_hit"] == 1.0  # no top-level flag: nothing was edited, latch kept
    StateStore(path).save(loaded)
    assert json.loads(path.read_text())["risk_maxdd_hit"] is True
