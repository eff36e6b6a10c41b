"""``python -m ethbtc.sim``: run the paper exchange on a candle file until Ctrl-C / SIGTERM.

Example: ``python -m ethbtc.sim --data data/sample/ETHBTC_15m_sample.csv --btc 1 --speed 1``
then point binance-connector (or the live executor) at the printed URL with the API key and
secret given here (defaults: simkey / simsecret, or SIM_API_KEY / SIM_API_SECRET).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import pandas as pd

from ..cli import ArgumentParser, number, run_main, stop_on_signals
from ..data.candles import Candles, load_candles
from ..errors import UserError
from ..fileio import atomic_write_text, check_writable
from .build import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimConfig, build_engine
from .faults import FaultConfig
from .limits import LimitConfig
from .market import BookModel
from .rules import SymbolRules
from .server import SimServer


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or value < 0:
        raise ValueError(text)
    return value


def _positive_decimal(text: str) -> Decimal:
    value = _decimal(text)
    if value == 0:  # a zero tick/step size divides by zero in every price/quantity check
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(text)
    return value


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m ethbtc.sim",
                       description="Local Binance Spot paper exchange replaying historical candles.")
    p.add_argument("--data", required=True, help="candle file (Binance CSV, OHLCV CSV or freqtrade JSON)")
    p.add_argument("--interval", help="expected bar interval of --data (e.g. 15m); checked, else inferred")
    p.add_argument("--symbol", default="ETHBTC")
    p.add_argument("--base-asset", default="ETH")
    p.add_argument("--quote-asset", default="BTC")
    p.add_argument("--btc", type=_decimal, default=Decimal("1"), help="start balance of the quote asset (1)")
    p.add_argument("--eth", type=_decimal, default=Decimal("0"), help="start balance of the base asset (0)")
    p.add_argument("--bnb", type=_decimal, default=Decimal("0"), help="start BNB balance for fees (0)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=number(int, 0, 65535), default=8765, help="TCP port (0: any free port); default 8765")
    clock = p.add_mutually_exclusive_group()
    clock.add_argument("--speed", type=number(float, 0, above=True), default=1.0, help="replay speed in bars per second (1)")
    clock.add_argument("--realtime", action="store_true", help="replay one bar per bar interval")
    clock.add_argument("--manual", action="store_true", help="market moves only on POST /sim/advance")
    p.add_argument("--start", help="start at this UTC time or bar index (default: bar min(1000, bars/2))")
    p.add_argument("--time-origin", choices=("auto", "now", "data"), default="auto",
                   help="now: re-stamp the history so the start bar is the current wall-clock bar (with "
                        "--realtime every time shown is the wall clock, as on Binance); data: keep the "
                        "file's times; auto (default): now, except data with --manual")
    p.add_argument("--maker-fee", type=_decimal, default=Decimal("0.001"))
    p.add_argument("--taker-fee", type=_decimal, default=Decimal("0.001"))
    p.add_argument("--pay-fees-in-bnb", action="store_true", help="charge fees in BNB at a discount while BNB lasts")
    p.add_argument("--bnb-discount", type=_decimal, default=Decimal("0.25"))
    p.add_argument("--bnb-data", help="BNBBTC candle file for BNB fee prices")
    p.add_argument("--bnb-btc-price", type=_decimal, help="fixed BNBBTC price instead of --bnb-data")
    p.add_argument("--ideal-fills", action="store_true",
                   help="the earlier, kinder fills: MARKET whole at the touch (+ --slippage-bps), resting orders "
                        "whole at the first trade-through; default: a book with finite depth")
    p.add_argument("--book-top-share", type=number(float, 0, above=True), default=BookModel.top_share,
                   help="quantity at the touch as a share of the last complete bar's volume (0.02)")
    p.add_argument("--book-growth", type=number(float, 0), default=BookModel.growth,
                   help="level k of the book holds (1 + growth*k) times the touch (0.5)")
    p.add_argument("--book-levels", type=number(int, 1, 5000), default=BookModel.levels,
                   help="price levels per side (100)")
    p.add_argument("--book-min-top-qty", type=_positive_decimal, default=BookModel.min_top_qty,
                   help="least quantity at the touch, base units (0.5); backtest execution.book_min_top_qty")
    p.add_argument("--spread-bps", type=number(float, 0), default=0.0, help="bid/ask spread (0: one tick)")
    p.add_argument("--slippage-bps", type=number(float, 0), default=0.0,
                   help="with --ideal-fills: MARKET fills this far beyond the touch")
    p.add_argument("--partial-fill", type=_share, default=1.0,
                   help="share of a resting order that can fill per bar, at least one lot (1: all at once); "
                        "the backtest's execution.partial_fill (one rule, ethbtc.fillmodel)")
    p.add_argument("--volume-fills", choices=("auto", "on", "off"), default="auto",
                   help="cap a resting order's fills at the volume traded through its price (the backtest's "
                        "execution.volume_fills); auto (default): on, off with --ideal-fills")
    p.add_argument("--fill-on-touch", action="store_true", help="fill resting orders when touched, not only traded through")
    p.add_argument("--tick-size", type=_positive_decimal, default=SymbolRules.tick_size)
    p.add_argument("--step-size", type=_positive_decimal, default=SymbolRules.step_size)
    p.add_argument("--min-qty", type=_decimal, default=SymbolRules.min_qty)
    p.add_argument("--min-notional", type=_decimal, default=SymbolRules.min_notional)
    p.add_argument("--max-num-orders", type=int, default=SymbolRules.max_num_orders)
    lim = p.add_argument_group("rate limits (rest-api.md LIMITS; per client IP, windows on the exchange clock)")
    lim.add_argument("--weight-limit", type=number(int, 0), default=LimitConfig.weight_limit,
                     help="request weight per minute before 429 -1003 (6000; 0: no limits)")
    lim.add_argument("--orders-per-10s", type=number(int, 1), default=LimitConfig.orders_10s,
                     help="new orders per 10 s before 429 -1015 (100)")
    lim.add_argument("--ban-after", type=number(int, 0), default=LimitConfig.ban_after,
                     help="requests sent inside a 429's Retry-After before the 418 ban (5)")
    lim.add_argument("--ban-seconds", type=number(int, 1), default=LimitConfig.ban_seconds,
                     help="length of a 418 ban in seconds (120)")
    p.add_argument("--api-key", default=os.environ.get("SIM_API_KEY", DEFAULT_API_KEY))
    p.add_argument("--api-secret", default=os.environ.get("SIM_API_SECRET", DEFAULT_API_SECRET))
    f = p.add_argument_group("fault injection (shares are probabilities per request)")
    f.add_argument("--fault-5xx", type=_share, default=0.0)
    f.add_argument("--fault-429", type=_share, default=0.0)
    f.add_argument("--fault-418", type=_share, default=0.0)
    f.add_argument("--fault-delay", type=_share, default=0.0)
    f.add_argument("--delay-seconds", type=number(float, 0), default=15.0)
    f.add_argument("--fault-drop", type=_share, default=0.0, help="execute a new order, then drop the connection")
    f.add_argument("--time-skew-ms", type=int, default=0, help="server clock offset in ms")
    f.add_argument("--fault-seed", type=int)
    f.add_argument("--fault-endpoints", nargs="*", default=[], help="only these path prefixes (default all)")
    p.add_argument("--ledger-out", help="write the fill ledger (JSON) here on exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log every HTTP request")
    return p


def config_from_args(a: argparse.Namespace) -> SimConfig:
    if a.pay_fees_in_bnb and a.bnb_data is None and a.bnb_btc_price is None:
        raise UserError("--pay-fees-in-bnb needs a BNB price: --bnb-data FILE or --bnb-btc-price X")
    mode = "realtime" if a.realtime else "manual" if a.manual else "speed"
    start: int | str | None = a.start
    if isinstance(start, str) and start.isdigit():
        start = int(start)
    rules = SymbolRules(symbol=a.symbol, base=a.base_asset, quote=a.quote_asset,
                        tick_size=a.tick_size, min_price=a.tick_size, step_size=a.step_size,
                        min_qty=a.min_qty, min_notional=a.min_notional,
                        max_num_orders=a.max_num_orders)
    faults = FaultConfig(error_5xx=a.fault_5xx, rate_limit_429=a.fault_429, ban_418=a.fault_418,
                         delay=a.fault_delay, delay_seconds=a.delay_seconds, drop_after_order=a.fault_drop,
                         time_skew_ms=a.time_skew_ms, seed=a.fault_seed, endpoints=list(a.fault_endpoints))
    return SimConfig(
        balances={rules.quote: a.btc, rules.base: a.eth, "BNB": a.bnb},
        api_key=a.api_key, api_secret=a.api_secret, rules=rules, clock=mode, speed=a.speed,
        start=start, time_origin=a.time_origin, maker_fee=a.maker_fee, taker_fee=a.taker_fee, pay_fees_in_bnb=a.pay_fees_in_bnb,
        bnb_discount=a.bnb_discount, bnb_btc_price=a.bnb_btc_price,
        bnb_candles=load_candles(a.bnb_data) if a.bnb_data else None,
        spread_bps=a.spread_bps, slippage_bps=a.slippage_bps, partial_fill=a.partial_fill,
        fill_on_touch=a.fill_on_touch, faults=faults, ideal_fills=a.ideal_fills,
        volume_fills={"auto": None, "on": True, "off": False}[a.volume_fills],
        book=BookModel(top_share=a.book_top_share, growth=a.book_growth, min_top_qty=a.book_min_top_qty,
                       levels=a.book_levels),
        limits=LimitConfig(weight_limit=a.weight_limit, orders_10s=a.orders_per_10s, ban_after=a.ban_after,
                           ban_seconds=a.ban_seconds))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.ledger_out:
        check_writable(args.ledger_out)  # now, not after a long session that then loses its ledger
    candles = load_candles(args.data, args.interval)
    cfg = config_from_args(args)
    try:
        engine = build_engine(candles, cfg)
        server = SimServer(engine, api_key=cfg.api_key, api_secret=cfg.api_secret, faults=cfg.faults, limits=cfg.limits,
                           host=args.host, port=args.port)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    with stop_on_signals(stop):
        return _serve(server, cfg, candles, stop, args.ledger_out)


def _serve(server: SimServer, cfg: SimConfig, candles: Candles, stop: threading.Event, ledger_out: str | None) -> int:
    """Run until ``stop``; then write the ledger (``--ledger-out``) and close."""
    server.start()
    state = server.state()
    clock = {"speed": f"{cfg.speed:g} bars/s", "realtime": "real time", "manual": "manual (POST /sim/advance)"}
    print(f"paper exchange listening on {server.base_url}", flush=True)
    print(f"  {cfg.rules.symbol} {candles.interval_minutes}m, {len(candles.df)} bars "
          f"{candles.df.index[0]:%Y-%m-%d %H:%M} .. {candles.df.index[-1]:%Y-%m-%d %H:%M} UTC; "
          f"market starts at bar {state['barIndex']} ({state['dataTimeIso'][:16]} in the file, shown as "
          f"{pd.Timestamp(state['barOpenTime'], unit='ms', tz='UTC'):%Y-%m-%d %H:%M}); clock {clock[cfg.clock]}",
          flush=True)
    print(f"  api key {cfg.api_key!r}; control: {server.base_url}/sim/state  (Ctrl-C stops)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        ledger = server.ledger()
        server.close()
        if ledger_out:
            atomic_write_text(ledger_out, json.dumps(ledger, indent=1) + "\n")
        print(f"paper exchange stopped: {len(ledger)} fills"
              + (f", ledger written to {ledger_out}" if ledger_out else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
