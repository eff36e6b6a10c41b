"""The operations manuals' command lines, typed as their users type them (issue 13).

Every command runs as a subprocess (``python`` = this interpreter) from a scratch folder with
the project's scripts, against real Binance data in ../shared/data (skipped without it).
Allowed adaptations only: local data paths, the local Vision mirror as ``--base-url``, date
windows moved into the data, ``--n-random`` scaled down, 1h where the mirror lacks 15m. Each
test asserts what the manual promises: files exist and are well formed, the emitted config
trades in its test window, the backtest of the pick runs.

Translation table (manual command -> what happens now): docs/manuals.md "Coming from the
operations manuals".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.support.vision_mirror import serve

DECIDED_BAR = re.compile(r"ethbtc\.live: bar \d{4}-\d\d-\d\dT")  # the executor's per-bar INFO line

V1_PENALTIES = ["--threads", "0", "--chunk-size", "32", "--lambda-turns", "2.0", "--gap-penalty", "0.35",
                "--turns-scale", "800", "--lambda-fees", "2.0", "--lambda-turnover", "1.0"]
# the real-data windows: 15m (freqtrade JSON) and 1h (Vision CSV)
WIN_15M = ["--train-start", "2020-03-01", "--train-end", "2020-07-31", "--test-start", "2020-08-01",
           "--test-end", "2020-10-31"]
WIN_1H = ["--train-start", "2021-01-01", "--train-end", "2022-06-30", "--test-start", "2022-07-01",
          "--test-end", "2023-06-30"]


def py(cwd: Path, *argv: object, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DOTENV_PATH": os.devnull, **(env or {})}
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A user's folder: the project's scripts and configs, data/ with the real candles."""
    d = tmp_path_factory.mktemp("manual")
    for f in ROOT.glob("*.py"):
        shutil.copy(f, d / f.name)
    (d / "ethbtc").symlink_to(ROOT / "ethbtc")
    shutil.copytree(ROOT / "configs", d / "configs")
    (d / "data").mkdir()
    (d / "data" / "ETHBTC_15m.json").symlink_to(shared_data / "ETHBTC_15m_2020-02_2020-10.freqtrade.json")
    (d / "data" / "BNBBTC_15m.json").symlink_to(shared_data / "BNBBTC_15m_2020-02_2020-10.freqtrade.json")
    (d / "data" / "ETHBTC_1h.csv").symlink_to(shared_data / "ETHBTC_1h_2017-07_2023-06.csv")
    (d / "out").mkdir()
    return d


@pytest.fixture(scope="module")
def mirror(shared_data: Path) -> Iterator[str]:
    root = shared_data / "vision"
    if not (root / "data").is_dir():
        pytest.skip(f"no Vision mirror at {root}")
    with serve(root) as m:
        yield m.url


def test_v3_download_then_v1_fix_timestamps(work: Path, mirror: str) -> None:
    # v3 step 1 (15m; the mirror has 1h only): the message names the interval and the flag that works
    r = py(work, "download_vision.py", "--symbol", "ETHBTC", "--intervals", "15m", "--start", "2023-01-01",
           "--end", "2023-06-01", "--out-dir", "data/raw", "--base-url", mirror)
    assert r.returncode == 2 and "try --intervals 1h" in r.stderr and len(r.stderr.splitlines()) == 1
    r = py(work, "download_vision.py", "--symbol", "ETHBTC", "--intervals", "1h", "--start", "2023-01-01",
           "--end", "2023-06-01", "--out-dir", "data/raw", "--base-url", mirror)
    assert r.returncode == 0, r.stderr
    out = work / "data/raw/ETHBTC_1h_2023-01-01_2023-06-01_vision.csv"
    assert len(pd.read_csv(out)) > 3000
    # v1: vision_fix_timestamps on the file the backtest reads (freqtrade JSON here), --freq 15T
    r = py(work, "vision_fix_timestamps.py", "--in", "data/ETHBTC_15m.json", "--out", "data/ETHBTC_15m.csv",
           "--freq", "15T")
    assert r.returncode == 0, r.stderr
    assert "freqtrade JSON" in r.stdout and len(pd.read_csv(work / "data/ETHBTC_15m.csv")) == 24160


