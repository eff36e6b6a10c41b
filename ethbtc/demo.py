"""`make demo`: the end-to-end workflow, offline, on generated sample data.

Stages: generate sample candles -> backtest the example config (CSV, JSON, Excel) ->
small optimisation -> research workflow (optimizer_cli on two splits -> wf_pick -> backtest
the pick) -> paper trading (exchange simulator + live executor). Later stages append
themselves to ``STAGES``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .data.sample import ensure_sample
from .data.vision import FETCH_HINT

OUT = Path("out/demo")
HTML_REPORTS = [OUT / "backtest_report.html", OUT / "search_report.html", OUT / "pick_report.html"]
_SEEN: set[str] = set()  # warning lines already shown (the sample's gaps are reported by every stage)


def python_cmd() -> str:
    """The interpreter as a user can type it here: the project's venv path when that is the one
    running (bare ``python`` without the venv fails on the first import)."""
    exe = Path(sys.executable)
    try:
        rel = exe.relative_to(Path.cwd().resolve()) if exe.is_absolute() else exe
    except ValueError:
        rel = None
    if rel is None:
        venv = Path(".venv/bin/python")
        return str(venv) if venv.exists() and venv.resolve() == exe.resolve() else str(exe)
    return str(rel)


def run(title: str, *argv: str) -> None:
    print(f"\n=== {title}\n$ {python_cmd()} {' '.join(argv)}", flush=True)
    proc = subprocess.run([sys.executable, *argv], stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr.splitlines():
        if line.startswith("warning: data:"):
            if line in _SEEN:
                continue
            _SEEN.add(line)
        print(line, file=sys.stderr)
    sys.stderr.flush()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, [sys.executable, *argv])


def stage_backtest(eth: Path, bnb: Path) -> None:
    run("Backtest the example production config", "ethbtc_accum_bot.py", "backtest",
        "--data", str(eth), "--bnb-data", str(bnb), "--config", "configs/prod_live.json",
        "--out", str(OUT / "equity_backtest.csv"), "--trades-out", str(OUT / "trades.csv"),
        "--json-out", str(OUT / "summary.json"), "--excel-out", str(OUT / "backtest_report.xlsx"),
        "--html-out", str(HTML_REPORTS[0]))


def stage_optimize(eth: Path, bnb: Path) -> None:
    run("Small random-search optimisation (train 2022, test 2023)", "ethbtc_accum_bot.py", "optimize",
        "--data", str(eth), "--config", "configs/selected_params_15m_final.json",
        "--train-start", "2022-01-01", "--train-end", "2022-12-31",
        "--test-start", "2023-01-01", "--test-end", "2023-12-31", "--n-random", "40", "--seed", "1",
        "--out", str(OUT / "opt_simple.csv"), "--emit-config", str(OUT / "opt_simple_best.json"))


PAPER_START = "2023-05-03"  # the example config trades within the first 200 bars from here on the sample
VERIFY = ("2023-07-01", "2023-12-31")  # seen by neither the optimiser nor the pick


def stage_research(eth: Path, bnb: Path) -> None:
    """Research workflow: optimise on two train/test splits, pick a family present in both,
    verify the pick on a later window neither has seen (see README "Research workflow")."""
    common = ["--data", str(eth), "--bnb-data", str(bnb), "--config", "configs/prod_live.json",
              "--n-random", "60", "--seed", "1", "--no-progress"]
    for name, train, test in (("a", ("2022-01-01", "2022-09-30"), ("2022-10-01", "2022-12-31")),
                              ("b", ("2022-04-01", "2022-12-31"), ("2023-01-01", "2023-06-30"))):
        run(f"Optimise run {name}: train {train[0]}..{train[1]}, test {test[0]}..{test[1]}", "optimizer_cli.py",
            *common, "--train-start", train[0], "--train-end", train[1], "--test-start", test[0],
            "--test-end", test[1], "--out", str(OUT / f"research_opt_{name}.csv"),
            *(["--html-out", str(HTML_REPORTS[1])] if name == "b" else []))
    run("Pick the family that is robust in both runs (+ PBO / deflated Sharpe)", "wf_pick.py",
        "--runs", str(OUT / "research_opt_a.csv"), str(OUT / "research_opt_b.csv"), "--min-occurs", "2",
        "--config", "configs/prod_live.json", "--data", str(eth), "--bnb-data", str(bnb), "--end", "2023-06-30",
        "--top-k", "5", "--out-csv", str(OUT / "research_families.csv"),
        "--emit-config", str(OUT / "research_pick.json"),
        "--html-out", str(HTML_REPORTS[2]))
    run(f"Verify the pick OUT-OF-SAMPLE on {VERIFY[0]}..{VERIFY[1]} (seen by neither the optimiser nor the pick)",
        "ethbtc_accum_bot.py", "backtest", "--data", str(eth), "--bnb-data", str(bnb),
        "--config", str(OUT / "research_pick.json"), "--start", VERIFY[0], "--end", VERIFY[1],
        "--json-out", str(OUT / "research_pick_summary.json"), "--excel-out", str(OUT / "research_pick_verify.xlsx"))


def stage_paper_trading(eth: Path, bnb: Path) -> None:
    """The live executor (testnet mode) trading the local exchange simulator on accelerated sample bars."""
    folder = OUT / "paper"
    shutil.rmtree(folder, ignore_errors=True)  # a fresh paper session each demo run
    folder.mkdir(parents=True)
    sim_argv = ["-m", "ethbtc.sim", "--data", str(eth), "--port", "0", "--speed", "8", "--start", PAPER_START,
                "--btc", "0.16", "--api-key", "demo-key", "--api-secret", "demo-secret"]
    bot_argv = ["live_executor.py", "--params", "configs/prod_live.json", "--mode", "testnet",
                "--state", str(folder / "state.json"), "--poll-sec", "0.05", "--ttl-sec", "0.04", "--taker-fallback",
                "--max-bars", "200", "--metrics-port", "0"]
    py = python_cmd()
    print(f"\n=== Paper trading: exchange simulator + live executor, 200 accelerated 15m bars\n"
          f"$ {py} {' '.join(sim_argv)}\n$ {py} {' '.join(bot_argv)}", flush=True)
    sim = subprocess.Popen([sys.executable, *sim_argv], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().split()[-1]
        env = {**os.environ, "BINANCE_BASE_URL": url, "BINANCE_KEY": "demo-key", "BINANCE_SECRET": "demo-secret",
               "DOTENV_PATH": os.devnull}
        with open(folder / "executor.log", "w") as log:
            bot = subprocess.run([sys.executable, *bot_argv], env=env, stdout=subprocess.PIPE, stderr=log,
                                 text=True, check=False)
        beats = [ln for ln in (folder / "executor.log").read_text().splitlines() if " bar " in ln]
        print("\n".join(ln.split("ethbtc.live: ", 1)[-1] for ln in beats[-3:]))
        print(f"(every heartbeat in {folder / 'executor.log'}, fills in {folder / 'trades_log.csv'})")
        print(bot.stdout.strip(), flush=True)
        if bot.returncode != 0:
            raise subprocess.CalledProcessError(bot.returncode, [sys.executable, *bot_argv])
    finally:
        sim.terminate()
        sim.wait(timeout=10)


STAGES = [stage_backtest, stage_optimize, stage_research, stage_paper_trading]


def main() -> int:
    eth, bnb = ensure_sample()
    print(f"sample data: {eth} and {bnb} (generated, deterministic)")
    for stage in STAGES:
        stage(eth, bnb)
    print("\nHTML reports (self-contained, open offline in a browser):")
    print("\n".join(f"  {p}" for p in HTML_REPORTS))
    print(f"\ndemo finished; outputs in {OUT}/\n")
    py = python_cmd()
    print(FETCH_HINT.replace("python ", f"{py} "))
    if py != "python":
        print(f"(or `source {Path(py).parent}/activate` once, then plain `python ...` as in the README)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print(f"error: demo stage failed: {' '.join(map(str, exc.cmd[1:]))}", file=sys.stderr)
        sys.exit(1)
