"""The paper exchange against Binance's own documentation, driven by clients the project did not write.

ccxt's ``binance`` class (every API URL pointed at the simulator, so nothing leaves 127.0.0.1)
and binance-connector's ``Spot``. Each case names the section of Binance's Spot API docs it
follows (binance/binance-spot-api-docs: rest-api.md, filters.md, errors.md). Issue 15.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from binance.error import ClientError

from ethbtc.sim import serve_sim
from ethbtc.sim.limits import LimitConfig
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET, make_candles, spot_client

ccxt = pytest.importorskip("ccxt", minversion="4.5")

SYMBOL = "ETH/BTC"
MIN15 = 900_000


def ccxt_client(sim: Any, secret: str = SIM_SECRET) -> Any:
    ex = ccxt.binance({"apiKey": SIM_KEY, "secret": secret, "enableRateLimit": False,
                       "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                                   "fetchCurrencies": False, "fetchMargins": False,
                                   "adjustForTimeDifference": True}})
    # every endpoint family at the simulator: a call ccxt makes that the simulator lacks is a 404 here
    ex.urls["api"] = {k: re.sub(r"^https?://[^/]+", sim.base_url, v) if isinstance(v, str) else v
                      for k, v in ex.urls["api"].items()}
    return ex


@pytest.fixture(scope="module")
def live_sim() -> Any:
    """Real-time replay re-stamped onto the wall clock (the CLI's ``--realtime``)."""
    with serve_sim(make_candles(400, seed=7), balances={"BTC": "3", "ETH": "10"}, api_key=SIM_KEY,
                   api_secret=SIM_SECRET, clock="realtime", start=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def ex(live_sim: Any) -> Any:
    client = ccxt_client(live_sim)
    client.load_markets()
    return client


# -- one time line (rest-api.md "General API Information", "Timing security", "Kline/Candlestick data")
def test_server_time_klines_and_trades_share_the_wall_clock(live_sim: Any, ex: Any) -> None:
    now = int(time.time() * 1000)
    assert abs(ex.fetch_time() - now) < 2_000  # GET /api/v3/time is the wall clock in real-time replay
    since = now - 2 * 3600 * 1000
    bars = ex.fetch_ohlcv(SYMBOL, "15m", since=since)
    assert 8 <= len(bars) <= 9 and bars[0][0] >= since  # two hours of 15m bars, not []
    assert bars[-1][0] == now // MIN15 * MIN15  # the open bar is the current wall-clock bar
    order = ex.create_order(SYMBOL, "market", "buy", 0.5)
    assert abs(order["timestamp"] - now) < 5_000  # transactTime on the same clock
    trades = ex.fetch_my_trades(SYMBOL, since=now - 86_400_000)  # since-queries find today's fills
    assert trades and trades[-1]["order"] == order["id"]


# -- filters.md: every filter Binance lists for ETHBTC
def test_load_markets_sees_every_filter_and_order_type(ex: Any) -> None:
    info = ex.market(SYMBOL)["info"]
    assert {f["filterType"] for f in info["filters"]} == {
        "PRICE_FILTER", "PERCENT_PRICE_BY_SIDE", "LOT_SIZE", "ICEBERG_PARTS", "MARKET_LOT_SIZE", "TRAILING_DELTA",
        "NOTIONAL", "MAX_NUM_ORDERS", "MAX_NUM_ALGO_ORDERS"}
    assert set(info["orderTypes"]) == {"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
    m = ex.market(SYMBOL)
    assert m["precision"]["price"] == 0.00001 and m["limits"]["amount"]["min"] == 0.0001
    assert m["limits"]["cost"]["min"] == 0.0001


def test_prices_lie_on_the_tick_grid(ex: Any) -> None:
    """filters.md PRICE_FILTER: price % tickSize == 0 -- replayed prices too (open bar included)."""
    for bar in ex.fetch_ohlcv(SYMBOL, "15m", limit=50):
        for price in bar[1:5]:
            assert abs(price / 0.00001 - round(price / 0.00001)) < 1e-6
    low = ex.fetch_ohlcv(SYMBOL, "15m", limit=2)[0][3]  # a closed bar's low is an order Binance accepts
    order = ex.create_order(SYMBOL, "limit", "buy", 0.01, low, {"postOnly": True})
    ex.cancel_order(order["id"], SYMBOL)


def test_percent_price_by_side_against_the_five_minute_average(ex: Any) -> None:
    """filters.md PERCENT_PRICE_BY_SIDE; rest-api.md "Current average price" (avgPriceMins 5)."""
    avg = ex.publicGetAvgPrice({"symbol": "ETHBTC"})
    assert avg["mins"] == 5
    ref = float(avg["price"])
    for side, price in (("buy", 0.00100), ("sell", 0.50000)):  # far below / above the average
        with pytest.raises(ccxt.InvalidOrder, match="PERCENT_PRICE_BY_SIDE"):
            ex.create_order(SYMBOL, "limit", side, 0.01, price, {"postOnly": True})
    inside = round(ref * 0.9, 5)  # within bidMultiplierDown 0.2: accepted
    order = ex.create_order(SYMBOL, "limit", "buy", 0.01, inside, {"postOnly": True})
    assert ex.fetch_order(order["id"], SYMBOL)["status"] == "open"
    ex.cancel_order(order["id"], SYMBOL)
    assert ex.fetch_order(order["id"], SYMBOL)["status"] == "canceled"


# -- a book with depth (rest-api.md "Order book", "Symbol order book ticker", "New order" FULL)
def test_order_book_has_finite_depth_and_market_orders_walk_it(ex: Any) -> None:
    book = ex.fetch_order_book(SYMBOL, 20)
    bids, asks = book["bids"], book["asks"]
    assert len(bids) == len(asks) == 20 and bids[0][0] < asks[0][0]
    assert [p for p, _ in asks] == sorted(p for p, _ in asks) and [p for p, _ in bids] == sorted(
        (p for p, _ in bids), reverse=True)
    ticker = ex.fetch_ticker(SYMBOL)  # GET /api/v3/ticker/24hr + bookTicker
    assert ticker["ask"] == asks[0][0] and ticker["askVolume"] == asks[0][1]
    touch, touch_qty = asks[0]
    qty = round(touch_qty * 3, 4)  # three times what the touch offers
    order = ex.create_order(SYMBOL, "market", "buy", qty)
    assert order["status"] == "closed" and order["filled"] == pytest.approx(qty)
    assert len(order["trades"]) >= 2  # several fills in the FULL reply
    assert order["average"] > touch  # a worse average price than the touch
    after = ex.fetch_order_book(SYMBOL, 5)  # the liquidity taken stays taken within the bar
    assert after["asks"][0][0] > touch


# -- errors.md / ccxt's exception classes
def test_errors_map_onto_ccxt_exceptions(live_sim: Any, ex: Any) -> None:
    bid = ex.fetch_order_book(SYMBOL, 5)["bids"][0][0]
    ask = ex.fetch_order_book(SYMBOL, 5)["asks"][0][0]
    with pytest.raises(ccxt.InsufficientFunds):  # -2010 insufficient balance
        ex.create_order(SYMBOL, "limit", "buy", 1000, bid, {"postOnly": True})
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # -2010 LIMIT_MAKER would take
        ex.create_order(SYMBOL, "limit", "buy", 0.01, ask, {"postOnly": True})
    with pytest.raises(ccxt.InvalidOrder):  # -1013 LOT_SIZE
        ex.create_order(SYMBOL, "limit", "buy", 0.00001, bid, {"postOnly": True})
    with pytest.raises(ccxt.OrderNotFound):  # -2013
        ex.fetch_order("999999", SYMBOL)
    with pytest.raises(ccxt.AuthenticationError):  # -1022 bad signature
        bad = ccxt_client(live_sim, secret="not-the-secret")
        bad.markets, bad.markets_by_id, bad.symbols = ex.markets, ex.markets_by_id, ex.symbols
        bad.fetch_balance()


def test_unsimulated_order_types_are_rejected_minus_1116(live_sim: Any) -> None:
    """errors.md -1116 INVALID_ORDER_TYPE: listed in exchangeInfo, not simulated."""
    client = spot_client(live_sim)
    with pytest.raises(ClientError) as err:
        client.new_order("ETHBTC", "SELL", "STOP_LOSS", quantity="0.01", stopPrice="0.01")
    assert err.value.error_code == -1116


def test_order_test_validates_without_placing(live_sim: Any) -> None:
    """rest-api.md "Test new order": validated like a new order, nothing reaches the book."""
    client = spot_client(live_sim)
    before = len(live_sim.engine.orders)
    assert client.new_order_test("ETHBTC", "BUY", "MARKET", quantity="0.01") == {}
    rates = client.new_order_test("ETHBTC", "BUY", "MARKET", quantity="0.01", computeCommissionRates="true")
    assert rates["standardCommissionForOrder"]["taker"] == "0.00100000"
    with pytest.raises(ClientError) as err:
        client.new_order_test("ETHBTC", "BUY", "LIMIT", quantity="0.01", price="0.001", timeInForce="GTC")
    assert err.value.error_message == "Filter failure: PERCENT_PRICE_BY_SIDE"
    assert len(live_sim.engine.orders) == before
    commission = client.sign_request("GET", "/api/v3/account/commission", {"symbol": "ETHBTC"})
    assert commission["standardCommission"]["maker"] == "0.00100000"


def test_public_market_data_endpoints(live_sim: Any, ex: Any) -> None:
    """rest-api.md "Recent trades list", "Compressed/Aggregate trades list", "24hr ticker"."""
    trades = ex.fetch_trades(SYMBOL, limit=20)
    now = int(time.time() * 1000)
    assert len(trades) == 20 and all(now - 86_400_000 < t["timestamp"] <= now + 1000 for t in trades)
    agg = ex.publicGetAggTrades({"symbol": "ETHBTC", "limit": 5})
    assert [set(a) for a in agg] == [{"a", "p", "q", "f", "l", "T", "m", "M"}] * 5
    t24 = ex.publicGetTicker24hr({"symbol": "ETHBTC"})
    assert int(t24["closeTime"]) - int(t24["openTime"]) <= 86_400_000 and Decimal(t24["volume"]) > 0


# -- protocol edges (rest-api.md "SIGNED endpoint security", "General API Information")
def _signed(sim: Any, method: str, path: str, query: dict[str, Any], body: dict[str, Any] | None = None,
            upper: bool = False) -> requests.Response:
    q, b = urlencode(query), urlencode(body or {})
    sig = hmac.new(SIM_SECRET.encode(), (q + b).encode(), hashlib.sha256).hexdigest()
    sig = sig.upper() if upper else sig
    return requests.request(method, f"{sim.base_url}{path}?{q}&signature={sig}", data=b or None,
                            headers={"X-MBX-APIKEY": SIM_KEY,
                                     "Content-Type": "application/x-www-form-urlencoded"}, timeout=5)


def test_signature_hex_is_not_case_sensitive(live_sim: Any) -> None:
    r = _signed(live_sim, "GET", "/api/v3/account", {"timestamp": int(time.time() * 1000)}, upper=True)
    assert r.status_code == 200, r.text


def test_query_string_wins_over_body(live_sim: Any) -> None:
    """rest-api.md: "If a parameter sent in both the query string and request body, the query string
    parameter will be used." """
    ts = int(time.time() * 1000)
    r = _signed(live_sim, "POST", "/api/v3/order/test", {"symbol": "ETHBTC", "side": "BUY", "type": "MARKET",
                                                          "quantity": "0.01", "timestamp": ts},
                {"quantity": "0.00001"})  # the body's quantity would fail LOT_SIZE
    assert r.status_code == 200, r.text


def test_microsecond_timestamps_are_accepted(live_sim: Any) -> None:
    r = _signed(live_sim, "GET", "/api/v3/account", {"timestamp": int(time.time() * 1_000_000)})
    assert r.status_code == 200, r.text
    stale = _signed(live_sim, "GET", "/api/v3/account", {"timestamp": int(time.time() * 1_000_000) - 10_000_000})
    assert stale.json()["code"] == -1021  # 10 s old in microseconds: outside the 5 s recvWindow


# -- rate limits (rest-api.md "LIMITS", "IP Limits", "Unfilled Order Count"; errors.md -1003)
def test_weight_header_climbs_then_429_with_retry_after_then_418() -> None:
    with serve_sim(make_candles(300), api_key=SIM_KEY, api_secret=SIM_SECRET, clock="speed", speed=0.001,
                   limits=LimitConfig(weight_limit=60, ban_after=2)) as sim:
        ex = ccxt_client(sim)
        client = spot_client(sim)
        client.show_limit_usage = True
        used = []
        with pytest.raises(ccxt.DDoSProtection):  # RateLimitExceeded is a DDoSProtection in ccxt
            for _ in range(40):
                ex.publicGetTickerPrice({"symbol": "ETHBTC"})  # weight 2
                used.append(int(ex.last_response_headers["X-MBX-USED-WEIGHT-1M"]))
        if not used or used[0] > 2:  # a minute boundary fell inside the burst: start over
            pytest.skip("the weight window reset mid-burst")
        assert used == list(range(2, 2 * len(used) + 1, 2)) and used[-1] > 50
        r = requests.get(f"{sim.base_url}/api/v3/time", timeout=5)
        assert r.status_code == 429 and r.json()["code"] == -1003 and 1 <= int(r.headers["Retry-After"]) <= 60
        for _ in range(3):  # a client that keeps going inside Retry-After ...
            r = requests.get(f"{sim.base_url}/api/v3/time", timeout=5)
        assert r.status_code == 418 and r.json()["code"] == -1003  # ... is banned
        assert int(r.headers["Retry-After"]) > 60


def test_order_count_headers_and_rate_limit_order(live_sim: Any) -> None:
    client = spot_client(live_sim)
    client.show_limit_usage = True
    reply = client.new_order("ETHBTC", "BUY", "MARKET", quantity="0.01")
    usage = reply["limit_usage"]
    assert int(usage["x-mbx-order-count-10s"]) >= 1 and int(usage["x-mbx-order-count-1d"]) >= 1
    assert int(usage["x-mbx-used-weight-1m"]) >= 1
    counts = client.sign_request("GET", "/api/v3/rateLimit/order", {})["data"]
    assert [c["interval"] for c in counts] == ["SECOND", "DAY"] and counts[1]["count"] >= 1
