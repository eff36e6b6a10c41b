"""Paper exchange endpoints driven through binance-connector over real HTTP (issue 5)."""

from __future__ import annotations

import socket
import struct
import time

import pytest
import requests
from binance.error import ClientError

from tests.support.sim_fixtures import SIM_KEY, bars, spot_client


def error_of(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def test_time_and_ping(sim_client) -> None:
    assert sim_client.ping() == {}
    server = sim_client.time()["serverTime"]
    assert isinstance(server, int) and server > 1_600_000_000_000


def test_exchange_info_has_realistic_ethbtc_filters(sim_client) -> None:
    info = sim_client.exchange_info(symbol="ETHBTC")
    (sym,) = info["symbols"]
    assert (sym["symbol"], sym["baseAsset"], sym["quoteAsset"], sym["status"]) == ("ETHBTC", "ETH", "BTC", "TRADING")
    assert {"LIMIT", "LIMIT_MAKER", "MARKET"} <= set(sym["orderTypes"])
    f = {x["filterType"]: x for x in sym["filters"]}
    assert f["PRICE_FILTER"]["tickSize"] == "0.00001000"
    assert (f["LOT_SIZE"]["stepSize"], f["LOT_SIZE"]["minQty"]) == ("0.00010000", "0.00010000")
    assert f["NOTIONAL"]["minNotional"] == "0.00010000" and f["NOTIONAL"]["applyMinToMarket"] is True
    assert "MARKET_LOT_SIZE" in f and f["MAX_NUM_ORDERS"]["maxNumOrders"] == 200
    assert sim_client.exchange_info()["symbols"][0]["symbol"] == "ETHBTC"
    assert error_of(sim_client.exchange_info, symbol="BTCUSDT").error_code == -1121


def test_exchange_info_refuses_malformed_symbols_lists(sim) -> None:
    for junk in ("[" * 20_000, "ETHBTC", '[1]'):
        r = requests.get(f"{sim.base_url}/api/v3/exchangeInfo", params={"symbols": junk}, timeout=5)
        assert r.status_code == 400 and r.json()["code"] == -1100, r.text


def test_exchange_info_filters_are_configurable(sim_factory) -> None:
    from decimal import Decimal

    from ethbtc.sim import SymbolRules

    sim = sim_factory(rules=SymbolRules(tick_size=Decimal("0.000001"), max_num_orders=5))
    f = {x["filterType"]: x for x in spot_client(sim).exchange_info()["symbols"][0]["filters"]}
    assert f["PRICE_FILTER"]["tickSize"] == "0.00000100" and f["MAX_NUM_ORDERS"]["maxNumOrders"] == 5


def test_klines_are_the_history_with_real_open_times_and_the_open_bar_last(sim, sim_client, sim_candles) -> None:
    rows = sim_client.klines("ETHBTC", "15m")
    assert len(rows) == 201  # bars 0..200, the manual clock sits at the open of bar 200
    assert all(len(r) == 12 for r in rows)
    times = [int(t.value // 1_000_000) for t in sim_candles.index[:201]]
    assert [r[0] for r in rows] == times
    assert rows[0][1:5] == [f"{sim_candles.iloc[0][c]:.8f}" for c in ("open", "high", "low", "close")]
    last = rows[-1]
    assert last[1] == last[2] == last[3] == last[4] == f"{sim_candles.iloc[200]['open']:.8f}"
    assert last[6] == times[-1] + 15 * 60_000 - 1
    sim.advance(3)
    assert sim_client.klines("ETHBTC", "15m", limit=1)[0][0] == times[-1] + 3 * 900_000
    window = sim_client.klines("ETHBTC", "15m", startTime=times[10], endTime=times[19])
    assert [r[0] for r in window] == times[10:20]
    assert [r[0] for r in sim_client.klines("ETHBTC", "15m", startTime=times[10], limit=3)] == times[10:13]
    assert [r[0] for r in sim_client.klines("ETHBTC", "15m", endTime=times[10], limit=3)] == times[8:11]
    assert len(sim_client.klines("ETHBTC", "15m", limit=1000)) == 204


def test_klines_errors(sim_client) -> None:
    assert error_of(sim_client.klines, "ETHBTC", "1h").error_code == -1120
    assert error_of(sim_client.klines, "ETHBTC", "15m", limit=1001).error_code == -1130
    assert error_of(sim_client.klines, "ETHBTC", "15m", limit=0).error_code == -1130
    assert error_of(sim_client.klines, "BNBBTC", "15m").error_code == -1121


def test_book_ticker_and_price_follow_the_replayed_market(sim, sim_client, sim_candles) -> None:
    book = sim_client.book_ticker("ETHBTC")
    price = sim_client.ticker_price("ETHBTC")
    opened = sim_candles.iloc[200]["open"]
    assert float(book["bidPrice"]) <= opened < float(book["askPrice"])
    assert round(float(book["askPrice"]) - float(book["bidPrice"]), 8) == 0.00001
    assert float(price["price"]) == pytest.approx(opened)
    assert float(book["bidQty"]) > 0 and float(book["askQty"]) > 0
    sim.advance(1)
    assert float(sim_client.ticker_price("ETHBTC")["price"]) == pytest.approx(sim_candles.iloc[201]["open"])
    assert sim_client.book_ticker()[0]["symbol"] == "ETHBTC"  # no symbol: a list, like Binance
    assert sim_client.ticker_price(symbols=["ETHBTC"])[0]["symbol"] == "ETHBTC"
    assert error_of(sim_client.book_ticker, "XRPBTC").error_code == -1121
    # rest-api.md "Current average price": the 5-minute weighted average, here the last third of
    # bar 200's path (its second knot -> close, one leg at one volume rate: the leg's midpoint)
    avg = sim_client.avg_price("ETHBTC")
    b = sim_candles.iloc[200].map(lambda x: round(x / 0.00001) * 0.00001)
    second = b["high"] if b["close"] >= b["open"] else b["low"]  # up bar: open -> low -> high -> close
    assert avg["mins"] == 5 and float(avg["price"]) == pytest.approx((second + b["close"]) / 2, abs=1e-8)


def test_spread_is_configurable(sim_factory) -> None:
    sim = sim_factory(bars([(0.05, 0.0501, 0.0499, 0.05)] * 4), start=1, spread_bps=20)
    book = spot_client(sim).book_ticker("ETHBTC")
    assert (book["bidPrice"], book["askPrice"]) == ("0.04995000", "0.05005000")


def test_account_shows_balances_and_commission_rates(sim_factory) -> None:
    sim = sim_factory(balances={"BTC": "0.75", "ETH": "2.5", "BNB": "0.1"}, maker_fee="0.00075", taker_fee="0.001")
    acct = spot_client(sim).account()
    bal = {b["asset"]: (b["free"], b["locked"]) for b in acct["balances"]}
    assert bal == {"BTC": ("0.75000000", "0.00000000"), "ETH": ("2.50000000", "0.00000000"),
                   "BNB": ("0.10000000", "0.00000000")}
    assert acct["commissionRates"]["maker"] == "0.00075000" and acct["commissionRates"]["taker"] == "0.00100000"
    assert (acct["makerCommission"], acct["takerCommission"]) == (7, 10)
    assert acct["canTrade"] is True and acct["accountType"] == "SPOT"


def test_order_endpoints_round_trip(sim, sim_client) -> None:
    book = sim_client.book_ticker("ETHBTC")
    below = f"{float(book['bidPrice']) - 0.0005:.5f}"
    placed = sim_client.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price=below,
                                  newClientOrderId="bar-1-buy")
    assert set(placed) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}  # ACK default
    by_id = sim_client.get_order("ETHBTC", orderId=placed["orderId"])
    by_client = sim_client.get_order("ETHBTC", origClientOrderId="bar-1-buy")
    assert by_id == by_client and by_id["status"] == "NEW" and by_id["price"] == f"{float(below):.8f}"
    assert [o["orderId"] for o in sim_client.get_open_orders("ETHBTC")] == [placed["orderId"]]
    assert sim_client.get_open_orders()[0]["clientOrderId"] == "bar-1-buy"
    second = sim_client.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price=below)
    cancelled = sim_client.cancel_order("ETHBTC", orderId=second["orderId"])
    assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == second["clientOrderId"]
    all_cancelled = sim_client.cancel_open_orders("ETHBTC")
    assert [o["orderId"] for o in all_cancelled] == [placed["orderId"]]
    assert sim_client.get_open_orders("ETHBTC") == []
    assert [o["status"] for o in sim_client.get_orders("ETHBTC")] == ["CANCELED", "CANCELED"]
    market = sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.2")
    trades = sim_client.my_trades("ETHBTC")
    assert [t["orderId"] for t in trades] == [market["orderId"]]
    t = trades[0]
    assert (t["isBuyer"], t["isMaker"], t["qty"]) == (True, False, "0.20000000")
    assert sim_client.my_trades("ETHBTC", orderId=placed["orderId"]) == []
    assert sim_client.my_trades("ETHBTC", fromId=t["id"] + 1) == []


