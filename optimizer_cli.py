#!/usr/bin/env python3
"""Search strategy parameters on a train window, score them on a test window, emit the pick.

Every trial is backtested (the compiled kernel of ethbtc_accum_bot.EthBtcStrategy) on both
windows; the robust score penalises turns, fees, turnover and a train/test gap; the pick
is the best robust score among the trials with the best test results (--top-quantile).

    python optimizer_cli.py --data data/ETHBTC_15m.csv --config configs/prod_live.json \\
        --train-start 2021-01-01 --train-end 2023-12-31 --test-start 2024-01-01 --test-end 2024-12-31 \\
        --n-random 1000 --seed 1 --out out/opt.csv --emit-config out/best.json

Persistent / distributed: add --storage sqlite:///out/opt.db (or a journal file path, or
postgresql+psycopg://user@host/db) and --study-name NAME. Re-running the same command resumes
the study; the same command on other machines with the same database joins it. --n-random
is the number of completed trials the study should end with. Ctrl-C stops cleanly (exit 130)
after writing the results of every completed trial.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ethbtc.cli import ArgumentParser, run_main
from ethbtc.fileio import check_outputs
from ethbtc.research import cli_common as C
from ethbtc.research import scoring

if TYPE_CHECKING:  # pandas/numba/Optuna load after parsing (``--help`` stays instant)
    from ethbtc.research.runner import Job, JobResult

SHOW = ["trial", "trend_kind", "trend_lookback", "flip_band_entry", "flip_band_exit", "cooldown_minutes",
        "train_final_btc", "test_final_btc", "test_turns", "robust_score"]


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="optimizer_cli.py", description=__doc__ + "\n" + C.SCORING_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_data_flags(p)
    C.add_window_flags(p)
    C.add_search_flags(p)
    C.add_scoring_flags(p)
    g = p.add_argument_group("persistence (Optuna storage)")
    g.add_argument("--storage", metavar="URL", help="sqlite:///file.db, postgresql://..., or a journal file path")
    g.add_argument("--study-name", help="study to create, resume or join (default ethbtc-optimizer)")
    g.add_argument("--fail-stale-minutes", type=float, metavar="N",
                   help="after a worker crashed: mark its trials still RUNNING after N minutes as failed "
                        "(only when every worker shares this clock and time zone)")
    o = p.add_argument_group("outputs")
    o.add_argument("--out", help="CSV, one row per completed trial (every parameter its own column)")
    o.add_argument("--excel-out", help="Excel workbook: Trials, Best, Settings")
    o.add_argument("--no-excel", action="store_true", help="do not write Excel even if --excel-out is given")
    o.add_argument("--emit-config", help="write the pick as a complete config JSON (backtest/live read it)")
    o.add_argument("--html-out", help="self-contained HTML report: train vs test final, robust score against each "
                                      "parameter, the pick, penalty terms (opens offline)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ethbtc.research.runner import Job, run_job

    C.check_search_flags(args)
    check_outputs(args.out, None if args.no_excel else args.excel_out, args.emit_config, args.html_out)
    pen = C.penalties(args)
    base = C.load_base(args)
    space = C.search_space(args, base)
    candles, bnb = C.load_data(args.data, base.bar_minutes(), args.bnb_data)
    spans = {"train": (args.train_start, args.train_end), "test": (args.test_start, args.test_end)}
    C.warn_outside(candles, spans)
    job = Job(base, candles, bnb, spans, space, pen, args.n_random, args.seed, args.sampler, args.threads,
              args.chunk_size, args.top_quantile, args.storage, args.study_name, C.early_stop(args),
              not args.no_progress, args.fail_stale_minutes, label={"data": Path(args.data).name},
              allow_idle=args.allow_no_trade)
    train, test = candles.window(*spans["train"]), candles.window(*spans["test"])
    if test.df.index[0] <= train.df.index[-1]:
        print("warning: test window overlaps or precedes the train window", file=sys.stderr)
    res = run_job(job)
    report(res, args)
    write_outputs(res, args, job)
    if res.interrupted:
        return 130
    return 1 if res.idle and res.best is None and args.emit_config else 0


def report(res: JobResult, args: argparse.Namespace) -> None:
    o = res.outcome
    print(f"optimizer: {len(res.frame)} completed trials in the study ({o.completed} this run, "
          f"{o.failed} failed) -- {o.reason.replace('_', ' ')}; seed {res.handle.seed}, sampler {args.sampler}")
    if o.errors:
        print(f"  first failure: {o.errors[0]}", file=sys.stderr)
    if res.frame.empty:
        print("  no completed trials")
        return
    for line in res.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(res.frame.head(5)[SHOW].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    idle = int((res.frame["test_turns"] == 0).sum())
    if res.best is None:
        print(f"no pick: {scoring.no_trade_message(len(res.frame))}", file=sys.stderr)
        return
    b = res.best
    hold = "  (holds BTC: --allow-no-trade)" if int(b["test_turns"]) == 0 else ""
    print(f"pick: trial {int(b['trial'])}  robust {b['robust_score']:.5f}  test final {b['test_final_btc']:.6f} BTC "
          f"(train {b['train_final_btc']:.6f})  test turns {int(b['test_turns'])}  "
          f"(chosen on the test window: in-sample for the pick){hold}")
    if idle:
        print(f"  {idle} of {len(res.frame)} trials hold BTC (0 test turns) and were not eligible")


def write_outputs(res: JobResult, args: argparse.Namespace, job: Job) -> None:
    import pandas as pd

    from ethbtc.research.study import redact
    from ethbtc.research.trials import emit_config, row_params, write_csv, write_excel

    if args.out:
        write_csv(res.frame, args.out)
        print(f"  trials CSV    -> {args.out}")
    if args.excel_out and not args.no_excel:
        settings = {k: str(v) for k, v in vars(args).items() if k != "storage"} | {"storage": str(redact(args.storage))}
        sheets = {"Trials": res.frame, "Best": res.frame[res.frame["selected"]] if res.best is not None else res.frame,
                  "Settings": pd.DataFrame(sorted(settings.items()), columns=["setting", "value"])}
        write_excel(args.excel_out, sheets)
        print(f"  Excel         -> {args.excel_out}")
    if args.html_out and not res.frame.empty:
        write_html_report(res, args, job)
    if args.emit_config:
        if res.best is None:
            if not res.idle:
                print("  no completed trial: config not written", file=sys.stderr)
            return
        b = res.best
        meta = {
            "source": "optimizer_cli.py", "data": str(args.data), "train": list(job.spans["train"]),
            "test": list(job.spans["test"]), "chosen_on": res.chosen_on, "seed": res.handle.seed, "sampler": args.sampler,
            "study": res.handle.name, "storage": redact(args.storage), "trial": int(b["trial"]),
            "n_trials": len(res.frame), "robust_score": float(b["robust_score"]),
            "train_final_btc": float(b["train_final_btc"]), "test_final_btc": float(b["test_final_btc"]),
            "test_turns": int(b["test_turns"]), "penalties": job.penalties.as_dict(), "top_quantile": args.top_quantile,
        }
        emit_config(args.emit_config, job.base, row_params(b), res.bar_minutes, meta)
        print(f"  pick config   -> {args.emit_config}")


def write_html_report(res: JobResult, args: argparse.Namespace, job: Job) -> None:
    from ethbtc.htmlreport import (  # bokeh loads only when asked for
        search_report,
        searched_params,
        write_html,
    )
    from ethbtc.research.scoring import penalty_frame

    tr, te = job.spans["train"], job.spans["test"]
    notes = [f"{len(res.frame)} trials, seed {res.handle.seed}, sampler {args.sampler}, data {Path(args.data).name}",
             f"train {tr[0]}..{tr[1]} is in-sample; test {te[0]}..{te[1]} is out-of-sample for each trial, but the "
             f"pick is selected on it (best robust score among the top {args.top_quantile:g} by test final), so the "
             "pick's test figures are in-sample for the pick: verify it on a later window",
             "robust = test final - penalties (turns, train/test gap, fees, turnover), all relative to basis_btc"]
    best = res.frame.index[res.frame["selected"]][0] if res.best is not None else None
    layout = search_report(res.frame, searched_params(res.frame), "robust_score", best,
                           penalty_frame(res.frame, job.penalties), "optimizer_cli.py: parameter search", notes)
    size = write_html("optimizer_cli.py report", layout, args.html_out)
    print(f"  HTML report   -> {args.html_out} ({size / 1e6:.1f} MB, opens offline)")


if __name__ == "__main__":
    sys.exit(run_main(main))
