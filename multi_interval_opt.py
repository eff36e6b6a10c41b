#!/usr/bin/env python3
"""Optimise the same search on several bar intervals and compare the best robust configs.

Give several candle files (--data ETHBTC_5m.csv ETHBTC_15m.csv ETHBTC_1h.csv) or one file
plus --resample 30m,1h (open=first, high=max, low=min, close=last, volume=sum, bins aligned
on the epoch; empty bins are not invented). Every interval uses the same train/test
windows, search space, seed and penalties as optimizer_cli.py, and prints/exports its best
robust config and metrics.

Comparable across intervals: the search space is in bars of --ref-interval (default 15m).
On an m-minute interval, trend_lookback and vol_window are scaled by ref/m (same hours),
step_allocation becomes 1-(1-step)^(m/ref) (same approach speed per hour); cooldown minutes,
gate days, bands and vol targets are unchanged. With the default random sampler, trial N
has the same (reference) parameters on every interval.

    python multi_interval_opt.py --data data/ETHBTC_15m.csv --resample 30m,1h,4h \\
        --train-start 2021-01-01 --train-end 2023-12-31 --test-start 2024-01-01 --test-end 2024-12-31 \\
        --n-random 500 --seed 1 --out out/multi.csv --out-dir out/multi --excel-out out/multi.xlsx
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ethbtc.cli import ArgumentParser, run_main
from ethbtc.errors import UserError
from ethbtc.fileio import check_outputs
from ethbtc.research import cli_common as C
from ethbtc.research import scoring

if TYPE_CHECKING:  # pandas/numba/Optuna load after parsing (``--help`` stays instant)
    from ethbtc.data.candles import Candles

SHOW = ["interval", "trial", "trend_kind", "trend_lookback", "lookback_hours", "vol_window", "step_allocation",
        "train_final_btc", "test_final_btc", "test_turns", "robust_score"]


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="multi_interval_opt.py", description=__doc__ + "\n" + C.SCORING_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_data_flags(p, multi=True)
    p.add_argument("--resample", metavar="LIST", help="with one --data file: also test these intervals, e.g. 30m,1h")
    p.add_argument("--ref-interval", default="15m", help="interval the search-space bar counts refer to (default 15m)")
    C.add_window_flags(p)
    C.add_search_flags(p)
    C.add_scoring_flags(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--out", help="summary CSV, one row per interval")
    o.add_argument("--out-dir", help="folder for trials_<interval>.csv and best_<interval>.json per interval")
    o.add_argument("--excel-out", help="Excel workbook: Summary plus the trials of each interval")
    return p


def load_intervals(args: argparse.Namespace) -> list[Candles]:
    from ethbtc.data.timeframes import interval_minutes
    from ethbtc.research.intervals import resample

    sets: list[Candles] = []
    for path in args.data:
        sets.append(C.load_data(path, None)[0])
    if args.resample:
        if len(sets) != 1:
            raise UserError("--resample works with exactly one --data file")
        targets = [interval_minutes(x) for x in args.resample.split(",") if x.strip()]
        if not targets:
            raise UserError(f"--resample {args.resample!r}: give intervals, e.g. 30m,1h")
        sets += [resample(sets[0], m) for m in targets if m != sets[0].interval_minutes]
    minutes = [c.interval_minutes for c in sets]
    if len(set(minutes)) != len(minutes):
        raise UserError(f"two inputs have the same interval ({sorted(minutes)}); give one file per interval")
    return sorted(sets, key=lambda c: c.interval_minutes)


def label(minutes: int) -> str:
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import pandas as pd

    from ethbtc.config import build_config
    from ethbtc.data.candles import load_candles
    from ethbtc.data.timeframes import interval_minutes
    from ethbtc.research.intervals import Scaler
    from ethbtc.research.runner import Job, run_job
    from ethbtc.research.trials import emit_config, row_params, write_csv, write_excel

    C.check_search_flags(args)
    check_outputs(args.out, args.excel_out, args.out_dir and Path(args.out_dir) / "best_check.json")
    ref = interval_minutes(args.ref_interval)
    if ref > 10080:  # lookbacks scale by ref/m: beyond a week they are typos that fail every trial
        raise UserError(f"--ref-interval {args.ref_interval!r}: at most 1w")
    loaded = C.load_base(args)
    base = build_config(loaded.flat() | {"bar_interval_minutes": None, "interval": None, "meta": loaded.meta})
    space = C.search_space(args, base)
    sets = load_intervals(args)
    bnb = load_candles(args.bnb_data) if args.bnb_data else None
    spans = {"train": (args.train_start, args.train_end), "test": (args.test_start, args.test_end)}
    rows: list[dict[str, Any]] = []
    sheets: dict[str, pd.DataFrame] = {}
    interrupted = False
    idle: list[str] = []  # intervals where no trial trades in its test window
    for candles in sets:
        m = candles.interval_minutes
        print(f"\n== {label(m)}: {len(candles.df)} bars ({candles.report.path})", file=sys.stderr, flush=True)
        C.warn_outside(candles, spans)
        job = Job(base, candles, bnb, spans, space, C.penalties(args), args.n_random, args.seed, args.sampler,
                  args.threads, args.chunk_size, args.top_quantile, early=C.early_stop(args),
                  progress=not args.no_progress, to_config=Scaler(ref, m),
                  label={"data": Path(candles.report.path).name, "ref_minutes": ref}, allow_idle=args.allow_no_trade)
        res = run_job(job)
        for line in res.warnings:
            print(f"warning: {label(m)}: {line}", file=sys.stderr)
        if res.best is None and res.idle:
            print(f"{label(m)}: no pick: {scoring.no_trade_message(len(res.frame))}", file=sys.stderr)
            idle.append(label(m))
            sheets[f"Trials {label(m)}"] = res.frame
            if args.out_dir:
                write_csv(res.frame, Path(args.out_dir) / f"trials_{label(m)}.csv")
            continue
        if res.best is None:
            if res.interrupted:
                interrupted = True
                break
            why = f" (first failure: {res.outcome.errors[0]})" if res.outcome.errors else ""
            raise UserError(f"{label(m)}: no completed trials{why}")
        b = res.best
        rows.append({"interval": label(m), "bar_minutes": m, **b.to_dict(),
                     "lookback_hours": b["trend_lookback"] * m / 60, "vol_window_hours": b["vol_window"] * m / 60,
                     "n_trials": len(res.frame)})
        sheets[f"Trials {label(m)}"] = res.frame
        if args.out_dir:
            out = Path(args.out_dir)
            write_csv(res.frame, out / f"trials_{label(m)}.csv")
            meta = {"source": "multi_interval_opt.py", "data": candles.report.path, "interval": label(m),
                    "ref_interval": args.ref_interval, "train": list(spans["train"]), "test": list(spans["test"]),
                    "chosen_on": res.chosen_on,
                    "seed": res.handle.seed, "trial": int(b["trial"]), "robust_score": float(b["robust_score"]),
                    "test_final_btc": float(b["test_final_btc"]), "penalties": job.penalties.as_dict()}
            emit_config(out / f"best_{label(m)}.json", base, row_params(b), m, meta)
        if res.interrupted:
            interrupted = True
            break
    summary = pd.DataFrame(rows)
    if summary.empty:
        if args.excel_out and sheets:
            write_excel(args.excel_out, sheets)
        return 130 if interrupted else 1
    print(summary[SHOW].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    print("  (each interval's pick is chosen on the test window: its test figures are in-sample for the pick)")
    if idle:
        print(f"  no pick on {', '.join(idle)}: no trial trades in the test window (see above)")
    if args.out:
        write_csv(summary, args.out)
        print(f"  summary CSV   -> {args.out}")
    if args.out_dir:
        print(f"  per interval  -> {args.out_dir}/trials_<interval>.csv, best_<interval>.json")
    if args.excel_out:
        write_excel(args.excel_out, {"Summary": summary, **sheets})
        print(f"  Excel         -> {args.excel_out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