def test_new_order_response_types(sim_client) -> None:
    ack = sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.01", newOrderRespType="ACK")
    result = sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.01", newOrderRespType="RESULT")
    full = sim_client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.01")
    assert "status" not in ack and "fills" not in result and result["status"] == "FILLED"
    assert full["status"] == "FILLED" and len(full["fills"]) == 1
    assert set(full["fills"][0]) == {"price", "qty", "commission", "commissionAsset", "tradeId"}
    assert all(isinstance(full[k], str) for k in ("origQty", "executedQty", "cummulativeQuoteQty", "price"))


def test_bnb_burn_status_and_toggle(sim_client) -> None:
    assert sim_client.bnbBurn_status()["spotBNBBurn"] is False
    assert sim_client.toggle_bnbBurn(spotBNBBurn="true")["spotBNBBurn"] is True
    assert sim_client.bnbBurn_status()["spotBNBBurn"] is True


def test_unknown_endpoint_is_a_4xx_with_code_and_msg(sim) -> None:
    reply = requests.get(f"{sim.base_url}/api/v3/historicalTrades", params={"symbol": "ETHBTC"},
                         headers={"X-MBX-APIKEY": SIM_KEY}, timeout=5)
    assert reply.status_code == 404 and set(reply.json()) == {"code", "msg"}


def test_a_client_reset_mid_request_is_quiet_and_the_server_keeps_serving(sim, sim_client, capfd) -> None:
    """A killed executor resets its connection mid-request: no traceback noise on stderr."""
    host, port = sim.base_url.removeprefix("http://").split(":")
    for _ in range(3):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /api/v3/time HTTP/1.1\r\nHost: x\r\nX-Half: ")  # headers never finished
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        s.close()
    time.sleep(0.3)
    assert sim_client.time()["serverTime"] > 0
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err