def test_v3_research_workflow(work: Path) -> None:
    """v3 steps 2-3 on the file step 1 wrote (1h: the mirror has no 15m; windows moved into it)."""
    data = "data/raw/ETHBTC_1h_2023-01-01_2023-06-01_vision.csv"
    if not (work / data).exists():
        pytest.skip("needs the download of test_v3_download_then_v1_fix_timestamps")
    r = py(work, "optimizer_cli.py", "--data", data, "--train-start", "2023-01-01", "--train-end", "2023-03-31",
           "--test-start", "2023-04-01", "--test-end", "2023-06-30", "--n-random", "200",
           "--out", "opt_results_run1.csv")
    assert r.returncode == 0, r.stderr
    assert "--test-end 2023-06-30 is after the data" in r.stderr
    assert len(pd.read_csv(work / "opt_results_run1.csv")) == 200
    # one run cannot show a family recurring: one line with the exact command that works
    r = py(work, "wf_pick.py", "--runs", "opt_results_run1.csv", "--emit-config", "configs/best_strategy.json",
           "--top-k", "5")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    fix = r.stderr.split("pick within the runs given: ", 1)[1].strip()
    assert fix.startswith("python wf_pick.py ") and fix.endswith("--min-occurs 1")
    r = py(work, *fix.split()[1:])
    assert r.returncode == 0, r.stderr
    cfg = json.loads((work / "configs/best_strategy.json").read_text())
    assert cfg["strategy"]["bar_interval_minutes"] == 60 and cfg["meta"]["family_stats"]["mean_turns"] > 0


def test_v1_backtests_config_and_cli_overrides(work: Path) -> None:
    # A) config; the manual's window ends after the data: one warning, the run goes on
    r = py(work, "ethbtc_accum_bot.py", "backtest", "--data", "data/ETHBTC_15m.json", "--bnb-data",
           "data/BNBBTC_15m.json", "--basis-btc", "0.16", "--config", "configs/selected_params_15m_final.json",
           "--start", "2020-03-01", "--end", "2025-06-30", "--out", "out/equity_backtest.csv",
           "--excel-out", "out/backtest_report.xlsx")
    assert r.returncode == 0, r.stderr
    assert "--end 2025-06-30 is after the data" in r.stderr
    assert len(pd.read_csv(work / "out/equity_backtest.csv")) > 20000
    assert (work / "out/backtest_report.xlsx").stat().st_size > 0
    # B) CLI overrides, plus the CLI reference's --prefer-cli
    r = py(work, "ethbtc_accum_bot.py", "backtest", "--data", "data/ETHBTC_15m.json", "--bnb-data",
           "data/BNBBTC_15m.json", "--basis-btc", "0.16", "--strategy", "roc", "--trend", "120",
           "--flip-band-entry", "0.0295", "--flip-band-exit", "0.0154", "--vol-window", "45", "--vol-adapt-k",
           "0.0025", "--target-vol", "0.3", "--cooldown-minutes", "240", "--step-allocation", "0.33",
           "--max-position", "0.8", "--gate-window-days", "30", "--gate-roc-threshold", "0.02",
           "--rebalance-threshold-w", "0.03", "--min-trade-frac", "0.0015", "--maker-fee", "0.0002",
           "--taker-fee", "0.0004", "--bnb-discount", "0.25", "--slippage-bps", "1.0", "--prefer-cli",
           "--out", "out/equity_b.csv", "--excel-out", "out/backtest_b.xlsx")
    assert r.returncode == 0, r.stderr
    assert "trend_lookback=120" in r.stdout and "flip_band_entry=0.0295" in r.stdout


