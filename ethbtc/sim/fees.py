"""Commission model of the paper exchange (Binance spot rules, SPEC R23).

A fill pays ``rate`` (maker or taker) on what it receives: ETH on a buy, BTC on a sell.
When the account pays fees in BNB and holds enough free BNB, the fee is instead
``quote_qty * rate * (1 - bnb_discount)`` BTC converted to BNB at the BNBBTC price of the
moment; without enough BNB (or without a BNB price) it falls back to the received asset
at the undiscounted rate. Commissions are rounded half-up to 8 decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .rules import EIGHT, ZERO


@dataclass
class FeeSchedule:
    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")
    pay_in_bnb: bool = False
    bnb_discount: Decimal = Decimal("0.25")
    bnb_asset: str = "BNB"

    def account_rates(self) -> dict[str, object]:
        """The commission fields of /api/v3/account."""
        return {
            "makerCommission": int(self.maker * 10000),
            "takerCommission": int(self.taker * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": f"{self.maker:.8f}", "taker": f"{self.taker:.8f}",
                                "buyer": "0.00000000", "seller": "0.00000000"},
        }

    def commission(self, *, is_maker: bool, is_buyer: bool, qty: Decimal, quote_qty: Decimal,
                   base: str, quote: str, bnb_free: Decimal,
                   bnb_price: Callable[[], Decimal | None]) -> tuple[Decimal, str]:
        """(amount, asset) charged for one fill."""
        rate = self.maker if is_maker else self.taker
        if self.pay_in_bnb and rate > 0:
            price = bnb_price()
            if price is not None and price > 0:
                in_bnb = (quote_qty * rate * (1 - self.bnb_discount) / price).quantize(EIGHT, ROUND_HALF_UP)
                if in_bnb <= bnb_free:
                    return in_bnb, self.bnb_asset
        received, asset = (qty, base) if is_buyer else (quote_qty, quote)
        amount = (received * rate).quantize(EIGHT, ROUND_HALF_UP) if rate > 0 else ZERO
        return amount, asset
