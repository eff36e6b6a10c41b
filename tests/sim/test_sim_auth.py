"""Paper exchange authentication: API key (-2015), HMAC signature (-1022), timestamp/recvWindow (-1021)."""

from __future__ import annotations

import time

import pytest
import requests
from binance.error import ClientError

from ethbtc.sim.auth import sign, signed_payload
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET, spot_client


def client_error(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def test_wrong_or_missing_api_key_is_401_minus_2015(sim) -> None:
    err = client_error(spot_client(sim, key="not-the-key").account)
    assert (err.status_code, err.error_code) == (401, -2015)
    reply = requests.get(f"{sim.base_url}/api/v3/account", params={"timestamp": int(time.time() * 1000)}, timeout=5)
    assert reply.status_code == 401 and reply.json()["code"] == -2015


def test_wrong_secret_is_minus_1022(sim) -> None:
    err = client_error(spot_client(sim, secret="not-the-secret").account)
    assert (err.status_code, err.error_code, err.error_message) == (
        400, -1022, "Signature for this request is not valid.")


def test_tampered_query_is_minus_1022_and_a_hand_signed_one_passes(sim) -> None:
    ts = int(time.time() * 1000)
    query = f"symbol=ETHBTC&side=BUY&type=MARKET&quantity=0.1&timestamp={ts}"
    sig = sign(SIM_SECRET, query)
    headers = {"X-MBX-APIKEY": SIM_KEY}
    tampered = requests.post(f"{sim.base_url}/api/v3/order?{query.replace('0.1', '0.2')}&signature={sig}",
                             headers=headers, timeout=5)
    assert tampered.status_code == 400 and tampered.json()["code"] == -1022
    ok = requests.post(f"{sim.base_url}/api/v3/order?{query}&signature={sig}", headers=headers, timeout=5)
    assert ok.status_code == 200 and ok.json()["executedQty"] == "0.10000000"
    # Binance also accepts parameters in a form body: totalParams = query string + body
    body = f"symbol=ETHBTC&side=BUY&type=MARKET&quantity=0.1&timestamp={ts + 1}"
    in_body = requests.post(f"{sim.base_url}/api/v3/order", data=f"{body}&signature={sign(SIM_SECRET, body)}",
                            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert in_body.status_code == 200, in_body.text
    assert signed_payload("a=1&signature=x", "b=2") == "a=1b=2"


def test_missing_timestamp_or_signature_is_minus_1102(sim) -> None:
    headers = {"X-MBX-APIKEY": SIM_KEY}
    reply = requests.get(f"{sim.base_url}/api/v3/account", headers=headers, timeout=5)
    assert reply.json()["code"] == -1102 and "timestamp" in reply.json()["msg"]
    reply = requests.get(f"{sim.base_url}/api/v3/account", params={"timestamp": int(time.time() * 1000)},
                         headers=headers, timeout=5)
    assert reply.json()["code"] == -1102 and "signature" in reply.json()["msg"]


def signed_get(sim, path: str, ts: int, recv_window: int | None = None) -> requests.Response:
    query = f"timestamp={ts}" + (f"&recvWindow={recv_window}" if recv_window is not None else "")
    return requests.get(f"{sim.base_url}{path}?{query}&signature={sign(SIM_SECRET, query)}",
                        headers={"X-MBX-APIKEY": SIM_KEY}, timeout=5)


def test_timestamp_outside_recv_window_is_minus_1021(sim) -> None:
    now = int(time.time() * 1000)
    old = signed_get(sim, "/api/v3/account", now - 10_000)
    assert old.status_code == 400 and old.json() == {
        "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    assert signed_get(sim, "/api/v3/account", now - 10_000, recv_window=30_000).status_code == 200
    ahead = signed_get(sim, "/api/v3/account", now + 5_000)
    assert ahead.json()["code"] == -1021 and "ahead" in ahead.json()["msg"]
    assert signed_get(sim, "/api/v3/account", now, recv_window=70_000).json()["code"] == -1131


def test_server_clock_skew_makes_the_connector_fail_with_minus_1021(sim, sim_client) -> None:
    sim.set_faults(time_skew_ms=20_000)
    assert sim_client.time()["serverTime"] - sim.exchange_ms() > 15_000  # serverTime = exchange clock + skew
    err = client_error(sim_client.account)
    assert err.error_code == -1021
    assert sim_client.account(recvWindow=59_000)["canTrade"] is True
    sim.set_faults(time_skew_ms=-5_000)
    assert client_error(sim_client.account).error_code == -1021
    sim.set_faults()
    assert sim_client.account()["canTrade"] is True


def test_public_endpoints_need_no_key(sim) -> None:
    reply = requests.get(f"{sim.base_url}/api/v3/ticker/price", params={"symbol": "ETHBTC"}, timeout=5)
    assert reply.status_code == 200 and reply.json()["symbol"] == "ETHBTC"
