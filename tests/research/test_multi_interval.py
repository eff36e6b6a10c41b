"""multi_interval_opt.py: OHLCV resampling, the bar-count scaling rule, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ethbtc.data.candles import load_candles
from ethbtc.data.sample import ensure_sample
from ethbtc.errors import DataError
from ethbtc.research.intervals import resample, scale_params
from tests.support.helpers import candles


def test_resample_aggregates_ohlcv_on_epoch_aligned_bins():
    c = candles(np.arange(1, 25, dtype=float), minutes=15)  # starts 00:00, 24 bars = 6 hours
    c.df["volume"] = np.arange(24, dtype=float)
    h = resample(c, 60)
    assert list(h.df.index.strftime("%H:%M")) == ["00:00", "01:00", "02:00", "03:00", "04:00", "05:00"]
    first = c.df.iloc[:4]
    row = h.df.iloc[0]
    assert (row.open, row.high, row.low, row.close, row.volume) == (
        first.open.iloc[0], first.high.max(), first.low.min(), first.close.iloc[-1], first.volume.sum())
    assert h.interval_minutes == 60 and h.report.rows == 6


def test_resample_never_invents_bars_and_drops_incomplete_edges():
    c = candles(np.linspace(1, 2, 40), minutes=15)
    df = c.df.iloc[2:]  # starts at 00:30: the first hour is incomplete
    df = df.drop(df.index[(df.index >= "2024-01-01 03:00") & (df.index < "2024-01-01 04:00")])  # a whole empty hour
    df = df.drop(df.index[df.index == "2024-01-01 05:15"])  # one missing bar inside an hour: kept
    df = df.iloc[:-1]  # ends at 09:30: the last hour 09:00 is incomplete
    c.df = df
    h = resample(c, 60)
    hours = list(h.df.index.strftime("%H"))
    assert hours == ["01", "02", "04", "05", "06", "07", "08"]
    assert len(h.report.gaps) == 1 and h.report.missing_bars == 1


def test_resample_rejects_non_multiples():
    c = candles(np.linspace(1, 2, 40), minutes=30)
    with pytest.raises(DataError, match="must be a multiple"):
        resample(c, 45)
    with pytest.raises(DataError, match="must be a multiple"):
        resample(c, 15)


def test_resampled_real_15m_matches_binance_1h(shared_data):
    """Real Binance candles: 15m resampled to 1h equals Binance's own 1h candles."""
    m15 = load_candles(shared_data / "ETHBTC_15m_2020-02_2020-10.freqtrade.json")
    h1 = load_candles(shared_data / "ETHBTC_1h_2017-07_2023-06.csv")
    ours = resample(m15, 60).df
    theirs = h1.df.reindex(ours.index).dropna()
    assert len(theirs) > 5000
    full = m15.df["close"].resample("60min", origin="epoch").count().reindex(theirs.index) == 4
    a, b = ours.loc[theirs.index[full]], theirs[full]
    np.testing.assert_allclose(a["close"], b["close"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["high"], b["high"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["low"], b["low"], rtol=0, atol=1e-12)


@given(lookback=st.integers(1, 2000), vol=st.integers(2, 2000), step=st.floats(0.01, 1.0),
       m=st.sampled_from([5, 15, 30, 60, 240]), bars=st.integers(1, 48))
def test_scaling_keeps_hours_and_approach_speed(lookback, vol, step, m, bars):
    ref = 15
    p = scale_params({"trend_lookback": lookback, "vol_window": vol, "step_allocation": step,
                      "cooldown_minutes": 240, "gate_window_days": 7}, ref, m)
    assert abs(p["trend_lookback"] * m - lookback * ref) <= m / 2 or p["trend_lookback"] == 1
    assert abs(p["vol_window"] * m - vol * ref) <= m / 2 or p["vol_window"] == 2
    assert p["cooldown_minutes"] == 240 and p["gate_window_days"] == 7
    assert 0 < p["step_allocation"] <= 1
    # after the same time (whole bars of m) the remaining gap to target is the same on both intervals
    left_ref = (1 - step) ** (bars * m / ref)
    left_m = (1 - p["step_allocation"]) ** bars
    assert left_m == pytest.approx(left_ref, rel=1e-4, abs=1e-9)


def run(root, *args):
    return subprocess.run([sys.executable, str(root / "multi_interval_opt.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=root, timeout=600)


def test_cli_resamples_optimises_each_interval_and_emits_matching_configs(root, tmp_path):
    eth, _ = ensure_sample(tmp_path / "s", days=120)
    r = run(root, "--data", eth, "--resample", "30m,1h", "--train-start", "2022-01-01", "--train-end", "2022-03-15",
            "--test-start", "2022-03-16", "--test-end", "2022-04-30", "--n-random", 20, "--seed", 2, "--threads", 1,
            "--out", tmp_path / "sum.csv", "--out-dir", tmp_path / "m", "--excel-out", tmp_path / "m.xlsx")
    assert r.returncode == 0, r.stderr
    summary = pd.read_csv(tmp_path / "sum.csv")
    assert list(summary["interval"]) == ["15m", "30m", "1h"]
    t15, t1h = (pd.read_csv(tmp_path / "m" / f"trials_{x}.csv").set_index("trial").sort_index() for x in ("15m", "1h"))
    # trial N is the same strategy in hours on every interval
    np.testing.assert_allclose(t1h["trend_lookback"] * 60, t15["trend_lookback"] * 15, atol=30)
    assert (t1h["trend_kind"] == t15["trend_kind"]).all() and (t1h["cooldown_minutes"] == t15["cooldown_minutes"]).all()
    # the emitted 1h config backtests on 1h candles to the reported test result
    cfg = json.loads((tmp_path / "m" / "best_1h.json").read_text())
    assert cfg["strategy"]["bar_interval_minutes"] == 60 and cfg["execution"]["interval"] == "1h"
    hourly = resample(load_candles(eth), 60).df
    path = tmp_path / "eth_1h.csv"
    hourly.assign(open_time=hourly.index.as_unit("ms").asi8).to_csv(
        path, index=False, columns=["open_time", "open", "high", "low", "close", "volume"])
    bt = subprocess.run([sys.executable, str(root / "ethbtc_accum_bot.py"), "backtest", "--data", str(path), "--config",
                         str(tmp_path / "m" / "best_1h.json"), "--start", "2022-03-16", "--end", "2022-04-30",
                         "--json-out", str(tmp_path / "s.json")], capture_output=True, text=True, cwd=root, timeout=300)
    assert bt.returncode == 0, bt.stderr
    best = summary.set_index("interval").loc["1h"]
    assert json.loads((tmp_path / "s.json").read_text())["final_btc"] == pytest.approx(best["test_final_btc"], rel=1e-9)
    # one file per interval instead of --resample: the same trials, the same results
    r = run(root, "--data", eth, path, "--train-start", "2022-01-01", "--train-end", "2022-03-15",
            "--test-start", "2022-03-16", "--test-end", "2022-04-30", "--n-random", 20, "--seed", 2, "--threads", 1,
            "--out", tmp_path / "sum2.csv")
    assert r.returncode == 0, r.stderr
    two = pd.read_csv(tmp_path / "sum2.csv").set_index("interval")
    assert list(two.index) == ["15m", "1h"]
    for k in ("trial", "trend_lookback", "test_final_btc", "robust_score"):
        assert two.loc["1h", k] == pytest.approx(best[k], rel=1e-12)


@pytest.mark.parametrize("args, needle", [
    (["--data", "{eth}", "{eth}", "--resample", "1h"], "--resample works with exactly one --data file"),
    (["--data", "{eth}", "--resample", "20m"], "cannot build 20m bars from 15m bars"),
    (["--data", "{eth}", "{eth}"], "two inputs have the same interval"),
    (["--data", "{eth}", "--resample", "1x"], "invalid interval '1x'"),
])
def test_bad_input_is_one_line_exit_2(root, tmp_path, args, needle):
    eth, _ = ensure_sample(tmp_path / "s", days=20)
    args = [a.format(eth=eth) for a in args]
    r = run(root, *args, "--train-start", "2022-01-01", "--train-end", "2022-01-10", "--test-start", "2022-01-11",
            "--test-end", "2022-01-20", "--n-random", 2)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and needle in lines[0], r.stderr
