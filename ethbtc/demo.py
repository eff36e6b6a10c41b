"""`make demo`: the end-to-end workflow, offline, on generated sample data.

Stages: generate sample candles -> backtest the example config (CSV, JSON, Excel) ->
small optimisation -> research workflow (optimizer_cli on two splits -> wf_pick -> backtest
the pick). Later stages (pick, paper trading) append themselves to ``STAGES``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .sample import ensure_sample
from .vision import print_fetch_hint

OUT = Path("out/demo")


def run(title: str, *argv: str) -> None:
    print(f"\n=== {title}\n$ python {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, *argv], check=True)


def stage_backtest(eth: Path, bnb: Path) -> None:
    run("Backtest the example production config", "ethbtc_accum_bot.py", "backtest",
        "--data", str(eth), "--bnb-data", str(bnb), "--config", "configs/prod_live.json",
        "--out", str(OUT / "equity_backtest.csv"), "--trades-out", str(OUT / "trades.csv"),
        "--json-out", str(OUT / "summary.json"), "--excel-out", str(OUT / "backtest_report.xlsx"))


def stage_optimize(eth: Path, bnb: Path) -> None:
    run("Small random-search optimisation (train 2022, test 2023)", "ethbtc_accum_bot.py", "optimize",
        "--data", str(eth), "--config", "configs/selected_params_15m_final.json",
        "--train-start", "2022-01-01", "--train-end", "2022-12-31",
        "--test-start", "2023-01-01", "--test-end", "2023-12-31", "--n-random", "40", "--seed", "1",
        "--out", str(OUT / "opt_simple.csv"), "--emit-config", str(OUT / "opt_simple_best.json"))


def stage_research(eth: Path, bnb: Path) -> None:
    """Research workflow: optimise on two train/test splits, pick a family present in both,
    backtest the pick (see README "Research workflow")."""
    common = ["--data", str(eth), "--bnb-data", str(bnb), "--config", "configs/prod_live.json",
              "--n-random", "60", "--seed", "1", "--no-progress"]
    for name, train, test in (("a", ("2022-01-01", "2022-09-30"), ("2022-10-01", "2022-12-31")),
                              ("b", ("2023-01-01", "2023-09-30"), ("2023-10-01", "2023-12-31"))):
        run(f"Optimise run {name}: train {train[0]}..{train[1]}, test {test[0]}..{test[1]}", "optimizer_cli.py",
            *common, "--train-start", train[0], "--train-end", train[1], "--test-start", test[0],
            "--test-end", test[1], "--out", str(OUT / f"research_opt_{name}.csv"))
    run("Pick the family that is robust in both runs (+ PBO / deflated Sharpe)", "wf_pick.py",
        "--runs", str(OUT / "research_opt_a.csv"), str(OUT / "research_opt_b.csv"), "--min-occurs", "2",
        "--config", "configs/prod_live.json", "--data", str(eth), "--bnb-data", str(bnb), "--top-k", "5",
        "--out-csv", str(OUT / "research_families.csv"), "--emit-config", str(OUT / "research_pick.json"))
    run("Backtest the pick", "ethbtc_accum_bot.py", "backtest", "--data", str(eth), "--bnb-data", str(bnb),
        "--config", str(OUT / "research_pick.json"), "--json-out", str(OUT / "research_pick_summary.json"))


STAGES = [stage_backtest, stage_optimize, stage_research]


def main() -> int:
    eth, bnb = ensure_sample()
    print(f"sample data: {eth} and {bnb} (generated, deterministic)")
    for stage in STAGES:
        stage(eth, bnb)
    print(f"\ndemo finished; outputs in {OUT}/\n")
    print_fetch_hint()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print(f"error: demo stage failed: {' '.join(map(str, exc.cmd[1:]))}", file=sys.stderr)
        sys.exit(1)
