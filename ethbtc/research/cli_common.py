"""Command-line flags shared by optimizer_cli.py, multi_interval_opt.py and wf_pick.py.

Building the parsers imports only argparse-level modules (``--help`` answers in a blink);
config, data, Optuna and numba are imported by the functions that use them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..cli import number
from ..errors import UserError
from . import SAMPLERS, scoring

if TYPE_CHECKING:
    from ..config import Config
    from ..data.candles import Candles
    from .optuna_search import EarlyStop
    from .space import Space

SCORING_HELP = """Robust score (every term a share of the account: BTC figures divided by basis_btc;
costs from the test window):
  test_final - lambda_turns*(test_turns/turns_scale) - gap_penalty*max(0, train_final - test_final)
  - lambda_fees*test_fees - lambda_turnover*(test_turnover/100)
Units: test_final 1.05 = +5 %; test_fees 0.01 = 1 % of the account paid in fees; test_turnover =
traded notional / basis (8 round trips of the whole account = 16), counted per 100. The manual's
--lambda-turns 2 --turns-scale 800 --lambda-fees 2 --lambda-turnover 1 thus charges a trial with
12 turns, fees 0.8 % and turnover 8 about 0.03 + 0.016 + 0.08: costs tip the balance between
comparably good trials. A term that typically exceeds 10x the spread of the top trials' test
results is named in a warning with the lambda that would balance it.
Selection: a trial with 0 turns in its test window holds BTC and is never picked while any trial
trades (none trades: no pick, no config, unless --allow-no-trade); among the trading trials,
those whose test_final_btc is in the best --top-quantile fraction; best robust score (ties:
fewer test turns)."""


def add_data_flags(p: argparse.ArgumentParser, multi: bool = False) -> None:
    g = p.add_argument_group("data and config")
    if multi:
        g.add_argument("--data", nargs="+", required=True, metavar="FILE",
                       help="ETHBTC candle files (one per interval), or one file with --resample")
    else:
        g.add_argument("--data", required=True, help="ETHBTC candles (Binance/Vision CSV, OHLCV CSV, freqtrade JSON)")
    g.add_argument("--bnb-data", help="BNBBTC candles, for fees paid in BNB (SPEC R23)")
    g.add_argument("--config", help="base config: fees, risk, execution and unsearched strategy values")
    add_fee_model_flags(g)


def add_fee_model_flags(g: Any) -> None:
    """--pay-fees-in-bnb / --no-bnb / --start-bnb: the R23 fee model (override the config)."""
    m = g.add_mutually_exclusive_group()
    m.add_argument("--pay-fees-in-bnb", dest="pay_fees_in_bnb", action="store_true", default=None,
                   help="pay fees in BNB at the discount (SPEC R23; without --start-bnb the BNB wallet is "
                        "assumed kept funded)")
    m.add_argument("--no-bnb", dest="pay_fees_in_bnb", action="store_false",
                   help="do not pay fees in BNB (full rate, received asset)")
    g.add_argument("--start-bnb", type=number(float, 0.0), metavar="BNB",
                   help="finite BNB fee wallet at start (needs --bnb-data; 0 = assumed funded, SPEC R23)")


def fee_model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config overrides from the fee-model flags (only those given)."""
    out: dict[str, Any] = {}
    if getattr(args, "pay_fees_in_bnb", None) is not None:
        out["pay_fees_in_bnb"] = args.pay_fees_in_bnb
    if getattr(args, "start_bnb", None) is not None:
        out["start_bnb"] = args.start_bnb
    return out


