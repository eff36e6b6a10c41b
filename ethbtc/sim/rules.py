"""Symbol trading rules of the paper exchange: Binance filters, exchangeInfo shape, decimals.

All money amounts in the simulator are :class:`~decimal.Decimal` with at most 8 decimals
(Binance's asset precision), so balances change exactly and conservation can be checked.
Defaults are ETHBTC's real filters (tick 0.00001, step 0.0001, minNotional 0.0001 BTC) and
the filter set Binance lists for it in exchangeInfo (filters.md): PRICE_FILTER,
PERCENT_PRICE_BY_SIDE (checked against the ``avgPriceMins``-minute weighted average price),
LOT_SIZE, ICEBERG_PARTS, MARKET_LOT_SIZE, TRAILING_DELTA, NOTIONAL, MAX_NUM_ORDERS,
MAX_NUM_ALGO_ORDERS. ICEBERG_PARTS, TRAILING_DELTA and MAX_NUM_ALGO_ORDERS are listed only:
the order types they govern are not simulated (-1116).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from . import apierrors

EIGHT = Decimal("0.00000001")
# the order types Binance lists for ETHBTC; only SIMULATED_ORDER_TYPES are executed, the rest -1116
LISTED_ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                      "TAKE_PROFIT_LIMIT")
SIMULATED_ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
ZERO = Decimal(0)


def dec(value: object) -> Decimal:
    """Decimal from a str/int/float/Decimal; floats go through their shortest repr."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(float(value)))
    return Decimal(str(value))


def floor_to(x: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return x
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(x: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return x
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step


def is_multiple(x: Decimal, step: Decimal) -> bool:
    return step <= 0 or (x / step) == (x / step).to_integral_value()


def fmt(x: Decimal) -> str:
    """Binance's string form: fixed point with 8 decimals."""
    return f"{x.quantize(EIGHT):f}"


@dataclass(frozen=True)
class SymbolRules:
    """One spot symbol's filters (values as Binance publishes them for ETHBTC)."""

    symbol: str = "ETHBTC"
    base: str = "ETH"
    quote: str = "BTC"
    tick_size: Decimal = Decimal("0.00001")
    min_price: Decimal = Decimal("0.00001")
    max_price: Decimal = Decimal("922327")
    step_size: Decimal = Decimal("0.0001")
    min_qty: Decimal = Decimal("0.0001")
    max_qty: Decimal = Decimal("100000")
    market_min_qty: Decimal = Decimal("0")
    market_max_qty: Decimal = Decimal("2000")
    market_step_size: Decimal = Decimal("0")
    min_notional: Decimal = Decimal("0.0001")
    apply_min_to_market: bool = True
    max_notional: Decimal = Decimal("9000000")
    apply_max_to_market: bool = False
    avg_price_mins: int = 5
    max_num_orders: int = 200
    # PERCENT_PRICE_BY_SIDE (ETHBTC's exchangeInfo values; filters.md shows the shape)
    bid_multiplier_up: Decimal = Decimal("5")
    bid_multiplier_down: Decimal = Decimal("0.2")
    ask_multiplier_up: Decimal = Decimal("5")
    ask_multiplier_down: Decimal = Decimal("0.2")
    percent_price_mins: int = 5
    iceberg_parts: int = 10
    max_num_algo_orders: int = 5
    min_trailing_delta: int = 10
    max_trailing_delta: int = 2000

    def check(self, *, price: Decimal | None, qty: Decimal, notional_price: Decimal, market: bool,
              open_orders: int, side: str = "BUY", avg_price: Decimal | None = None) -> None:
        """Raise -1013 "Filter failure: X" for the first filter the order violates.

        ``avg_price``: the weighted average price over ``percent_price_mins`` minutes, the
        reference of PERCENT_PRICE_BY_SIDE (None: not checked).
        """
        if price is not None:
            if price < self.min_price or price > self.max_price or not is_multiple(price - self.min_price,
                                                                                   self.tick_size):
                raise apierrors.filter_failure("PRICE_FILTER")
            if avg_price is not None and avg_price > 0:
                up, down = ((self.bid_multiplier_up, self.bid_multiplier_down) if side == "BUY"
                            else (self.ask_multiplier_up, self.ask_multiplier_down))
                if price > avg_price * up or price < avg_price * down:
                    raise apierrors.filter_failure("PERCENT_PRICE_BY_SIDE")
        if qty < self.min_qty or qty > self.max_qty or not is_multiple(qty - self.min_qty, self.step_size):
            raise apierrors.filter_failure("LOT_SIZE")
        if market and (qty < self.market_min_qty or qty > self.market_max_qty
                       or not is_multiple(qty - self.market_min_qty, self.market_step_size)):
            raise apierrors.filter_failure("MARKET_LOT_SIZE")
        notional = notional_price * qty
        if (not market or self.apply_min_to_market) and notional < self.min_notional:
            raise apierrors.filter_failure("NOTIONAL")
        if (not market or self.apply_max_to_market) and notional > self.max_notional:
            raise apierrors.filter_failure("NOTIONAL")
        if open_orders >= self.max_num_orders:
            raise apierrors.filter_failure("MAX_NUM_ORDERS")

    def symbol_info(self) -> dict[str, object]:
        """The symbol's entry in /api/v3/exchangeInfo, shaped like Binance's."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(LISTED_ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": fmt(self.min_price),
                 "maxPrice": fmt(self.max_price), "tickSize": fmt(self.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": fmt(self.min_qty), "maxQty": fmt(self.max_qty),
                 "stepSize": fmt(self.step_size)},
                {"filterType": "ICEBERG_PARTS", "limit": self.iceberg_parts},
                {"filterType": "MARKET_LOT_SIZE", "minQty": fmt(self.market_min_qty),
                 "maxQty": fmt(self.market_max_qty), "stepSize": fmt(self.market_step_size)},
                {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": self.min_trailing_delta,
                 "maxTrailingAboveDelta": self.max_trailing_delta, "minTrailingBelowDelta": self.min_trailing_delta,
                 "maxTrailingBelowDelta": self.max_trailing_delta},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": str(self.bid_multiplier_up),
                 "bidMultiplierDown": str(self.bid_multiplier_down), "askMultiplierUp": str(self.ask_multiplier_up),
                 "askMultiplierDown": str(self.ask_multiplier_down), "avgPriceMins": self.percent_price_mins},
                {"filterType": "NOTIONAL", "minNotional": fmt(self.min_notional),
                 "applyMinToMarket": self.apply_min_to_market, "maxNotional": fmt(self.max_notional),
                 "applyMaxToMarket": self.apply_max_to_market, "avgPriceMins": self.avg_price_mins},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
