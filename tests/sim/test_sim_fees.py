"""Paper exchange fee accounting in both modes (SPEC R23): received asset, or BNB at a discount."""

from __future__ import annotations

from decimal import Decimal as D

from tests.support.sim_fixtures import bars


def balances(client) -> dict[str, D]:
    return {b["asset"]: D(b["free"]) + D(b["locked"]) for b in client.account()["balances"]}


def test_fees_in_the_received_asset_with_maker_and_taker_rates(flat) -> None:
    sim, c = flat(balances={"BTC": "1", "ETH": "1"}, maker_fee="0.00075", taker_fee="0.001")
    buy = c.new_order("ETHBTC", "BUY", "MARKET", quantity="1")  # taker, receives ETH
    assert (buy["fills"][0]["commission"], buy["fills"][0]["commissionAsset"]) == ("0.00100000", "ETH")
    c.new_order("ETHBTC", "SELL", "LIMIT_MAKER", quantity="1", price="0.05005")  # maker, receives BTC
    sim.advance(1)
    sell = c.my_trades("ETHBTC")[-1]
    assert (sell["commission"], sell["commissionAsset"], sell["isMaker"]) == ("0.00003754", "BTC", True)  # 0.05005*0.00075
    b = balances(c)
    assert b["ETH"] == D("1") + D("1") - D("0.001") - D("1")
    assert b["BTC"] == D("1") - D("0.05001") + D("0.05005") - D("0.00003754")


def test_fees_in_bnb_at_a_discount_while_bnb_lasts(flat) -> None:
    sim, c = flat(balances={"BTC": "1", "BNB": "0.005"}, pay_fees_in_bnb=True, bnb_btc_price="0.01")
    first = c.new_order("ETHBTC", "BUY", "MARKET", quantity="1")["fills"][0]
    # 0.05001 BTC * 0.1% * (1 - 25%) = 0.0000375075 BTC = 0.00375075 BNB at 0.01 BTC/BNB
    assert (first["commission"], first["commissionAsset"]) == ("0.00375075", "BNB")
    b = balances(c)
    assert (b["ETH"], b["BNB"]) == (D("1"), D("0.005") - D("0.00375075"))
    second = c.new_order("ETHBTC", "BUY", "MARKET", quantity="1")["fills"][0]
    assert (second["commission"], second["commissionAsset"]) == ("0.00100000", "ETH")  # BNB ran out: full rate
    assert balances(c)["ETH"] == D("1.999")
    assert {f["commissionAsset"] for f in sim.ledger()} == {"BNB", "ETH"}


def test_bnb_price_from_bnbbtc_candles_and_maker_fills(flat) -> None:
    bnb = bars([(0.008, 0.0081, 0.0079, 0.008)] * 30)
    sim, c = flat(balances={"BTC": "1", "BNB": "1"}, pay_fees_in_bnb=True, bnb_candles=bnb, bnb_discount="0.5",
                  maker_fee="0.001")
    c.new_order("ETHBTC", "BUY", "LIMIT_MAKER", quantity="2", price="0.04995")
    sim.advance(1)
    (t,) = c.my_trades("ETHBTC")
    # The ETH path reaches 0.04995 halfway down to its low (f = 1/6); BNBBTC then sits halfway
    # down to its own low: 0.00795. Fee = 0.0999 BTC * 0.1% * (1 - 50%) / 0.00795 BNB.
    fee = D(t["commission"])
    assert t["commissionAsset"] == "BNB"
    assert fee == (D("0.0999") * D("0.0005") / D("0.00795")).quantize(D("1e-8"))
    assert balances(c)["BNB"] == D("1") - fee and balances(c)["ETH"] == D("2")


def test_bnb_mode_can_be_switched_through_the_bnb_burn_endpoint(flat) -> None:
    _, c = flat(balances={"BTC": "1", "BNB": "1"}, bnb_btc_price="0.01")
    assert c.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1")["fills"][0]["commissionAsset"] == "ETH"
    c.toggle_bnbBurn(spotBNBBurn="true")
    assert c.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1")["fills"][0]["commissionAsset"] == "BNB"


def test_zero_fees(flat) -> None:
    _, c = flat(maker_fee="0", taker_fee="0")
    fill = c.new_order("ETHBTC", "BUY", "MARKET", quantity="0.1")["fills"][0]
    assert fill["commission"] == "0.00000000" and balances(c)["ETH"] == D("0.1")
