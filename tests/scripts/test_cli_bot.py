"""ethbtc_accum_bot.py run as a user would: subprocesses, real files, exit codes."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from openpyxl import load_workbook

from ethbtc.data.sample import ensure_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return ensure_sample(tmp_path_factory.mktemp("sample"), days=60)


def bot(root, *args, cwd=None):
    return subprocess.run([sys.executable, str(root / "ethbtc_accum_bot.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or root, timeout=300)


def test_backtest_writes_every_output(root, sample, tmp_path):
    eth, bnb = sample
    r = bot(root, "backtest", "--data", eth, "--bnb-data", bnb, "--config", root / "configs/prod_live.json",
            "--start", "2022-01-10", "--end", "2022-02-20", "--out", tmp_path / "bars.csv",
            "--trades-out", tmp_path / "trades.csv", "--json-out", tmp_path / "s.json",
            "--excel-out", tmp_path / "r.xlsx", "--strategy", "sma", "--trend", "50")
    assert r.returncode == 0, r.stderr
    for word in ("final BTC", "BTC-HODL", "ETH-HODL", "max drawdown", "Sharpe", "turns / trades", "fees",
                 "time in ETH", "trend_kind=sma", "trend_lookback=50"):
        assert word in r.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["start"].startswith("2022-01-10") and summary["config"]["trend_lookback"] == 50
    bars = pd.read_csv(tmp_path / "bars.csv")
    assert len(bars) == summary["bars"] and {"wealth_btc", "reason", "target_w"} <= set(bars.columns)
    wb = load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["Summary", "Equity", "Trades"]
    assert len(wb["Summary"]._charts) == 1
    assert wb["Trades"].max_row == summary["trades"] + 1


@pytest.mark.parametrize(
    "args, needle",
    [
        (["backtest", "--data", "missing.csv"], "data file not found: missing.csv"),
        (["backtest", "--data", "{eth}", "--config", "nope.json"], "config file not found"),
        (["backtest", "--data", "{eth}", "--start", "2030-01-01"], "no candles between 2030-01-01"),
        (["backtest", "--data", "{eth}", "--config", "{root}/configs/prod_live.json", "--data", "{hourly}"],
         "data interval is 60m but the config/flags say 15m"),
        (["backtest", "--data", "{eth}", "--flip-band-entry", "0.001", "--flip-band-exit", "0.01"], "flip_band_entry"),
        (["backtest", "--data", "{eth}", "--trend", "abc"], "invalid int value"),
        (["backtest"], "the following arguments are required: --data"),
        (["frobnicate"], "invalid choice"),
        (["backtest", "--data", "{eth}", "--start", "not-a-date"], "invalid date"),
        (["backtest", "--data", "{eth}", "--pay-fees-in-bnb", "--start-bnb", "0.5"],  # SPEC R23: finite wallet
         "start_bnb 0.5 models a finite BNB fee wallet, which needs BNBBTC prices: pass --bnb-data FILE"),
        (["backtest", "--data", "{eth}", "--start-bnb", "-1"], "argument --start-bnb: must be a number >= 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(root, sample, tmp_path, args, needle):
    hourly = tmp_path / "h.csv"
    df = pd.read_csv(sample[0]).iloc[::4]
    df.to_csv(hourly, index=False)
    args = [a.format(eth=sample[0], root=root, hourly=hourly) for a in args]
    r = bot(root, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_selftest_passes(root):
    r = bot(root, "selftest")
    assert r.returncode == 0 and "selftest: ok" in r.stdout


def test_optimize_is_reproducible_with_seed_and_emits_loadable_config(root, sample, tmp_path):
    eth, _ = sample
    common = ["optimize", "--data", eth, "--train-start", "2022-01-01", "--train-end", "2022-01-31",
              "--test-start", "2022-02-01", "--test-end", "2022-02-28", "--n-random", "8", "--seed", "5"]
    a = bot(root, *common, "--out", tmp_path / "a.csv", "--emit-config", tmp_path / "best.json")
    b = bot(root, *common, "--out", tmp_path / "b.csv")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
    trials = pd.read_csv(tmp_path / "a.csv")
    assert len(trials) == 8 and {"trend_lookback", "train_final_btc", "test_final_btc"} <= set(trials.columns)
    r = bot(root, "backtest", "--data", eth, "--config", tmp_path / "best.json")
    assert r.returncode == 0, r.stderr


def test_backtest_says_which_fee_model_ran(root, sample):
    """SPEC R23 (v2): the summary names the fee model; --start-bnb switches to the finite wallet."""
    eth, bnb = sample
    common = ["backtest", "--data", eth, "--bnb-data", bnb, "--config", root / "configs/prod_live.json",
              "--start", "2022-01-10", "--end", "2022-02-20"]
    funded, wallet, full = bot(root, *common), bot(root, *common, "--start-bnb", "0.01"), bot(root, *common, "--no-bnb")
    assert funded.returncode == wallet.returncode == full.returncode == 0, funded.stderr + wallet.stderr + full.stderr
    assert "(fees in BNB at -25 %, wallet assumed funded; BNB used " in funded.stdout
    assert "(fees in BNB at -25 % from a 0.01 BNB wallet, then the received asset at the full rate; BNB used " in wallet.stdout
    assert "(fees in the received asset at the full rate)" in full.stdout
