"""Options of the paper exchange and the assembly of market, clock, fees and engine from them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from .engine import Engine
from .faults import FaultConfig
from .fees import FeeSchedule
from .limits import LimitConfig
from .market import BookModel, CandleSeries, Clock, Market
from .rules import SymbolRules, dec

DEFAULT_API_KEY = "simkey"
DEFAULT_API_SECRET = "simsecret"


@dataclass
class SimConfig:
    """Everything a simulator run can be configured with (the CLI flags map onto these)."""

    balances: Mapping[str, object] = field(default_factory=lambda: {"BTC": "1"})
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    rules: SymbolRules = field(default_factory=SymbolRules)
    interval_minutes: int | None = None
    clock: str = "manual"  # manual | speed | realtime
    speed: float = 1.0  # bars per second in "speed" mode
    start: int | str | pd.Timestamp | None = None  # bar index or time; None: min(1000, bars // 2)
    # "now": re-stamp the history so the start position is the wall clock (one time line with
    # the wall clock in real time); "data": keep the file's times; "auto": "data" for the manual
    # clock (tests compare against the candle file), "now" for realtime and speed
    time_origin: str = "auto"
    # the exchange clock is the wall clock whatever the market does (a history already stamped
    # on the wall clock, replayed by a caller that paces the market itself)
    wall_clock: bool = False
    maker_fee: object = "0.001"
    taker_fee: object = "0.001"
    pay_fees_in_bnb: bool = False
    bnb_discount: object = "0.25"
    bnb_candles: object | None = None  # BNBBTC candles (DataFrame or Candles) for BNB fee prices
    bnb_btc_price: object | None = None  # fixed BNBBTC price instead of candles
    spread_bps: float = 0.0  # 0: one tick between bid and ask (ETHBTC is usually one tick wide)
    slippage_bps: float = 0.0
    partial_fill: float = 1.0
    fill_on_touch: bool = False
    book_qty: object = "25"  # ideal_fills: every book level shows this much
    ideal_fills: bool = False  # the earlier exchange: whole fills at the touch / at first trade-through
    volume_fills: bool | None = None  # resting fills capped by the volume traded through; None: unless ideal_fills
    book: BookModel = field(default_factory=BookModel)  # the synthetic depth (market.BookModel)
    faults: FaultConfig = field(default_factory=FaultConfig)
    limits: LimitConfig = field(default_factory=LimitConfig)  # request weight / order counts


def start_position(series: CandleSeries, start: int | str | pd.Timestamp | None) -> float:
    n = len(series)
    if start is None:
        return float(min(1000, n // 2))
    if isinstance(start, int):
        if not 0 <= start < n:
            raise ValueError(f"start bar {start} is outside the data (0..{n - 1})")
        return float(start)
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    i = series.index_at_ms(ts.value // 1_000_000)
    if i >= n - 1 and ts.value // 1_000_000 >= int(series.open_ms[-1]) + series.interval_ms:
        raise ValueError(f"start {ts} is after the end of the data")
    return float(max(i, 0))


def bnb_price_source(cfg: SimConfig) -> Callable[[int], Decimal | None] | None:
    if cfg.bnb_btc_price is not None:
        fixed = dec(cfg.bnb_btc_price)
        return lambda _ms: fixed
    if cfg.bnb_candles is not None:
        series = CandleSeries(cfg.bnb_candles)

        def at(ms: int) -> Decimal | None:
            price = series.price_at_ms(ms)
            return None if price is None else dec(price).quantize(Decimal("1e-8"))
        return at
    return None


TIME_ORIGINS = ("auto", "now", "data")


def resolved_origin(cfg: SimConfig) -> str:
    if cfg.time_origin not in TIME_ORIGINS:
        raise ValueError(f"time origin must be one of {TIME_ORIGINS}, got {cfg.time_origin!r}")
    if cfg.time_origin == "auto":
        return "data" if cfg.clock == "manual" else "now"
    return cfg.time_origin


def build_engine(candles: object, cfg: SimConfig, wall_ms: int | None = None) -> Engine:
    series = CandleSeries(candles, cfg.interval_minutes)
    series.round_to_tick(float(cfg.rules.tick_size))
    start = start_position(series, cfg.start)
    origin = resolved_origin(cfg)
    if origin == "now":
        now = int(time.time() * 1000) if wall_ms is None else wall_ms
        into_bar = now % series.interval_ms
        series.restamp(now - into_bar, int(start))
        start += into_bar / series.interval_ms
    clock = Clock(start, float(len(series)), cfg.clock, cfg.speed, series.interval_minutes)
    market = Market(series, clock, cfg.rules.tick_size, cfg.spread_bps, dec(cfg.book_qty), cfg.rules.step_size,
                    cfg.book)
    fees = FeeSchedule(maker=dec(cfg.maker_fee), taker=dec(cfg.taker_fee), pay_in_bnb=cfg.pay_fees_in_bnb,
                       bnb_discount=dec(cfg.bnb_discount))
    for name, rate in (("maker fee", fees.maker), ("taker fee", fees.taker), ("bnb discount", fees.bnb_discount)):
        if not 0 <= rate < 1:
            raise ValueError(f"{name} must be in [0, 1), got {rate}")
    bnb = bnb_price_source(cfg)
    if bnb is not None and origin == "now":
        data_bnb = bnb
        bnb = lambda ms: data_bnb(series.to_data_ms(ms))  # noqa: E731 - BNB candles carry the file's era
    engine = Engine(market, cfg.rules, fees, cfg.balances, slippage_bps=cfg.slippage_bps,
                    partial_fill=cfg.partial_fill, fill_on_touch=cfg.fill_on_touch, bnb_price=bnb,
                    ideal_fills=cfg.ideal_fills, volume_fills=cfg.volume_fills)
    engine.time_origin = origin
    if cfg.wall_clock:
        engine.free_clock = (int(time.time() * 1000), 1.0)
    elif origin == "now" and cfg.clock != "manual":
        engine.free_clock = (now, clock.bars_per_second * series.interval_ms / 1000)
    return engine
