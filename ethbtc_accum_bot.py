#!/usr/bin/env python3
"""ETH/BTC accumulation strategy: ``EthBtcStrategy`` plus the backtest, optimize and selftest commands.

The strategy (vectorised indicators + one compiled per-bar step) lives in ``ethbtc.strategy``
and is re-exported here, so ``from ethbtc_accum_bot import EthBtcStrategy`` is the one
decision path for backtests, optimisers and the live executor (SPEC R30).

    python ethbtc_accum_bot.py backtest --data data/ETHBTC_15m.csv --config configs/prod_live.json
    python ethbtc_accum_bot.py optimize --data data/ETHBTC_15m.csv --train-start ... --n-random 200
    python ethbtc_accum_bot.py selftest
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ethbtc.cli import ArgumentParser, number, run_main
from ethbtc.errors import UserError
from ethbtc.fileio import check_outputs

if TYPE_CHECKING:
    from ethbtc.backtest import BacktestResult
    from ethbtc.config import Config
    from ethbtc.data.candles import Candles
    from ethbtc.strategy import Decision, EthBtcStrategy

__all__ = ["EthBtcStrategy", "Decision", "main"]


def __getattr__(name: str) -> Any:
    """``EthBtcStrategy`` and ``Decision`` are imported on first use (``--help`` stays instant:
    pandas and numba load only when a command needs them)."""
    if name in ("EthBtcStrategy", "Decision"):
        from ethbtc import strategy

        return getattr(strategy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# CLI flag -> config key (flags override the file where given)
STRATEGY_FLAGS: list[tuple[str, str, type, str]] = [
    ("--strategy", "trend_kind", str, "trend kind: sma or roc"),
    ("--trend", "trend_lookback", int, "trend lookback in bars"),
    ("--flip-band-entry", "flip_band_entry", float, "entry band below trend (ratio)"),
    ("--flip-band-exit", "flip_band_exit", float, "exit band below trend (ratio)"),
    ("--vol-window", "vol_window", int, "realised volatility window (returns)"),
    ("--vol-adapt-k", "vol_adapt_k", float, "band widening per unit annualised vol"),
    ("--target-vol", "target_vol", float, "annualised vol target (0 = off)"),
    ("--min-mult", "min_mult", float, "lower clip of the vol multiplier"),
    ("--max-mult", "max_mult", float, "upper clip of the vol multiplier"),
    ("--cooldown-minutes", "cooldown_minutes", float, "minimum minutes between flips"),
    ("--step-allocation", "step_allocation", float, "share of the gap to target traded per bar"),
    ("--max-position", "max_position", float, "maximum ETH weight"),
    ("--rebalance-threshold-w", "rebalance_threshold_w", float, "weight dead band"),
    ("--gate-window-days", "gate_window_days", int, "regime gate daily ROC window (0 = off)"),
    ("--gate-roc-threshold", "gate_roc_threshold", float, "|daily ROC| that opens the gate"),
    ("--min-trade-btc", "min_trade_btc", float, "fixed minimum trade in BTC"),
    ("--min-trade-frac", "min_trade_frac", float, "minimum trade as a fraction of basis_btc"),
]
FEE_FLAGS: list[tuple[str, str, type, str]] = [
    ("--maker-fee", "maker_fee", float, "maker fee rate (sells), e.g. 0.001"),
    ("--taker-fee", "taker_fee", float, "taker fee rate (buys)"),
    ("--slippage-bps", "slippage_bps", float, "slippage in basis points per fill"),
    ("--bnb-discount", "bnb_discount", float, "fee discount when paying in BNB, e.g. 0.25"),
]


def _add_common(p: argparse.ArgumentParser, strategy_knobs: bool) -> None:
    g = p.add_argument_group("data and config")
    g.add_argument("--data", required=True, help="ETHBTC candles: Binance/Vision CSV, OHLCV CSV or freqtrade JSON")
    g.add_argument("--bnb-data", help="BNBBTC candles for fees paid in BNB (SPEC R23)")
    g.add_argument("--config", help="JSON config (flat or nested, // comments allowed)")
    g.add_argument("--basis-btc", type=float, help="account size in BTC (overrides config)")
    if strategy_knobs:
        s = p.add_argument_group("strategy (override the config)")
        for flag, key, typ, text in STRATEGY_FLAGS:
            s.add_argument(flag, dest=key, type=typ, help=text)
    f = p.add_argument_group("fees and slippage (override the config)")
    for flag, key, typ, text in FEE_FLAGS:
        f.add_argument(flag, dest=key, type=typ, help=text)
    m = f.add_mutually_exclusive_group()
    m.add_argument("--pay-fees-in-bnb", action="store_true",
                   help="pay fees in BNB at the discount (SPEC R23; without --start-bnb the wallet is assumed funded)")
    m.add_argument("--no-bnb", action="store_true", help="do not pay fees in BNB (full rate, received asset)")
    f.add_argument("--start-bnb", type=number(float, 0.0), metavar="BNB",
                   help="finite BNB fee wallet at start (needs --bnb-data; 0 = assumed kept funded, SPEC R23)")


def _overrides(args: argparse.Namespace, strategy_knobs: bool) -> dict[str, Any]:
    keys = [k for _, k, _, _ in FEE_FLAGS] + ([k for _, k, _, _ in STRATEGY_FLAGS] if strategy_knobs else [])
    out = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.basis_btc is not None:
        out["basis_btc"] = args.basis_btc
    if args.no_bnb:
        out["pay_fees_in_bnb"] = False
    if args.pay_fees_in_bnb:
        out["pay_fees_in_bnb"] = True
    if args.start_bnb is not None:
        out["start_bnb"] = args.start_bnb
    return out


def load_inputs(args: argparse.Namespace, cfg: Config) -> tuple[Candles, Candles | None]:
    from ethbtc.data.candles import load_candles

    candles = load_candles(args.data, cfg.bar_minutes())
    for line in candles.report.warnings():
        print(f"warning: data: {line}", file=sys.stderr)
    bnb = load_candles(args.bnb_data, candles.interval_minutes) if args.bnb_data else None
    return candles, bnb


def cmd_backtest(args: argparse.Namespace) -> int:
    from ethbtc.backtest import run_backtest
    from ethbtc.config import load_config
    from ethbtc.data.candles import Candles
    from ethbtc.reports import fmt_summary

    check_outputs(args.out, args.trades_out, args.json_out, args.excel_out, args.html_out)
    cfg = load_config(args.config, _overrides(args, True))
    candles, bnb = load_inputs(args, cfg)
    for line in candles.window_notes(args.start, args.end):
        print(f"warning: {line}", file=sys.stderr)
    window = candles.window(args.start, args.end)
    if len(window.df) < 2:
        raise UserError("the date window holds fewer than 2 bars")
    bnb_w = bnb if bnb is None else Candles(bnb.df, bnb.interval_minutes, bnb.report)
    result = run_backtest(cfg, window, bnb_w)
    result.summary["sample"] = sample_label(cfg.meta, window)
    print(f"ETH/BTC backtest  config={args.config or '(defaults)'}  data={args.data}")
    print("  parameters: " + ", ".join(f"{k}={v}" for k, v in cfg.flat().items()))
    print(fmt_summary(result.summary))
    _write_outputs(args, result, window)
    return 0


def sample_label(meta: dict[str, Any], window: Candles) -> str:
    """Is this backtest in-sample or out-of-sample for its config? Read from the config's
    ``meta.chosen_on`` spans (written by the optimisers and wf_pick)."""
    import pandas as pd

    spans = meta.get("chosen_on") if isinstance(meta, dict) else None
    if not spans:
        return "unknown: the config does not record the data it was chosen on"
    lo, hi = window.df.index[0], window.df.index[-1]
    try:
        seen = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in spans]
    except (TypeError, ValueError):
        return "unknown: the config's meta.chosen_on is not a list of [start, end] times"
    overlap = [(a, b) for a, b in seen if a <= hi and b >= lo]
    if not overlap:
        first, last = min(a for a, _ in seen), max(b for _, b in seen)
        return f"out-of-sample (the config was chosen on {first:%Y-%m-%d}..{last:%Y-%m-%d}, outside this window)"
    a, b = min(x for x, _ in overlap), max(y for _, y in overlap)
    return f"in-sample (this window overlaps {a:%Y-%m-%d}..{b:%Y-%m-%d}, which the config was chosen on)"


def _write_outputs(args: argparse.Namespace, result: BacktestResult, window: Candles) -> None:
    from ethbtc.reports import write_bars_csv, write_excel, write_json, write_trades_csv

    if args.out:
        write_bars_csv(result, args.out)
        print(f"  per-bar CSV   -> {args.out}")
    if args.trades_out:
        write_trades_csv(result, args.trades_out)
        print(f"  trades CSV    -> {args.trades_out}")
    if args.json_out:
        write_json(result.summary, args.json_out, {"config": result.config.flat()})
        print(f"  JSON summary  -> {args.json_out}")
    if args.excel_out:
        write_excel(result, args.excel_out)
        print(f"  Excel report  -> {args.excel_out}")
    if args.html_out:
        from ethbtc.htmlreport import write_backtest_html  # bokeh loads only when asked for

        size = write_backtest_html(result, args.html_out, window.report)
        print(f"  HTML report   -> {args.html_out} ({size / 1e6:.1f} MB, opens offline)")


def cmd_optimize(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from ethbtc.backtest import prepare_bnb
    from ethbtc.config import build_config, load_config
    from ethbtc.fileio import atomic_path, atomic_write_text
    from ethbtc.kernel import SPEC_VERSION
    from ethbtc.research.scoring import no_trade_message
    from ethbtc.search import Window, evaluate, sample

    check_outputs(args.out, args.excel_out, args.emit_config, args.html_out)
    base = load_config(args.config, _overrides(args, False))
    candles, bnb = load_inputs(args, base)
    for name in ("train", "test"):
        for line in candles.window_notes(getattr(args, f"{name}_start"), getattr(args, f"{name}_end"),
                                         f"--{name}-start", f"--{name}-end"):
            print(f"warning: {line}", file=sys.stderr)
    train, test = candles.window(args.train_start, args.train_end), candles.window(args.test_start, args.test_end)
    if test.df.index[0] <= train.df.index[-1]:
        print("warning: test window overlaps or precedes the train window", file=sys.stderr)
    w_train = Window.of(train, prepare_bnb(train, bnb) if bnb and base.fees.pay_fees_in_bnb else None)
    w_test = Window.of(test, prepare_bnb(test, bnb) if bnb and base.fees.pay_fees_in_bnb else None)
    rng = np.random.default_rng(args.seed)
    rows = []
    flat = base.flat()
    from tqdm import tqdm

    for i in tqdm(range(args.n_random), desc="optimize", unit="trial", disable=None):
        params = sample(rng)
        cfg = build_config(flat | params)
        tr, te = evaluate(cfg, w_train), evaluate(cfg, w_test)
        rows.append({"trial": i, **params, **{f"train_{k}": tr[k] for k in _METRICS}, **{f"test_{k}": te[k] for k in _METRICS},
                     "spec_version": SPEC_VERSION, "fill_model": base.execution.fill_model})
    res = pd.DataFrame(rows).sort_values(["test_final_btc", "test_turns"], ascending=[False, True], kind="stable")
    # a trial with no turn in its test window holds BTC: it is no strategy and never the pick
    # while any trial trades (none trades: no pick, no config unless --allow-no-trade)
    trading = res[res["test_turns"] > 0]
    pool = trading if not trading.empty or not args.allow_no_trade else res
    best = pool.iloc[0] if not pool.empty else None
    print(f"best of {len(res)} trials (by test final BTC; {len(res) - len(trading)} hold BTC with 0 test turns "
          f"and are not eligible; figures chosen on the test window are in-sample for the pick):")
    print(res.head(5)[["trial", "trend_kind", "trend_lookback", "flip_band_entry", "flip_band_exit",
                        "train_final_btc", "test_final_btc", "test_turns"]].to_string(index=False))
    if best is None:
        print(f"no pick: {no_trade_message(len(res))}", file=sys.stderr)
    else:
        print(f"pick: trial {int(best['trial'])}  test final {best['test_final_btc']:.6f} BTC  "
              f"test turns {int(best['test_turns'])}")
    if args.out:
        with atomic_path(args.out) as tmp:
            res.to_csv(tmp, index=False)
        print(f"  trials CSV    -> {args.out}")
    if args.excel_out:
        with atomic_path(args.excel_out) as tmp:
            res.to_excel(tmp, index=False, sheet_name="Trials")
        print(f"  Excel report  -> {args.excel_out}")
    if args.html_out:
        from ethbtc.htmlreport import (  # bokeh loads only when asked for
            search_report,
            searched_params,
            write_html,
        )

        notes = [f"{len(res)} random trials, seed {args.seed}, data {args.data}",
                 f"train {args.train_start}..{args.train_end} is in-sample; test {args.test_start}..{args.test_end} "
                 "is out-of-sample for each trial, but the pick is the best test final, so its test figures are "
                 "in-sample for the pick: verify it on a later window"]
        frame = res.assign(basis_btc=base.risk.basis_btc)
        layout = search_report(frame, searched_params(frame), "test_final_btc", None if best is None else best.name, None,
                               "ethbtc_accum_bot.py optimize: random search", notes)
        size = write_html("ethbtc_accum_bot.py optimize report", layout, args.html_out)
        print(f"  HTML report   -> {args.html_out} ({size / 1e6:.1f} MB, opens offline)")
    if args.emit_config and best is None:
        return 1
    if args.emit_config and best is not None:
        chosen = {k: best[k].item() if hasattr(best[k], "item") else best[k] for k in sample(np.random.default_rng(0))}
        cfg = build_config(flat | chosen | {"bar_interval_minutes": candles.interval_minutes})
        cfg.meta.update({"source": "ethbtc_accum_bot.py optimize", "seed": args.seed, "trial": int(best["trial"]),
                         "spec_version": SPEC_VERSION,
                         "chosen_on": [[str(w.df.index[0]), str(w.df.index[-1])] for w in (train, test)]})
        atomic_write_text(args.emit_config, cfg.to_json())
        print(f"  best config   -> {args.emit_config}")
    return 0


_METRICS = ["final_btc", "return_btc", "max_drawdown", "sharpe", "turns", "trades", "fees_btc", "turnover_btc"]


def cmd_selftest(args: argparse.Namespace) -> int:
    """End-to-end check on generated data; non-zero exit on any failed invariant."""
    import numpy as np

    from ethbtc.backtest import run_backtest
    from ethbtc.config import build_config
    from ethbtc.data.candles import Candles, load_candles
    from ethbtc.data.sample import ensure_sample

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        eth_path, bnb_path = ensure_sample(tmp, days=120)
        candles, bnb = load_candles(eth_path), load_candles(bnb_path)
        cfg = build_config({"step_allocation": 0.5, "pay_fees_in_bnb": True, "start_bnb": 0.5, "target_vol": 0.5})
        res = run_backtest(cfg, candles, bnb)
        b = res.bars
        if not np.isfinite(b["wealth_btc"]).all():
            failures.append("wealth has non-finite values")
        if ((b["target_w"] < 0) | (b["target_w"] > cfg.strategy.max_position + 1e-12)).any():
            failures.append("target weight outside [0, max_position]")
        if res.summary["trades"] == 0:
            failures.append("no trades on the sample data")
        free = build_config({"maker_fee": 0, "taker_fee": 0, "slippage_bps": 0, "fill_model": "next_open"})
        r0 = run_backtest(free, candles)
        eth_q, btc_q = r0.bars["eth"].to_numpy(), r0.bars["btc"].to_numpy()
        px_open, px_close = candles.df["open"].to_numpy(), candles.df["close"].to_numpy()
        value_open = btc_q + eth_q * px_open  # after the fill at this open: fill must not change value
        prev = np.concatenate([[free.risk.basis_btc], btc_q[:-1] + eth_q[:-1] * px_open[1:]])
        if not np.allclose(value_open, prev, rtol=1e-9):
            failures.append("zero-cost fills changed wealth")
        cut = len(candles.df) // 2
        half = run_backtest(cfg, Candles(candles.df.iloc[:cut], candles.interval_minutes, candles.report), bnb)
        if not (half.bars["reason"].to_numpy() == res.bars["reason"].to_numpy()[:cut]).all():
            failures.append("truncating future bars changed an earlier decision (look-ahead)")
        _ = px_close
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print("selftest: " + ("ok" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="ethbtc_accum_bot.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    bt = sub.add_parser("backtest", help="backtest one configuration")
    _add_common(bt, True)
    bt.add_argument("--start", help="window start (YYYY-MM-DD or ISO time, UTC)")
    bt.add_argument("--end", help="window end (a bare date includes that whole day)")
    bt.add_argument("--prefer-cli", action="store_true",
                    help="accepted for v1 command lines: flags always override the config (the v1 default)")
    o = bt.add_argument_group("outputs")
    o.add_argument("--out", help="per-bar CSV (SPEC R27)")
    o.add_argument("--trades-out", help="trades CSV (SPEC R28)")
    o.add_argument("--json-out", help="machine-readable summary JSON (SPEC R29)")
    o.add_argument("--excel-out", help="Excel workbook: Summary, Equity (chart), Trades")
    o.add_argument("--html-out", help="self-contained HTML report: price + levels + fills, weights, wealth vs "
                                      "HODL, drawdown, reason of every bar, summary (opens offline)")
    op = sub.add_parser("optimize", help="simple random search on a train/test split")
    _add_common(op, False)
    for name in ("--train-start", "--train-end", "--test-start", "--test-end"):
        op.add_argument(name, required=True, help="YYYY-MM-DD (UTC)")
    op.add_argument("--n-random", type=number(int, 1, 1_000_000), default=100,
                    help="number of random trials (default 100)")
    op.add_argument("--seed", type=number(int, 0), default=0, help="random seed for reproducible searches (default 0)")
    op.add_argument("--out", help="CSV with one row per trial")
    op.add_argument("--excel-out", help="Excel with the trials")
    op.add_argument("--emit-config", help="write the best trading trial as a config JSON")
    op.add_argument("--allow-no-trade", action="store_true",
                    help="when no trial trades in its test window, still emit the best BTC-holding one")
    op.add_argument("--html-out", help="self-contained HTML report: train vs test final, test final against "
                                       "each parameter, the pick (opens offline)")
    sub.add_parser("selftest", help="quick end-to-end check on generated data")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"backtest": cmd_backtest, "optimize": cmd_optimize, "selftest": cmd_selftest}[args.command](args)


if __name__ == "__main__":
    sys.exit(run_main(main))
