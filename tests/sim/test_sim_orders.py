"""Paper exchange order behaviour over real HTTP: LIMIT_MAKER, MARKET, LIMIT, filters, errors."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from binance.error import ClientError

from ethbtc.sim import SymbolRules
from tests.support.sim_fixtures import bars, spot_client


def balances(client) -> dict[str, tuple[D, D]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in client.account()["balances"]}


def rejected(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    assert info.value.status_code == 400
    return info.value.error_code, info.value.error_message


def test_limit_maker_that_would_cross_is_rejected(flat) -> None:
    _, c = flat()
    assert c.book_ticker("ETHBTC")["askPrice"] == "0.05001000"
    assert rejected(c.new_order, "ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price="0.05001") == (
        -2010, "Order would immediately match and take.")
    _, c2 = flat(balances={"BTC": "0", "ETH": "1"})
    assert rejected(c2.new_order, "ETHBTC", "SELL", "LIMIT_MAKER", quantity="0.1", price="0.05")[0] == -2010
    assert balances(c)["BTC"] == (D("1"), D("0"))


def test_resting_buy_locks_btc_and_fills_as_maker_when_traded_through(flat) -> None:
    sim, c = flat()
    o = c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="1", price="0.04995")
    assert balances(c)["BTC"] == (D("0.95005"), D("0.04995"))
    assert c.get_order("ETHBTC", orderId=o["orderId"])["status"] == "NEW"
    bar_open = sim.state()["marketTime"]
    sim.advance(1)
    q = c.get_order("ETHBTC", orderId=o["orderId"])
    assert (q["status"], q["executedQty"], q["cummulativeQuoteQty"]) == ("FILLED", "1.00000000", "0.04995000")
    b = balances(c)
    assert b["BTC"] == (D("0.95005"), D("0")) and b["ETH"] == (D("0.999"), D("0"))  # 0.1% maker fee in ETH
    (t,) = c.my_trades("ETHBTC")
    assert (t["price"], t["isMaker"], t["commission"], t["commissionAsset"]) == ("0.04995000", True, "0.00100000", "ETH")
    assert bar_open < t["time"] < bar_open + 5 * 60_000  # on the way down to the low, first third of the bar
    assert sim.ledger()[0]["clientOrderId"] == o["clientOrderId"]


def test_resting_sell_fills_on_the_way_up(flat) -> None:
    sim, c = flat(balances={"BTC": "0", "ETH": "1"})
    c.new_order("ETHBTC", "SELL", "LIMIT_MAKER", quantity="0.5", price="0.05005")
    assert balances(c)["ETH"] == (D("0.5"), D("0.5"))
    sim.advance(1)
    b = balances(c)
    assert b["ETH"] == (D("0.5"), D("0"))
    assert b["BTC"] == (D("0.025025") - D("0.00002503"), D("0"))  # fee 0.1% of 0.025025, rounded half-up


def test_only_a_trade_through_fills_unless_fill_on_touch(flat) -> None:
    sim, c = flat()
    o = c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="1", price="0.0499")  # exactly the low
    sim.advance(3)
    assert c.get_order("ETHBTC", orderId=o["orderId"])["status"] == "NEW"
    sim2, c2 = flat(fill_on_touch=True, ideal_fills=True)  # a touch of a knot trades no volume: ideal rule
    o2 = c2.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="1", price="0.0499")
    sim2.advance(1)
    assert c2.get_order("ETHBTC", orderId=o2["orderId"])["status"] == "FILLED"


def test_partial_fills_then_fill(flat) -> None:
    sim, c = flat(partial_fill=0.5)
    o = c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="1", price="0.04995")
    sim.advance(1)
    q = c.get_order("ETHBTC", orderId=o["orderId"])
    assert (q["status"], q["executedQty"]) == ("PARTIALLY_FILLED", "0.50000000")
    assert balances(c)["BTC"] == (D("0.95005"), D("0.024975"))
    assert [x["orderId"] for x in c.get_open_orders("ETHBTC")] == [o["orderId"]]
    sim.advance(1)
    q = c.get_order("ETHBTC", orderId=o["orderId"])
    assert (q["status"], q["executedQty"], q["cummulativeQuoteQty"]) == ("FILLED", "1.00000000", "0.04995000")
    assert [t["qty"] for t in c.my_trades("ETHBTC")] == ["0.50000000", "0.50000000"]
    assert balances(c)["BTC"] == (D("0.95005"), D("0"))


def test_cancel_after_partial_fill_releases_the_rest(flat) -> None:
    sim, c = flat(partial_fill=0.5)
    o = c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="1", price="0.04995", newClientOrderId="b1")
    sim.advance(1)
    x = c.cancel_order("ETHBTC", origClientOrderId="b1")
    assert (x["status"], x["executedQty"], x["orderId"]) == ("CANCELED", "0.50000000", o["orderId"])
    b = balances(c)
    assert b["BTC"] == (D("1") - D("0.024975"), D("0")) and b["ETH"] == (D("0.4995"), D("0"))
    sim.advance(2)
    assert c.get_order("ETHBTC", orderId=o["orderId"])["executedQty"] == "0.50000000"


def test_market_orders_fill_at_the_touch_with_slippage(flat) -> None:
    sim, c = flat(slippage_bps=10, taker_fee="0.001", ideal_fills=True)  # slippage_bps: the ideal-fill knob
    buy = c.new_order("ETHBTC", "BUY", "MARKET", quantity="0.3")
    (fill,) = buy["fills"]
    assert fill["price"] == "0.05007000"  # ask 0.05001 * 1.001, rounded up to the tick
    assert buy["cummulativeQuoteQty"] == "0.01502100"
    assert (fill["commission"], fill["commissionAsset"]) == ("0.00030000", "ETH")
    sell = c.new_order("ETHBTC", "SELL", "MARKET", quantity="0.1")
    assert sell["fills"][0]["price"] == "0.04995000"  # bid 0.05 * 0.999
    b = balances(c)
    assert b["ETH"] == (D("0.3") - D("0.0003") - D("0.1"), D("0"))
    assert b["BTC"] == (D("1") - D("0.015021") + D("0.004995") - D("0.00000500"), D("0"))
    assert [f["isMaker"] for f in sim.ledger()] == [False, False]


def test_market_buy_by_quote_quantity(flat) -> None:
    _, c = flat()
    o = c.new_order("ETHBTC", "BUY", "MARKET", quoteOrderQty="0.01")
    assert (o["executedQty"], o["cummulativeQuoteQty"], o["origQuoteOrderQty"]) == (
        "0.19990000", "0.00999700", "0.01000000")


def test_limit_orders_take_when_crossing_rest_or_expire(flat) -> None:
    sim, c = flat()
    taken = c.new_order("ETHBTC", "BUY", "LIMIT", timeInForce="GTC", quantity="0.1", price="0.0502")
    assert taken["status"] == "FILLED" and taken["fills"][0]["price"] == "0.05001000"
    resting = c.new_order("ETHBTC", "BUY", "LIMIT", timeInForce="GTC", quantity="0.1", price="0.04995")
    assert resting["status"] == "NEW"
    expired = c.new_order("ETHBTC", "BUY", "LIMIT", timeInForce="IOC", quantity="0.1", price="0.04995")
    assert expired["status"] == "EXPIRED"
    sim.advance(1)
    assert c.get_order("ETHBTC", orderId=resting["orderId"])["status"] == "FILLED"
    assert balances(c)["BTC"][1] == 0


@pytest.mark.parametrize(("kwargs", "failure"), [
    ({"type": "LIMIT_MAKER", "quantity": "0.1", "price": "0.049955"}, "PRICE_FILTER"),
    ({"type": "LIMIT_MAKER", "quantity": "0.00005", "price": "0.0499"}, "LOT_SIZE"),
    ({"type": "LIMIT_MAKER", "quantity": "0.00015", "price": "0.0499"}, "LOT_SIZE"),
    ({"type": "LIMIT_MAKER", "quantity": "0.001", "price": "0.0499"}, "NOTIONAL"),
    ({"type": "MARKET", "quantity": "0.001"}, "NOTIONAL"),
    ({"type": "MARKET", "quantity": "2500"}, "MARKET_LOT_SIZE"),
])
def test_filter_failures(flat, kwargs, failure) -> None:
    _, c = flat()
    assert rejected(c.new_order, "ETHBTC", "BUY", **kwargs) == (-1013, f"Filter failure: {failure}")


def test_max_num_orders(flat) -> None:
    _, c = flat(rules=SymbolRules(max_num_orders=2))
    for _ in range(2):
        c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price="0.049")
    assert rejected(c.new_order, "ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price="0.049") == (
        -1013, "Filter failure: MAX_NUM_ORDERS")


def test_insufficient_balance(flat) -> None:
    _, c = flat()
    msg = "Account has insufficient balance for requested action."
    assert rejected(c.new_order, "ETHBTC", "BUY", "MARKET", quantity="100") == (-2010, msg)
    assert rejected(c.new_order, "ETHBTC", "SELL", "LIMIT_MAKER", quantity="1", price="0.051") == (-2010, msg)
    c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="19", price="0.05")  # locks 0.95 BTC
    assert rejected(c.new_order, "ETHBTC", "BUY", "LIMIT_MAKER", quantity="1.1", price="0.05") == (-2010, msg)


def test_duplicate_client_order_id_of_an_open_order(flat) -> None:
    _, c = flat()
    c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price="0.049", newClientOrderId="bar42-BUY")
    assert rejected(c.new_order, "ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price="0.049",
                    newClientOrderId="bar42-BUY") == (-2010, "Duplicate order sent.")
    c.cancel_order("ETHBTC", origClientOrderId="bar42-BUY")
    again = c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="0.1", price="0.049", newClientOrderId="bar42-BUY")
    assert c.get_order("ETHBTC", origClientOrderId="bar42-BUY")["orderId"] == again["orderId"]


def test_unknown_orders(flat) -> None:
    _, c = flat()
    assert rejected(c.cancel_order, "ETHBTC", orderId=999) == (-2011, "Unknown order sent.")
    assert rejected(c.cancel_open_orders, "ETHBTC") == (-2011, "Unknown order sent.")
    assert rejected(c.get_order, "ETHBTC", orderId=999) == (-2013, "Order does not exist.")
    assert rejected(c.get_order, "ETHBTC", origClientOrderId="nope") == (-2013, "Order does not exist.")
    filled = c.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1")
    assert rejected(c.cancel_order, "ETHBTC", orderId=filled["orderId"])[0] == -2011
    assert rejected(c.get_order, "ETHBTC", orderId=filled["orderId"], origClientOrderId="other")[0] == -2013


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"type": "MARKET", "quantity": "1e-05"}, -1100),
    ({"type": "MARKET", "quantity": "0.123456789"}, -1111),
    ({"type": "MARKET", "quantity": "0.1", "newClientOrderId": "x" * 37}, -1100),
    ({"type": "MARKET", "quantity": "0.1", "newClientOrderId": "bad id!"}, -1100),
    ({"type": "MARKET"}, -1102),
    ({"type": "MARKET", "quantity": "0.1", "quoteOrderQty": "0.01"}, -1128),
    ({"type": "MARKET", "quantity": "0.1", "price": "0.05"}, -1106),
    ({"type": "LIMIT", "quantity": "0.1", "price": "0.049"}, -1102),
    ({"type": "LIMIT", "quantity": "0.1", "price": "0.049", "timeInForce": "GTX"}, -1115),
    ({"type": "LIMIT_MAKER", "quantity": "0.1", "price": "0.049", "timeInForce": "GTC"}, -1106),
    ({"type": "LIMIT_MAKER", "quantity": "0.1"}, -1102),
    ({"type": "STOP_LOSS", "quantity": "0.1"}, -1116),
    ({"type": "MARKET", "quantity": "0.1", "newOrderRespType": "ALL"}, -1100),
])
def test_bad_order_parameters(flat, kwargs, code) -> None:
    _, c = flat()
    assert rejected(c.new_order, "ETHBTC", "BUY", **kwargs)[0] == code


def test_bad_side_symbol_and_missing_order_reference(flat) -> None:
    _, c = flat()
    assert rejected(c.new_order, "ETHBTC", "HOLD", "MARKET", quantity="0.1")[0] == -1117
    assert rejected(c.new_order, "ETHUSDT", "BUY", "MARKET", quantity="0.1")[0] == -1121
    assert rejected(c.get_order, "ETHBTC")[0] == -1102
    assert rejected(c.cancel_order, "ETHBTC")[0] == -1102


def test_a_resting_order_fills_only_up_to_the_volume_traded_through_its_price(sim_factory) -> None:
    """Issue 15: finite liquidity. Bar 1 (open 0.05, low 0.049, high 0.0502, close 0.0501, 30 ETH)
    spends 0.3056 of its time below 0.0495 (ethbtc.fillmodel), so ~9.17 ETH trade through a bid
    there: a 20 ETH bid fills that much; with ideal_fills it fills whole."""
    rows = [(0.05, 0.0501, 0.0499, 0.05), (0.05, 0.0502, 0.049, 0.0501), (0.0501, 0.0502, 0.05, 0.0501)]
    for ideal, status in ((False, "PARTIALLY_FILLED"), (True, "FILLED")):
        sim = sim_factory(bars(rows, volume=[30, 30, 30]), start=1, balances={"BTC": "2"}, ideal_fills=ideal)
        c = spot_client(sim)
        o = c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="20", price="0.0495")
        sim.advance(1)
        q = c.get_order("ETHBTC", orderId=o["orderId"])
        assert q["status"] == status
        if not ideal:
            assert D("9.16") <= D(q["executedQty"]) <= D("9.17")


def test_limit_orders_that_cross_walk_the_book_ioc_partial_fok_all_or_nothing(sim_factory) -> None:
    """rest-api.md New order timeInForce: IOC fills what it can up to its price, FOK all or nothing."""
    c = spot_client(sim_factory(balances={"BTC": "10"}))
    asks = c.depth("ETHBTC", limit=5)["asks"]
    top3 = sum(D(q) for _, q in asks[:3])
    limit = asks[2][0]
    qty = str((top3 + 1).quantize(D("0.0001")))
    fok = c.new_order("ETHBTC", "BUY", "LIMIT", timeInForce="FOK", quantity=qty, price=limit)
    assert (fok["status"], fok["executedQty"], fok["fills"]) == ("EXPIRED", "0.00000000", [])
    ioc = c.new_order("ETHBTC", "BUY", "LIMIT", timeInForce="IOC", quantity=qty, price=limit)
    assert ioc["status"] == "EXPIRED" and D(ioc["executedQty"]) == top3 and len(ioc["fills"]) == 3
    assert [f["price"] for f in ioc["fills"]] == [p for p, _ in asks[:3]]