def test_v1_builtin_optimize_emits_a_trading_pick(work: Path) -> None:
    r = py(work, "ethbtc_accum_bot.py", "optimize", "--data", "data/ETHBTC_15m.json", "--bnb-data",
           "data/BNBBTC_15m.json", *WIN_15M, "--n-random", "40", "--maker-fee", "0.0002", "--taker-fee", "0.0004",
           "--slippage-bps", "1.0", "--bnb-discount", "0.25", "--out", "out/opt_simple.csv",
           "--excel-out", "out/opt_simple.xlsx", "--emit-config", "out/opt_simple.json")
    assert r.returncode == 0, r.stderr
    assert "test turns 0" not in next(line for line in r.stdout.splitlines() if line.startswith("pick:"))
    assert json.loads((work / "out/opt_simple.json").read_text())["meta"]["chosen_on"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_v1_optimizer_flags_pick_a_strategy_that_trades_15m(work: Path, seed: int) -> None:
    """Issue 13: with the v1 manual's penalties the 15m picks used to hold BTC (0 test turns)."""
    r = py(work, "optimizer_cli.py", "--data", "data/ETHBTC_15m.json", "--bnb-data", "data/BNBBTC_15m.json",
           *WIN_15M, "--n-random", "600", *V1_PENALTIES, "--seed", seed, "--no-progress",
           "--out", f"out/opt_runs_seed{seed}.csv", "--excel-out", f"out/opt_runs_seed{seed}.xlsx",
           "--emit-config", f"out/selected_params_seed{seed}.json")
    assert r.returncode == 0, r.stderr
    meta = json.loads((work / f"out/selected_params_seed{seed}.json").read_text())["meta"]
    assert meta["test_turns"] > 0 and meta["test_final_btc"] > 1.0  # trades, and beats BTC-HODL in its test
    assert not [line for line in r.stderr.splitlines() if "penalty term" in line]  # the lambdas tip, not decide


@pytest.mark.parametrize("seed", [1, 2])
def test_v1_optimizer_flags_pick_a_strategy_that_trades_1h(work: Path, seed: int) -> None:
    r = py(work, "optimizer_cli.py", "--data", "data/ETHBTC_1h.csv", *WIN_1H, "--n-random", "600",
           *V1_PENALTIES, "--seed", seed, "--no-progress", "--emit-config", f"out/pick_1h_seed{seed}.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((work / f"out/pick_1h_seed{seed}.json").read_text())["meta"]["test_turns"] > 0


def test_v1_wf_pick_and_verify(work: Path) -> None:
    """The v1 walk-forward command, verbatim flags (band/step rounding as decimal places)."""
    runs = [work / f"out/opt_runs_seed{s}.csv" for s in (1, 2, 3)]
    if not all(p.exists() for p in runs):
        pytest.skip("needs the three optimizer runs of test_v1_optimizer_flags_pick_a_strategy_that_trades_15m")
    r = py(work, "wf_pick.py", "--runs", *[f"out/{p.name}" for p in runs], "--q-fees", "0.75", "--q-turnover", "0.75",
           "--penalty-turns", "0.0", "--penalty-fees", "1.0", "--penalty-turnover", "0.5", "--lb-bucket", "40",
           "--cd-bucket", "60", "--band-round", "4", "--step-round", "2", "--top-k", "12", "--min-occurs", "2",
           "--require-costs", "--require-var", "--out-csv", "out/wf_ranked_families.csv",
           "--excel-out", "out/wf_summary.xlsx", "--emit-config", "out/selected_params_15m_final.json",
           "--family-index", "0", "--data", "data/ETHBTC_15m.json")
    assert r.returncode == 0, r.stderr
    assert "--band-round 4 read as 4 decimal places" in r.stderr
    fams = pd.read_csv(work / "out/wf_ranked_families.csv")
    assert fams.iloc[0]["mean_turns"] > 0 and fams.iloc[0]["members"] >= 2
    assert "overfitting: PBO" in r.stdout
    cfg = json.loads((work / "out/selected_params_15m_final.json").read_text())
    assert cfg["meta"]["chosen_on"]
    # verify: the backtest of the pick runs and labels itself (the whole sample was seen: in-sample)
    r = py(work, "ethbtc_accum_bot.py", "backtest", "--data", "data/ETHBTC_15m.json", "--bnb-data",
           "data/BNBBTC_15m.json", "--basis-btc", "0.16", "--config", "out/selected_params_15m_final.json",
           "--start", "2020-08-01", "--end", "2020-10-31", "--excel-out", "out/final_backtest.xlsx")
    assert r.returncode == 0, r.stderr
    assert "sample            in-sample" in r.stdout


def test_v1_multi_interval(work: Path) -> None:
    r = py(work, "multi_interval_opt.py", "--data", "data/ETHBTC_15m.json", "data/ETHBTC_1h.csv",
           "--bnb-data", "data/BNBBTC_15m.json", *WIN_15M, "--n-random", "100", "--no-progress",
           "--excel-out", "out/multi_interval_summary.xlsx")
    assert r.returncode == 0, r.stderr
    sheets = pd.read_excel(work / "out/multi_interval_summary.xlsx", sheet_name=None)
    assert (sheets["Summary"]["test_turns"] > 0).all()


def test_v3_env_state_file_on_bare_metal_is_one_line(work: Path) -> None:
    r = py(work, "live_executor.py", "--params", "configs/prod_live.json", "--mode", "dry",
           env={"STATE_FILE": "/data_not_here/state.json"})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "path inside the Docker container" in r.stderr and "STATE_FILE=run_state/state.json" in r.stderr


def test_compose_container_name_matches_the_manuals_docker_logs() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["bot"]["container_name"] == "ethbtc_bot"


def test_v1_testnet_command_against_the_paper_exchange(work: Path) -> None:
    """v1 "Testnet" run, verbatim flags, with the v1 .env (STATE_FILE, TRADES_CSV) and the project's
    simulator as the testnet: the v3 manual's [BALANCE] start-up line, a decided bar, the state
    file in the v3 manual's names, the ledger where TRADES_CSV says."""
    sim = subprocess.Popen([sys.executable, "-m", "ethbtc.sim", "--data", "data/ETHBTC_15m.json", "--port", "0",
                            "--speed", "4", "--start", "2020-08-03", "--btc", "0.16", "--api-key", "k",
                            "--api-secret", "s"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    log = work / "executor.log"
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().split()[-1]
        env = {**os.environ, "DOTENV_PATH": os.devnull, "BINANCE_BASE_URL": url, "BINANCE_KEY": "k",
               "BINANCE_SECRET": "s", "MODE": "testnet", "SYMBOL": "ETHBTC", "STATE_FILE": "state.json",
               "TRADES_CSV": "trades_log.csv", "PYTHONUNBUFFERED": "1",
               "METRICS_PORT": "0"}  # the test machine's 9109 may be taken
        with open(log, "w") as fh:
            bot = subprocess.Popen([sys.executable, "live_executor.py", "--params",
                                    "configs/selected_params_15m_final.json", "--mode", "testnet", "--taker-fallback",
                                    "--poll-sec", "5", "--ttl-sec", "30", "-vv"],
                                   cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
            try:
                deadline = 120.0
                step = 0.5
                while deadline > 0 and bot.poll() is None:
                    text = log.read_text()
                    # the simulator re-stamps its history onto the wall clock: a decided bar's line
                    # carries today's date, not 2020's
                    if "[BALANCE] Successfully fetched" in text and DECIDED_BAR.search(text):
                        break
                    time.sleep(step)
                    deadline -= step
                bot.terminate()
                assert bot.wait(timeout=60) == 0, log.read_text()[-2000:]
            finally:
                if bot.poll() is None:
                    bot.kill()
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    text = log.read_text()
    assert "[BALANCE] Successfully fetched balances (testnet): ETH 0 free, BTC 0.16 free" in text
    state = json.loads((work / "state.json").read_text())
    assert state["session_start_W"] == pytest.approx(0.16) and state["risk_maxdd_hit"] is False
    assert state["last_bar_close"]
    assert (work / "trades_log.csv").exists()  # TRADES_CSV honoured (the ledger opens at start)
