"""The ``live_executor.py`` command line: flags, their environment defaults and ``.env`` loading.

Kept apart from :mod:`ethbtc.live.app` (the engine wiring) and light (argparse, python-dotenv,
the logging and metrics flag helpers): ``--help`` and a bad flag are answered before pandas,
numba, pydantic or the Binance connector load (issue 17).
"""

from __future__ import annotations

import argparse
import os

from dotenv import load_dotenv

from ..cli import ArgumentParser
from ..monitoring.logs import add_log_args
from ..monitoring.metrics_server import add_metrics_args

MODES = ("dry", "testnet", "live")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def build_parser() -> ArgumentParser:
    env = os.environ
    p = ArgumentParser(prog="live_executor.py", description="Run the ETH/BTC strategy on Binance Spot, one "
                       "decision per closed bar (dry = paper wallet, testnet, live).")
    p.add_argument("--params", required=True, help="strategy config JSON (the backtest's --config file)")
    p.add_argument("--mode", default=env.get("MODE") or "dry", help="dry | testnet | live (default: $MODE or dry)")
    p.add_argument("--symbol", default=env.get("SYMBOL") or "ETHBTC", help="default: $SYMBOL or ETHBTC")
    p.add_argument("--interval", help="Binance kline interval; must match the config (default: the config's)")
    p.add_argument("--poll-sec", type=_positive, help="poll period between bar closes (config execution.poll_sec)")
    p.add_argument("--ttl-sec", type=_positive, help="seconds a post-only order rests before cancel (config ttl_sec)")
    p.add_argument("--klines-limit", type=_count, default=1000,
                   help="closed bars of history to keep (raised to what the indicators need; default 1000)")
    p.add_argument("--taker-fallback", action=argparse.BooleanOptionalAction, default=None,
                   help="send the unfilled rest as MARKET after the ttl (config execution.taker_fallback)")
    p.add_argument("--state", default=env.get("STATE_FILE") or "run_state/state.json",
                   help="state file (R34; default: $STATE_FILE, else run_state/state.json). An absolute path under a "
                        "top-level folder that does not exist is refused (/data is the container's volume, not a "
                        "host folder)")
    p.add_argument("--trades-csv", default=env.get("TRADES_CSV") or None,
                   help="trade ledger (default: $TRADES_CSV, else trades_log.csv beside the state file)")
    p.add_argument("--decisions-csv", help="per-bar decision journal (default: decisions_log.csv beside the state)")
    p.add_argument("--once", action="store_true", help="one iteration (decide any newly closed bar), then exit")
    p.add_argument("--max-bars", type=_count, help="exit after deciding this many bars (rehearsals)")
    p.add_argument("--reset-risk", action="store_true", help="clear a latched drawdown breaker / daily pause")
    p.add_argument("--fresh-state", action="store_true",
                   help="allow a new session although the account shows orders of this executor")
    p.add_argument("--http-timeout", type=_positive, default=10.0, help="seconds per HTTP request (10)")
    p.add_argument("--recv-window-ms", type=_count, default=5000, help="recvWindow of signed requests (5000)")
    add_log_args(p)  # -v (level bar, debug), -vv (also HTTP libraries), --log-json
    add_metrics_args(p)  # --metrics-port (9109, 0 = off), --metrics-addr
    p.add_argument("--alertmanager-url", default=env.get("ALERTMANAGER_URL") or "",
                   help="post one notice per executed trade to this Alertmanager, e.g. http://127.0.0.1:9093 "
                        "(default: $ALERTMANAGER_URL; empty = no trade notices; docs/monitoring.md 'Alerts')")
    return p


def load_env() -> None:
    load_dotenv(os.environ.get("DOTENV_PATH") or ".env", override=False)
