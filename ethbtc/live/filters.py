"""A symbol's trading filters from /api/v3/exchangeInfo and the rounding orders must obey.

Amounts are :class:`~decimal.Decimal` so a rounded price or quantity is exactly on the
exchange's grid (float arithmetic is not). Buy prices round down and sell prices up (never
crossing a post-only order into a taker), quantities always round down (never over-spend).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from .errors import ExchangeError


def D(value: object) -> Decimal:
    """Decimal from an exchange string or a float (floats through their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def floor_step(x: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return x
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_step(x: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return x
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step


def fmt(x: Decimal) -> str:
    """A plain decimal string without exponent or trailing zeros (what Binance accepts)."""
    s = f"{x.normalize():f}"
    return s if s != "-0" else "0"


@dataclass(frozen=True)
class SymbolFilters:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    market_step_size: Decimal
    market_max_qty: Decimal
    apply_min_to_market: bool = True

    @classmethod
    def from_exchange_info(cls, info: dict[str, Any], symbol: str) -> SymbolFilters:
        entry = next((s for s in info.get("symbols", []) if s.get("symbol") == symbol), None)
        if entry is None:
            raise ExchangeError(f"symbol {symbol} is not listed by the exchange")
        f = {flt.get("filterType"): flt for flt in entry.get("filters", [])}
        price, lot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {})
        market = f.get("MARKET_LOT_SIZE", {})
        notional = f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}
        market_step = D(market.get("stepSize", "0"))
        market_max = D(market.get("maxQty", "0"))
        return cls(
            symbol=symbol, base=entry["baseAsset"], quote=entry["quoteAsset"],
            tick_size=D(price.get("tickSize", "0")), step_size=D(lot.get("stepSize", "0")),
            min_qty=D(lot.get("minQty", "0")), max_qty=D(lot.get("maxQty", "0")) or Decimal("1e12"),
            min_notional=D(notional.get("minNotional", "0")),
            market_step_size=market_step if market_step > 0 else D(lot.get("stepSize", "0")),
            market_max_qty=market_max if market_max > 0 else Decimal("1e12"),
            apply_min_to_market=bool(notional.get("applyMinToMarket", notional.get("applyToMarket", True))),
        )

    def price_for(self, side: str, price: Decimal) -> Decimal:
        """Round a limit price onto the tick grid on the passive side (buy down, sell up)."""
        return floor_step(price, self.tick_size) if side == "BUY" else ceil_step(price, self.tick_size)

    def qty(self, qty: Decimal, market: bool = False) -> Decimal:
        """Round a quantity down onto the lot grid and cap it at the maximum."""
        step = self.market_step_size if market else self.step_size
        cap = min(self.max_qty, self.market_max_qty) if market else self.max_qty
        return floor_step(min(max(qty, Decimal(0)), cap), step)

    def too_small(self, qty: Decimal, price: Decimal, market: bool = False) -> str | None:
        """Why ``qty`` at ``price`` cannot be sent ('min_qty' / 'min_notional'), or None."""
        if qty <= 0 or qty < self.min_qty:
            return "min_qty"
        if (not market or self.apply_min_to_market) and qty * price < self.min_notional:
            return "min_notional"
        return None
