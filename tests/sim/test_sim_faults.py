"""Paper exchange fault injection, seen as binance-connector's own exceptions over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests
from binance.error import ClientError, ServerError

from tests.support.sim_fixtures import spot_client


def test_5xx_is_a_server_error_and_can_target_endpoints(sim, sim_client) -> None:
    sim.set_faults(error_5xx=1.0, endpoints=["/api/v3/order"])
    with pytest.raises(ServerError) as info:
        sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1")
    assert info.value.status_code == 503
    assert sim_client.time()["serverTime"] > 0  # other endpoints are untouched
    assert sim_client.get_orders("ETHBTC") == []  # a plain 5xx did not execute anything
    (entry,) = sim.order_log  # the order log shows faulted requests too
    assert (entry["httpStatus"], entry["fault"], entry["code"]) == (503, "error_5xx", -1001)
    sim.set_faults(error_5xx=1.0, status_5xx=500)
    with pytest.raises(ServerError) as info:
        sim_client.time()
    assert info.value.status_code == 500


def test_5xx_after_executing_leaves_the_outcome_unknown_to_the_client(sim, sim_client) -> None:
    sim.set_faults(error_5xx=1.0, error_5xx_executes=True, endpoints=["/api/v3/order"])
    with pytest.raises(ServerError):
        sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1", newClientOrderId="maybe")
    sim.set_faults()
    assert sim_client.get_order("ETHBTC", origClientOrderId="maybe")["status"] == "FILLED"


@pytest.mark.parametrize(("fault", "status"), [("rate_limit_429", 429), ("ban_418", 418)])
def test_rate_limit_and_ban_carry_retry_after(sim, sim_client, fault, status) -> None:
    sim.set_faults(**{fault: 1.0}, retry_after=7)
    with pytest.raises(ClientError) as info:
        sim_client.account()
    err = info.value
    assert (err.status_code, err.error_code) == (status, -1003)
    assert err.header["Retry-After"] == "7"


def test_delay_past_the_client_timeout_still_executes_the_order(sim) -> None:
    impatient = spot_client(sim, timeout=0.3)
    sim.set_faults(delay=1.0, delay_seconds=1.0, endpoints=["/api/v3/order"])
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1", newClientOrderId="slow-1")
    sim.set_faults()
    client = spot_client(sim)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert client.get_order("ETHBTC", origClientOrderId="slow-1")["status"] == "FILLED"
            break
        except ClientError as exc:
            assert exc.error_code == -2013 and time.monotonic() < deadline
            time.sleep(0.1)


def test_dropped_connection_after_the_order_executed(sim, sim_client) -> None:
    sim.set_faults(drop_after_order=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1", newClientOrderId="lost-reply")
    assert sim_client.get_order("ETHBTC", origClientOrderId="lost-reply")["status"] == "FILLED"  # GETs unaffected
    (entry,) = sim.order_log
    assert entry["fault"] == "drop_after_order" and entry["params"]["newClientOrderId"] == "lost-reply"
    assert len(sim.ledger()) == 1
    rejected = sim_client.new_order  # a rejected order is not executed, so nothing is dropped
    with pytest.raises(ClientError):
        rejected("ETHBTC", "BUY", "MARKET", quantity="1000")


def test_shares_are_reproducible_with_a_seed_and_max_faults_caps_them(sim, sim_client) -> None:
    def pattern() -> list[bool]:
        out = []
        for _ in range(30):
            try:
                sim_client.ping()
                out.append(False)
            except ServerError:
                out.append(True)
        return out

    sim.set_faults(error_5xx=0.5, seed=11)
    first = pattern()
    sim.set_faults(error_5xx=0.5, seed=11)
    assert pattern() == first and 5 < sum(first) < 25
    sim.set_faults(error_5xx=1.0, max_faults=2)
    assert pattern() == [True, True] + [False] * 28


def test_fault_control_endpoint(sim) -> None:
    url = f"{sim.base_url}/sim/faults"
    reply = requests.post(url, json={"rate_limit_429": 1.0, "retry_after": 2}, timeout=5)
    assert reply.status_code == 200 and reply.json()["config"]["rate_limit_429"] == 1.0
    assert requests.get(f"{sim.base_url}/api/v3/ping", timeout=5).status_code == 429
    assert requests.get(f"{sim.base_url}/sim/state", timeout=5).status_code == 200  # control is never faulted
    assert requests.get(url, timeout=5).json()["injected"] == {"rate_limit_429": 1}
    bad = requests.post(url, json={"error_500": 1.0}, timeout=5)
    assert bad.status_code == 400 and "error_500" in bad.json()["msg"]
    for bad_setting in ({"delay": 2}, {"max_faults": "x"}, {"retry_after": -1}, {"seed": 1.5}, {"endpoints": "/api"}):
        assert requests.post(url, json=bad_setting, timeout=5).status_code == 400, bad_setting
    assert requests.post(url, json={}, timeout=5).json()["config"]["rate_limit_429"] == 0
    assert requests.get(f"{sim.base_url}/api/v3/ping", timeout=5).status_code == 200
