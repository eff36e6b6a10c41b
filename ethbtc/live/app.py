"""``live_executor.py``: flags, environment, mode safety, wiring of the engine; exit codes.

``.env`` is loaded first (path from ``DOTENV_PATH``, default ``./.env``; real environment
variables win), so ``MODE``, ``SYMBOL``, ``STATE_FILE``, ``BINANCE_KEY``, ``BINANCE_SECRET`` and
``BINANCE_BASE_URL`` can live there. Bad input is one ``error:`` line and exit code 2. The
flags themselves are built by the light :mod:`ethbtc.live.args` (fast ``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli import stop_on_signals
from ..config import Config, load_config
from ..data.timeframes import binance_interval, interval_minutes
from ..errors import UserError
from ..fileio import check_outputs
from ..monitoring.alerting import TradeNotifier, check_alertmanager_url
from ..monitoring.health import HealthState
from ..monitoring.logs import setup_logging_from_args
from ..monitoring.metrics import BotMetrics
from ..monitoring.metrics_server import start_from_args
from ..strategy import EthBtcStrategy
from .args import MODES, build_parser, load_env
from .console import heartbeat, summary
from .engine import Engine, EngineOptions
from .errors import AuthError, ExchangeError
from .exchange import Exchange
from .ledger import DecisionJournal, TradeLedger
from .lock import InstanceLock
from .modes import resolve_base_url
from .monitor import Monitor
from .paper import PaperAccount
from .state import StateStore

log = logging.getLogger("ethbtc.live")


def resolve_config(args: argparse.Namespace) -> tuple[Config, str]:
    overrides: dict[str, Any] = {"poll_sec": args.poll_sec, "ttl_sec": args.ttl_sec,
                                 "taker_fallback": args.taker_fallback}
    cfg = load_config(args.params, overrides)
    conf_minutes = cfg.bar_minutes()
    if args.interval is not None:
        minutes = interval_minutes(args.interval)
        if conf_minutes is not None and minutes != conf_minutes:
            raise UserError(f"--interval {args.interval} does not match the config's bar interval "
                            f"({conf_minutes} minutes) in {args.params}")
    else:
        minutes = conf_minutes or 15
    interval = binance_interval(minutes)
    if cfg.strategy.bar_interval_minutes is None:
        cfg = cfg.with_overrides({"bar_interval_minutes": minutes})
    return cfg, interval


class ExchangeUnavailable(UserError):
    """The exchange kept failing where the executor cannot go on (exit code 1, not a usage error)."""

    exit_code = 1


def connect(mode: str, url: str, symbol: str, interval: str, args: argparse.Namespace) -> Exchange:
    key, secret = os.environ.get("BINANCE_KEY", "").strip(), os.environ.get("BINANCE_SECRET", "").strip()
    if mode != "dry" and not (key and secret):
        raise UserError(f"--mode {mode} needs BINANCE_KEY and BINANCE_SECRET (environment or .env)")
    ex = Exchange(url, symbol, key if mode != "dry" else None, secret if mode != "dry" else None,
                  timeout=args.http_timeout, recv_window_ms=args.recv_window_ms)
    try:
        ex.sync_time()
        ex.filters()
        ex.klines(interval, limit=2)
    except ExchangeError as exc:
        raise UserError(f"cannot use {url} for {symbol} {interval}: {exc}") from None
    if mode != "dry":
        try:
            ex.balances()  # a signed read: wrong keys fail here, in the first seconds
        except AuthError as exc:
            raise AuthError(f"{mode} keys rejected: {exc}") from None
        except ExchangeError as exc:
            raise UserError(f"signed request to {url} failed: {exc}") from None
    return ex


def check_state_folder(state_path: Path) -> None:
    """An absolute state path in a folder that does not exist is the container's path used on the
    host (the v3 .env's STATE_FILE=/data/state.json): creating /data would need root, and a state
    there is not the one the container keeps. One line that says so, instead of creating it."""
    folder = state_path.parent
    missing_top = state_path.is_absolute() and len(folder.parts) > 1 and not Path(*folder.parts[:2]).exists()
    if missing_top:  # e.g. /data on a host: only the container has it (deeper new folders are created)
        raise UserError(f"state folder {folder} does not exist (state file {state_path}); /data/state.json is the "
                        "path inside the Docker container, where ./run_state is mounted: on this machine use "
                        "STATE_FILE=run_state/state.json (or --state run_state/state.json), or create the folder")


def main(argv: Sequence[str] | None = None) -> int:
    load_env()
    args = build_parser().parse_args(argv)
    mode = str(args.mode).strip().lower()
    if mode not in MODES:
        raise UserError(f"--mode/MODE must be one of {', '.join(MODES)}, got {args.mode!r}")
    setup_logging_from_args(args, secrets=[os.environ.get("BINANCE_KEY"), os.environ.get("BINANCE_SECRET")])
    cfg, interval = resolve_config(args)
    url = resolve_base_url(mode, os.environ.get("BINANCE_BASE_URL"))
    state_path = Path(args.state)
    check_state_folder(state_path)
    trades_csv = Path(args.trades_csv or state_path.with_name("trades_log.csv"))
    decisions_csv = Path(args.decisions_csv or state_path.with_name("decisions_log.csv"))
    check_outputs(state_path, trades_csv, decisions_csv)  # bad paths fail before the exchange is touched
    am_url = check_alertmanager_url(args.alertmanager_url) if args.alertmanager_url.strip() else None
    strategy = EthBtcStrategy(cfg)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(stop_on_signals(stop))  # SIGTERM/SIGINT: finish or cancel the in-flight order, save, exit 0
        lock = InstanceLock(state_path).acquire()
        stack.callback(lock.release)
        # metrics first: a busy or bad port fails before any ledger or exchange is touched
        metrics = BotMetrics()
        health = HealthState(mode, cfg.bar_minutes() * 60.0)
        server = start_from_args(args, metrics.registry, health)
        if server is not None:
            stack.callback(server.stop)
            log.info("metrics and health on %s/metrics and %s/health", server.url, server.url)
        stack.callback(health.mark_stopped)
        market = connect(mode, url, args.symbol, interval, args)
        health.use_clock(lambda: market.now_ms() / 1000.0)  # bar ages on the exchange's time line
        store = StateStore(state_path)
        saved = store.load()
        account: Any = market
        paper: PaperAccount | None = None
        if mode == "dry":
            paper = PaperAccount.for_config(market, market.filters(), cfg.fees,
                                 saved.paper if saved else None, start_quote=cfg.risk.basis_btc)
            account = paper
        history = max(args.klines_limit, strategy.warmup_bars() + 1440 // cfg.bar_minutes())
        opts = EngineOptions(mode=mode, symbol=args.symbol, interval=interval, interval_ms=cfg.bar_minutes() * 60_000,
                             poll_sec=cfg.execution.poll_sec, ttl_sec=cfg.execution.ttl_sec,
                             taker_fallback=cfg.execution.taker_fallback, history_bars=history,
                             max_bars=1 if args.once else args.max_bars)
        engine = Engine(strategy, market, account, store, TradeLedger(trades_csv), DecisionJournal(decisions_csv),
                        opts, stop=stop)
        if paper is not None:
            engine.save_hooks.append(lambda st: setattr(st, "paper", paper.to_json()))
        quote = market.filters().quote
        engine.on_bar.append(lambda r: log.log(logging.DEBUG if r.catchup else logging.INFO, "%s", heartbeat(r, quote)))
        notifier = TradeNotifier(am_url) if am_url else None
        if notifier is not None:
            stack.callback(notifier.close)
            log.info("trade notices to Alertmanager %s", am_url)
        monitor = Monitor(engine, metrics, health, level_bar=args.verbose >= 1, notifier=notifier)
        log.info("live executor: mode=%s url=%s symbol=%s interval=%s params=%s state=%s history=%d bars",
                 mode, url, args.symbol, interval, args.params, state_path, history)
        try:
            state = engine.start(fresh_state=args.fresh_state, reset_risk=args.reset_risk)
            monitor.started()
            if args.once:
                engine.poll_once()
            else:
                engine.run()
        except ExchangeError as exc:
            raise ExchangeUnavailable(f"exchange error ({exc}); the state is saved and an interrupted bar "
                                      "is reconciled at the next start") from None
        if stop.is_set():
            log.info("stop requested: in-flight order finished or cancelled, state saved")
        engine.save()
        wealth = engine.wealth_of(account.balances())
        print(summary(state, wealth, len(engine.ledger.trade_ids), engine.bars_this_run, quote), flush=True)
        return 0