def add_window_flags(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("train/test windows (UTC; a bare end date includes that day)")
    for name in ("--train-start", "--train-end", "--test-start", "--test-end"):
        g.add_argument(name, required=required, metavar="DATE")


def add_search_flags(p: argparse.ArgumentParser, n_default: int = 200) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--n-random", type=int, default=n_default,
                   help=f"completed trials wanted in the study (default {n_default}); a resumed study counts its earlier trials")
    g.add_argument("--seed", type=number(int, 0), help="random seed >= 0; same seed, same trials (default: drawn and recorded)")
    g.add_argument("--sampler", choices=SAMPLERS, default="random",
                   help="random (default, reproducible), tpe, or cmaes for a focused second stage around --config")
    g.add_argument("--search-space", metavar="FILE.json", help="override the default search space (see docs/research.md)")
    g.add_argument("--focus", type=float, metavar="W",
                   help="narrow every range to W (fraction of its width) around --config's values and fix choices "
                        "(default 0.2 with --sampler cmaes)")
    g.add_argument("--threads", type=int, default=0, help="worker processes (0 = all cores, default)")
    g.add_argument("--chunk-size", type=int, default=16, help="trials per batch sent to a worker (default 16)")
    g.add_argument("--early-stop", action="store_true", help="stop when the best robust score stops improving")
    g.add_argument("--patience", type=int, default=200, help="early stop after this many trials without improvement")
    g.add_argument("--min-improve", type=float, default=0.0, help="improvement that resets the patience count")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_scoring_flags(p: argparse.ArgumentParser) -> None:
    d = scoring.Penalties()
    g = p.add_argument_group("robust score", SCORING_HELP)
    g.add_argument("--lambda-turns", type=float, default=d.lambda_turns, help=f"default {d.lambda_turns}")
    g.add_argument("--turns-scale", type=float, default=d.turns_scale, help=f"default {d.turns_scale}")
    g.add_argument("--gap-penalty", type=float, default=d.gap_penalty, help=f"default {d.gap_penalty}")
    g.add_argument("--lambda-fees", type=float, default=d.lambda_fees, help=f"default {d.lambda_fees}")
    g.add_argument("--lambda-turnover", type=float, default=d.lambda_turnover, help=f"default {d.lambda_turnover}")
    g.add_argument("--top-quantile", type=float, default=0.2,
                   help="fraction of trading trials (by test final BTC) the pick is taken from (default 0.2)")
    g.add_argument("--allow-no-trade", action="store_true",
                   help="when no trial trades in its test window, still pick (and emit) the best BTC-holding one")


def penalties(args: argparse.Namespace) -> scoring.Penalties:
    return scoring.Penalties(args.lambda_turns, args.turns_scale, args.gap_penalty, args.lambda_fees,
                             args.lambda_turnover)


def check_search_flags(args: argparse.Namespace) -> None:
    if args.n_random < 1:
        raise UserError(f"--n-random must be at least 1, got {args.n_random}")
    if args.chunk_size < 1:
        raise UserError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if args.patience < 1:
        raise UserError(f"--patience must be at least 1, got {args.patience}")
    if not 0 < args.top_quantile <= 1:
        raise UserError(f"--top-quantile must be in (0, 1] (0.2 = best 20 %), got {args.top_quantile}")
    if args.focus is not None and not 0 < args.focus <= 1:
        raise UserError(f"--focus must be in (0, 1], got {args.focus}")


def early_stop(args: argparse.Namespace) -> EarlyStop | None:
    from .optuna_search import EarlyStop

    return EarlyStop(args.patience, args.min_improve) if args.early_stop else None


def search_space(args: argparse.Namespace, base: Config) -> Space:
    from .space import focus, load_space, validate

    space = load_space(args.search_space)
    width = args.focus if args.focus is not None else (0.2 if args.sampler == "cmaes" else None)
    if width is not None:
        if args.config is None:
            print("warning: --focus/cmaes without --config centres the search on the default config",
                  file=sys.stderr)
        space = focus(space, base, width)
    validate(space, base)
    return space


def load_base(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Config:
    from ..config import load_config

    return load_config(args.config, fee_model_overrides(args) | (overrides or {}))


def warn_outside(candles: Candles, spans: dict[str, tuple[str | None, str | None]]) -> None:
    """One warning line per train/test bound outside the data (the window is clipped to it)."""
    for name, (start, end) in spans.items():
        for line in candles.window_notes(start, end, f"--{name}-start", f"--{name}-end"):
            print(f"warning: {line}", file=sys.stderr)


def load_data(path: str, interval: int | None, bnb_path: str | None = None) -> tuple[Candles, Candles | None]:
    from ..data.candles import load_candles

    candles = load_candles(path, interval)
    for line in candles.report.warnings():
        print(f"warning: data: {line}", file=sys.stderr)
    bnb = load_candles(bnb_path, candles.interval_minutes) if bnb_path else None
    return candles, bnb
