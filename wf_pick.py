#!/usr/bin/env python3
"""Pick a robust parameter family from optimiser runs, or by walk-forward analysis.

Runs mode: stack optimizer_cli.py trial CSVs (different seeds, windows or machines), drop
costly rows per run (--q-fees/--q-turnover quantiles), group rows into families (trend kind,
lookback bucket, cooldown bucket, rounded bands and step), keep families seen in at least
--min-occurs runs, rank by mean test result minus penalties (dispersion shown), and emit the
family's representative (member closest to the family median) as a complete config.

    python wf_pick.py --runs out/opt_a.csv out/opt_b.csv --config configs/prod_live.json \\
        --min-occurs 2 --emit-config out/pick.json --data data/ETHBTC_15m.csv

Walk-forward mode (--walk-forward --data FILE): rolling folds of --train-days/--test-days
moved by --step-days; each fold re-optimises on its training period only (fit + validation
split, --val-frac) and trades the pick on its test period; prints the stitched
out-of-sample equity and the family that survives (is among --top-k) in most folds.

With --data, an overfitting report is added: probability of backtest overfitting (CSCV over
the candidate families' daily returns) and the deflated Sharpe ratio of the pick.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ethbtc.cli import ArgumentParser, number, run_main
from ethbtc.errors import UserError
from ethbtc.fileio import check_outputs
from ethbtc.research import cli_common as C
from ethbtc.research import scoring

if TYPE_CHECKING:  # the modules below load pandas/numba/Optuna: imported where used, after parsing
    import numpy as np
    import pandas as pd

    from ethbtc.config import Config
    from ethbtc.data.candles import Candles
    from ethbtc.research import families as F

DAYS = number(float, 0, 36_500, above=True)  # fold lengths; 1e300 days overflowed pandas' Timedelta
SHOW = ["family", "runs", "members", "mean_test_final", "std_test_final", "min_test_final", "max_test_final",
        "mean_turns", "family_score"]


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="wf_pick.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", metavar="CSV", help="optimizer_cli.py trial CSVs (runs mode)")
    p.add_argument("--config", help="base config: fees, risk, execution and unsearched values of the emitted config")
    f = p.add_argument_group("families")
    f.add_argument("--q-fees", type=float, default=0.9, help="per run, keep rows with fees <= this quantile (default 0.9)")
    f.add_argument("--q-turnover", type=float, default=0.9, help="same for turnover (default 0.9; 1 = off)")
    f.add_argument("--penalty-turns", type=float, default=0.001, help="rank penalty per test turn (default 0.001)")
    f.add_argument("--penalty-fees", type=float, default=1.0, help="rank penalty per unit of fees/basis (default 1)")
    f.add_argument("--penalty-turnover", type=float, default=0.0,
                   help="rank penalty per 100 units of turnover/basis (turnover 16 = 8 round trips of the account)")
    f.add_argument("--lb-bucket", type=int, default=24, help="trend lookback bucket width in bars (default 24)")
    f.add_argument("--cd-bucket", type=float, default=120, help="cooldown bucket width in minutes (default 120)")
    f.add_argument("--band-round", type=float, default=0.005,
                   help="round entry/exit bands to this step (default 0.005); an integer >= 1 is a number of "
                        "decimal places (the v1 meaning: 4 = 0.0001)")
    f.add_argument("--step-round", type=float, default=0.1,
                   help="round step_allocation to this step (default 0.1); an integer >= 1 is decimal places")
    f.add_argument("--strict-families", action="store_true",
                   help="when no family recurs with these buckets, fail instead of coarsening them step by step")
    f.add_argument("--top-k", type=int, default=10, help="families shown; in walk-forward, survivors per fold (default 10)")
    f.add_argument("--min-occurs", type=int, default=2, help="a family must appear in this many runs (default 2)")
    f.add_argument("--require-costs", action="store_true", help="fail unless the runs carry fee/turnover columns")
    f.add_argument("--require-var", action="store_true", help="families need at least two members")
    f.add_argument("--family-index", type=int, default=0, help="emit the family at this rank (0 = best)")
    w = p.add_argument_group("walk-forward and overfitting report")
    w.add_argument("--walk-forward", action="store_true", help="run rolling folds on --data instead of reading --runs")
    w.add_argument("--data", help="ETHBTC candles (walk-forward, and the overfitting report)")
    w.add_argument("--bnb-data", help="BNBBTC candles for fees paid in BNB")
    C.add_fee_model_flags(w)
    w.add_argument("--start", help="use data from this date (UTC)")
    w.add_argument("--end", help="use data up to this date (UTC, inclusive)")
    w.add_argument("--train-days", type=DAYS, default=365, help="training period per fold (default 365)")
    w.add_argument("--test-days", type=DAYS, default=90, help="test period per fold (default 90)")
    w.add_argument("--step-days", type=DAYS, help="fold step (default: --test-days, contiguous tests)")
    w.add_argument("--val-frac", type=float, default=0.3, help="share of each training period used to score (default 0.3)")
    w.add_argument("--pbo-splits", type=int, default=16, help="CSCV blocks (even; default 16)")
    w.add_argument("--pbo-configs", type=number(int, 2), default=64, help="at most this many candidate families in the PBO (default 64)")
    w.add_argument("--no-overfit", action="store_true", help="skip the overfitting report")
    C.add_search_flags(p, n_default=100)
    C.add_scoring_flags(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--out-csv", help="families table (walk-forward: survival table)")
    o.add_argument("--folds-out", help="walk-forward: one row per fold")
    o.add_argument("--oos-out", help="walk-forward: stitched out-of-sample equity per bar")
    o.add_argument("--excel-out", help="Excel workbook with every table")
    o.add_argument("--emit-config", help="write the picked family's representative as a complete config JSON")
    o.add_argument("--html-out", help="self-contained HTML report: families with their spread, stitched "
                                      "out-of-sample equity vs HODL (--walk-forward), PBO logit histogram, "
                                      "deflated Sharpe (opens offline)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ethbtc.research import families as F

    check_outputs(args.out_csv, args.folds_out, args.oos_out, args.excel_out, args.emit_config, args.html_out)
    band, note_b = F.decimal_places(args.band_round, "--band-round")
    step, note_s = F.decimal_places(args.step_round, "--step-round")
    for note in (note_b, note_s):
        if note:
            print(f"note: {note}", file=sys.stderr)
    rules = F.FamilyRules(args.lb_bucket, args.cd_bucket, band, step)
    pen = F.FamilyPenalties(args.penalty_turns, args.penalty_fees, args.penalty_turnover)
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}")
    if args.walk_forward:
        return walk_forward(args, rules, pen)
    if not args.runs:
        raise UserError("give --runs CSV... (optimizer_cli.py outputs), or --walk-forward with --data")
    return pick_from_runs(args, rules, pen)


def pick_from_runs(args: argparse.Namespace, rules: F.FamilyRules, pen: F.FamilyPenalties) -> int:
    import pandas as pd

    from ethbtc.config import load_config
    from ethbtc.research import families as F
    from ethbtc.research.runner import chosen_on_spans
    from ethbtc.research.trials import row_params

    base = load_config(args.config, C.fee_model_overrides(args))
    raw = F.load_runs(args.runs)
    n_runs = raw["run"].nunique()
    if n_runs < args.min_occurs:
        argv = [a for a in sys.argv[1:]]
        if "--min-occurs" in argv:
            i = argv.index("--min-occurs")
            del argv[i:i + 2]
        raise UserError(f"{n_runs} run(s) given but --min-occurs {args.min_occurs} keeps only families seen in "
                        f"{args.min_occurs} runs: add optimizer runs (other seeds or windows), or pick within "
                        f"the runs given: python wf_pick.py {' '.join(shlex.quote(a) for a in argv)} "
                        f"--min-occurs {n_runs}")
    interval = F.check_single_interval(raw) or base.bar_minutes()
    n_trials = len(raw)
    trading, n_idle = F.drop_idle(raw)
    if "test_turns" in raw.columns and not (raw["test_turns"] > 0).any():
        if not args.allow_no_trade:
            raise UserError(scoring.no_trade_message(n_trials))
        print(f"warning: no trial trades in its test window; --allow-no-trade: picking among {n_trials} "
              "BTC-holding trials", file=sys.stderr)
    elif n_idle:
        print(f"wf_pick: {n_idle} of {n_trials} trials hold BTC (0 test turns) and are left out")
    rows = F.cost_filter(trading, args.q_fees, args.q_turnover, args.require_costs)
    asked = rules
    if args.strict_families:
        rows = F.add_family_keys(rows, rules)
        fams = F.rank_families(rows, pen, args.min_occurs, args.require_var)
    else:
        rules, rows, fams = F.coarsen_until_recurring(rows, rules, pen, args.min_occurs, args.require_var,
                                                        args.top_k)
    n_families = F.add_family_keys(trading, rules)["family"].nunique()
    if rules != asked and not fams.empty:
        print(f"note: no family recurs in >= {args.min_occurs} runs with {F.rules_flags(asked)}; families "
              f"matched with the finest coarser buckets where {len(fams)} do: {F.rules_flags(rules)} "
              f"(--strict-families to refuse instead)", file=sys.stderr)
    print(f"wf_pick: {n_trials} trials in {raw['run'].nunique()} runs, {len(rows)} trading after cost filters, "
          f"{n_families} families, {len(fams)} seen in >= {args.min_occurs} runs")
    if fams.empty:
        raise UserError(f"no family appears in at least {args.min_occurs} runs"
                        f"{' with two members' if args.require_var else ''}; try --min-occurs 1 or coarser buckets")
    print(fams.head(args.top_k)[SHOW].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    print("  (families are ranked on the runs' test windows: these figures are in-sample for the pick)")
    if not 0 <= args.family_index < len(fams):
        raise UserError(f"--family-index {args.family_index} is out of range (0..{len(fams) - 1})")
    chosen = fams.iloc[args.family_index]
    for line in F.pick_warnings(n_trials, n_families, chosen):
        print(f"warning: {line}", file=sys.stderr)
    rep = F.representative(F.family_members(rows, chosen["family"]), rows)
    print(f"pick: family #{args.family_index} {chosen['family']} -- representative trial {rep.get('trial', '?')} "
          f"of run {rep['run']}")
    reps = [F.representative(F.family_members(rows, f), rows) for f in fams["family"]]
    report, logits = ({}, None) if args.no_overfit or not args.data else overfit_report(
        args, base, interval, reps, args.family_index, n_families, None)
    meta = {"source": "wf_pick.py", "runs": [Path(r).name for r in args.runs], "family": chosen["family"],
            "family_rank": args.family_index, "family_stats": _plain(chosen.to_dict()),
            "representative": {"run": rep["run"], "trial": _plain(rep.get("trial"))},
            "rules": F.rules_dict(rules, pen), "min_occurs": args.min_occurs,
            "chosen_on": chosen_on_spans(raw), **report}
    sheets = {"Families": fams, "Members": rows[rows["family"] == chosen["family"]]}
    finish(args, base, row_params(rep), interval, meta, fams, sheets, report)
    if args.html_out:
        shown = fams.head(max(args.top_k, args.family_index + 1))
        table = pd.DataFrame({"family": shown["family"], "center": shown["mean_test_final"],
                              "lo": shown["min_test_final"], "hi": shown["max_test_final"],
                              "std": shown["std_test_final"]})
        notes = [f"{n_trials} trials in {raw['run'].nunique()} runs ({', '.join(Path(r).name for r in args.runs)}); "
                 f"{len(fams)} families seen in >= {args.min_occurs} runs; ranked by mean test final - penalties",
                 "test finals are out-of-sample for each trial, but the ranking selects on them: the pick's figures "
                 "are in-sample for the pick; verify it on a later window"]
        write_report(args, table, chosen["family"], "test final / basis over its members (dot: mean, bar: +-1 std, "
                     "line: min..max)", None, logits, report, notes)
    return 0


def write_report(args: argparse.Namespace, table: pd.DataFrame, pick: str, spread: str, equity: pd.DataFrame | None,
                 logits: np.ndarray | None, report: dict[str, Any], notes: list[str]) -> None:
    from ethbtc.htmlreport import pick_report, write_html  # bokeh loads only when asked for

    title = "wf_pick.py --walk-forward" if args.walk_forward else "wf_pick.py: family pick"
    layout = pick_report(table, pick, spread, title, equity, logits, report.get("overfit"), notes)
    size = write_html(title, layout, args.html_out)
    print(f"  HTML report   -> {args.html_out} ({size / 1e6:.1f} MB, opens offline)")


def walk_forward(args: argparse.Namespace, rules: F.FamilyRules, pen: F.FamilyPenalties) -> int:
    import pandas as pd

    from ethbtc.config import load_config
    from ethbtc.research import families as F
    from ethbtc.research import walkforward as W
    from ethbtc.research.runner import Job
    from ethbtc.research.trials import row_params, write_csv

    if not args.data:
        raise UserError("--walk-forward needs --data")
    C.check_search_flags(args)
    base = load_config(args.config, C.fee_model_overrides(args))
    candles, bnb = C.load_data(args.data, base.bar_minutes(), args.bnb_data)
    for line in candles.window_notes(args.start, args.end):
        print(f"warning: {line}", file=sys.stderr)
    candles = candles.window(args.start, args.end)
    last_close = candles.df.index[-1] + pd.Timedelta(minutes=candles.interval_minutes)
    folds = W.make_folds(candles.df.index[0], last_close, args.train_days, args.test_days,
                         args.step_days or args.test_days)
    job = Job(base, candles, bnb, {}, C.search_space(args, base), C.penalties(args), args.n_random, args.seed,
              args.sampler, args.threads, args.chunk_size, args.top_quantile, early=C.early_stop(args),
              progress=not args.no_progress, label={"data": Path(args.data).name})
    wf = W.run_walk_forward(job, folds, args.val_frac, rules, pen, args.top_k, 2 if args.require_var else 1)
    folds_df = pd.DataFrame([{
        "fold": r.fold.index, "train_start": r.fold.train_start, "test_start": r.fold.test_start,
        "test_end": r.fold.test_end, "picked_trial": int(r.best["trial"]),
        "picked_family": r.trials.loc[r.trials["trial"] == r.best["trial"], "family"].iloc[0],
        "validation_robust_score": r.best["robust_score"], **r.oos_summary} for r in wf.folds])
    print(folds_df.drop(columns=["train_start", "test_end"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    stats = W.oos_stats(wf)
    print(f"stitched OOS: {stats['folds']} folds {stats['oos_start'][:10]}..{stats['oos_end'][:10]}  "
          f"return {stats['oos_return']:+.2%} (ETH-HODL {stats['eth_hodl_return']:+.2%}, BTC-HODL +0.00%)  "
          f"max drawdown {stats['oos_max_drawdown']:.2%}  Sharpe {stats['oos_sharpe']:.2f}")
    print(wf.families.head(args.top_k).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    members = W.all_members(wf)
    rep = F.representative(F.family_members(members, wf.pick_family), members)
    surv = wf.families.iloc[0]
    print(f"surviving family: {wf.pick_family} ({int(surv['folds_survived'])} of {len(folds)} folds)")
    report: dict[str, Any] = {}
    logits = None
    if not args.no_overfit:
        reps = [F.representative(F.family_members(members, f), members) for f in wf.families["family"]]
        oos = candles.window(stats["oos_start"], stats["oos_end"])
        report, logits = overfit_report(args, base, candles.interval_minutes, reps, 0, members["family"].nunique(),
                                        (oos, bnb))
    meta = {"source": "wf_pick.py --walk-forward", "data": str(args.data), "seed": args.seed,
            "folds": {"train_days": args.train_days, "test_days": args.test_days,
                      "step_days": args.step_days or args.test_days, "val_frac": args.val_frac, "n": len(folds)},
            "chosen_on": [[str(candles.df.index[0]), str(candles.df.index[-1])]],
            "family": wf.pick_family, "folds_survived": int(surv["folds_survived"]), "oos": stats,
            "complete": not wf.interrupted,
            "rules": F.rules_dict(rules, pen), **report}
    if args.folds_out:
        write_csv(folds_df, args.folds_out)
        print(f"  folds CSV     -> {args.folds_out}")
    if args.oos_out:
        write_csv(wf.equity.rename("oos_equity").rename_axis("time").reset_index(), args.oos_out)
        print(f"  OOS equity    -> {args.oos_out}")
    daily = wf.equity.groupby(wf.equity.index.floor("D")).last()
    sheets = {"Survival": wf.families, "Folds": folds_df.assign(**{c: folds_df[c].astype(str) for c in
                                                                 ("train_start", "test_start", "test_end")}),
              "OOS equity (daily)": daily.rename("oos_equity").rename_axis("day").reset_index().assign(
                  day=lambda d: d["day"].astype(str))}
    finish(args, base, row_params(rep), candles.interval_minutes, meta, wf.families, sheets, report)
    if args.html_out:
        per_fold = pd.DataFrame([{"family": f.family, "score": f.family_score} for r in wf.folds
                                 for f in r.survivors.itertuples()])
        g = per_fold.groupby("family")["score"]
        shown = wf.families.head(args.top_k)
        table = pd.DataFrame({"family": shown["family"], "center": shown["family"].map(g.mean()),
                              "lo": shown["family"].map(g.min()), "hi": shown["family"].map(g.max()),
                              "std": shown["family"].map(g.std(ddof=1)),
                              "label": [f"{f} ({int(k)}/{len(wf.folds)} folds)" for f, k in
                                        zip(shown["family"], shown["folds_survived"], strict=True)]})
        equity = pd.DataFrame({"strategy": wf.equity, "btc_hodl": 1.0,
                               "eth_hodl": W.eth_hodl_stitched(wf, candles).reindex(wf.equity.index)})
        notes = [f"{len(wf.folds)} folds: train {args.train_days:g} days (fit + last {args.val_frac:g} to score), "
                 f"test {args.test_days:g} days; seed {args.seed}; data {Path(args.data).name}",
                 f"stitched equity: out-of-sample (each fold's pick on test bars its search never saw): return "
                 f"{stats['oos_return']:+.2%}, ETH-HODL {stats['eth_hodl_return']:+.2%}, max drawdown "
                 f"{stats['oos_max_drawdown']:.2%}",
                 "families: ranked by folds survived (top-k of a fold), then mean in-sample rank; the surviving "
                 "family is chosen on the test folds too, so it is in-sample for the pick"]
        write_report(args, table, wf.pick_family, "validation family score in the folds it survived (dot: mean, "
                     "bar: +-1 std, line: min..max)", equity, logits, report, notes)
    return 130 if wf.interrupted else 0


def overfit_report(args: argparse.Namespace, base: Config, interval: int | None, reps: list[pd.Series],
                   pick_index: int, n_families: int, data: tuple[Candles, Candles | None] | None
                   ) -> tuple[dict[str, Any], np.ndarray | None]:
    """PBO (CSCV) over the candidate families and the deflated Sharpe ratio of the pick, with the
    CSCV logits (for the HTML report's histogram)."""
    import numpy as np

    from ethbtc.backtest import prepare_bnb
    from ethbtc.config import build_config
    from ethbtc.research import overfit as O
    from ethbtc.research.trials import row_params

    if data is None:
        candles, bnb = C.load_data(args.data, interval, args.bnb_data)
        candles = candles.window(args.start, args.end)
    else:
        candles, bnb = data
    if len(reps) < 2:
        print("overfitting report: fewer than two candidate families, skipped")
        return {}, None
    idx = list(range(len(reps)))
    if len(idx) > args.pbo_configs:
        rng = np.random.default_rng(0)
        others = [i for i in idx if i != pick_index]
        idx = sorted([pick_index, *rng.choice(others, args.pbo_configs - 1, replace=False).tolist()])
    configs = [build_config(base.flat() | row_params(reps[i]) | {"bar_interval_minutes": candles.interval_minutes,
                                                                  "interval": None}) for i in idx]
    bnb_px = prepare_bnb(candles, bnb) if bnb is not None and base.fees.pay_fees_in_bnb else None
    R = O.daily_return_matrix(configs, candles, bnb_px)
    pick_col = idx.index(pick_index)
    try:
        pbo = O.cscv_pbo(R.to_numpy(), args.pbo_splits)
    except UserError as exc:
        print(f"overfitting report: PBO skipped ({exc})")
        return {}, None
    sd = R.std(ddof=1).replace(0.0, np.nan)
    srs = (R.mean() / sd).to_numpy()
    dsr = O.deflated_sharpe(R.iloc[:, pick_col].to_numpy(), srs, max(n_families, len(idx)), 365.0)
    print(f"overfitting: PBO {pbo.pbo:.2f} (CSCV, {pbo.n_candidates} candidate families, {pbo.n_periods} days, "
          f"{pbo.n_splits} blocks, {pbo.n_combinations} splits; P(OOS loss of IS best) {pbo.prob_oos_loss:.2f})")
    print(f"             deflated Sharpe {dsr.dsr:.2f} (pick's Sharpe {dsr.sharpe_annual:.2f}/yr vs expected max "
          f"{dsr.sr0 * np.sqrt(365):.2f}/yr of {dsr.n_trials} trials; skew {dsr.skew:.2f}, kurtosis {dsr.kurtosis:.2f})")
    return {"overfit": {"pbo": pbo.pbo, "pbo_candidates": pbo.n_candidates, "pbo_days": pbo.n_periods,
                        "pbo_splits": pbo.n_splits, "prob_oos_loss": pbo.prob_oos_loss,
                        "deflated_sharpe": dsr.dsr, "sharpe_annual": dsr.sharpe_annual,
                        "expected_max_sharpe_annual": dsr.sr0 * float(np.sqrt(365)), "dsr_trials": dsr.n_trials,
                        "period": [str(candles.df.index[0]), str(candles.df.index[-1])]}}, pbo.logits


def finish(args: argparse.Namespace, base: Config, params: dict[str, Any], interval: int | None,
           meta: dict[str, Any], table: pd.DataFrame, sheets: dict[str, pd.DataFrame], report: dict[str, Any]) -> None:
    import pandas as pd

    from ethbtc.research.trials import emit_config, write_csv, write_excel

    # the config first: a pick that is no valid config (damaged run rows) fails before any output
    if args.emit_config:
        if interval is None:
            raise UserError("the runs do not say their bar interval; pass --config with bar_interval_minutes")
        emit_config(args.emit_config, base, params, interval, _plain(meta))
        print(f"  pick config   -> {args.emit_config}")
    if args.out_csv:
        write_csv(table, args.out_csv)
        print(f"  families CSV  -> {args.out_csv}")
    if args.excel_out:
        if report:
            sheets["Overfitting"] = pd.DataFrame(sorted((k, str(v)) for k, v in report["overfit"].items()),
                                                 columns=["measure", "value"])
        write_excel(args.excel_out, sheets)
        print(f"  Excel         -> {args.excel_out}")


def _plain(v: Any) -> Any:
    """JSON-friendly copy (numpy scalars -> Python, NaN -> None, timestamps -> text)."""
    import math

    import pandas as pd

    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return str(v)
    return v


if __name__ == "__main__":
    sys.exit(run_main(main))
