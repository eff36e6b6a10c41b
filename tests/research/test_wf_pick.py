"""wf_pick.py: families from runs (planted family), walk-forward folds (no look-ahead), CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethbtc import kernel as K
from ethbtc.config import build_config, load_config
from ethbtc.data.candles import Candles, DataReport, load_candles
from ethbtc.data.sample import ensure_sample, generate
from ethbtc.research import walkforward as W
from ethbtc.research.families import FamilyPenalties, FamilyRules
from ethbtc.research.runner import Job
from ethbtc.research.scoring import Penalties
from ethbtc.research.space import load_space
from ethbtc.research.trials import PARAM_COLUMNS
from ethbtc.search import sample

PLANTED = {"trend_kind": "sma", "trend_lookback": 100, "cooldown_minutes": 300, "flip_band_entry": 0.031,
           "flip_band_exit": 0.011, "step_allocation": 0.52}


def _runs(tmp_path, n_runs=3, seed=0):
    """Trial CSVs in optimizer_cli's layout: noise rows, the planted family in every run, and decoys."""
    rng = np.random.default_rng(seed)
    base = build_config({}).flat()
    paths = []
    for run in range(n_runs):
        rows = []
        for _ in range(80):  # noise: random parameters, mediocre results
            rows.append(base | sample(rng) | {"test_final_btc": rng.normal(1.0, 0.05), "test_turns": rng.integers(5, 60),
                                              "test_fees_btc": rng.uniform(0.001, 0.02),
                                              "test_turnover_btc": rng.uniform(1, 20)})
        for _ in range(3):  # the planted family: consistently good, cheap
            p = dict(PLANTED, trend_lookback=int(PLANTED["trend_lookback"] + rng.integers(-4, 5)),
                     flip_band_entry=PLANTED["flip_band_entry"] + rng.uniform(-0.001, 0.001),
                     cooldown_minutes=PLANTED["cooldown_minutes"] + int(rng.integers(-40, 40)))
            rows.append(base | sample(rng) | p | {"test_final_btc": rng.normal(1.18, 0.01), "test_turns": 10,
                                                  "test_fees_btc": 0.002, "test_turnover_btc": 2.0})
        # decoy 1: a spectacular one-off that appears in this run only
        rows.append(base | sample(rng) | {"trend_kind": "roc", "trend_lookback": 312 + 30 * run,
                                          "test_final_btc": 1.9, "test_turns": 8, "test_fees_btc": 0.002,
                                          "test_turnover_btc": 2.0})
        # decoy 2: in every run and great before costs, but churns fees (cut by the fee quantile)
        rows.append(base | sample(rng) | {"trend_kind": "roc", "trend_lookback": 30, "cooldown_minutes": 0,
                                          "flip_band_entry": 0.006, "flip_band_exit": 0.0, "step_allocation": 1.0,
                                          "test_final_btc": 1.4, "test_turns": 400, "test_fees_btc": 0.3,
                                          "test_turnover_btc": 300.0})
        df = pd.DataFrame(rows)
        df.insert(0, "trial", range(len(df)))
        df["bar_interval_minutes"], df["basis_btc"] = 15, 1.0
        path = tmp_path / f"run{run}.csv"
        df[["trial", *PARAM_COLUMNS, "bar_interval_minutes", "basis_btc", "test_final_btc", "test_turns",
            "test_fees_btc", "test_turnover_btc"]].to_csv(path, index=False)
        paths.append(path)
    return paths


def pick(root, *args):
    return subprocess.run([sys.executable, str(root / "wf_pick.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=root, timeout=600)


def test_picks_the_planted_family_and_emits_a_config_that_backtests(root, tmp_path):
    runs = _runs(tmp_path)
    r = pick(root, "--runs", *runs, "--min-occurs", 2, "--require-var", "--config", root / "configs/prod_live.json",
             "--emit-config", tmp_path / "pick.json", "--out-csv", tmp_path / "fam.csv", "--excel-out", tmp_path / "f.xlsx")
    assert r.returncode == 0, r.stderr
    assert "warning: the pick rests on" not in r.stderr and "holding BTC did better" not in r.stderr
    fams = pd.read_csv(tmp_path / "fam.csv")
    top = fams.iloc[0]
    assert top["family"].startswith("sma lb96-119 cd240-360m entry0.03 exit0.01 step0.5"), fams.head()
    assert top["runs"] == 3 and top["members"] == 9 and top["std_test_final"] > 0
    assert not fams["family"].str.startswith("roc lb24-47").any()  # the fee churner never ranks
    cfg = load_config(tmp_path / "pick.json")
    s = cfg.strategy
    assert (s.trend_kind, s.bar_interval_minutes) == ("sma", 15)
    assert 96 <= s.trend_lookback <= 104 and 240 <= s.cooldown_minutes < 360 and s.flip_band_exit == pytest.approx(0.011)
    assert cfg.risk.basis_btc == 0.16 and cfg.meta["source"] == "wf_pick.py"  # base config carried over
    assert cfg.meta["spec_version"] == K.SPEC_VERSION  # results of other SPEC versions are not comparable
    assert "were made under SPEC v1" in r.stderr  # these runs files carry no spec_version: pre-v2
    members = pd.concat([pd.read_csv(p) for p in runs])
    members = members[members["trend_kind"].eq("sma") & members["trend_lookback"].between(96, 104)
                      & members["test_final_btc"].gt(1.1)]
    assert s.trend_lookback == pytest.approx(members["trend_lookback"].median(), abs=4)
    eth, _ = ensure_sample(tmp_path / "sample", days=30)
    bt = subprocess.run([sys.executable, str(root / "ethbtc_accum_bot.py"), "backtest", "--data", str(eth),
                         "--config", str(tmp_path / "pick.json")], capture_output=True, text=True, cwd=root, timeout=300)
    assert bt.returncode == 0, bt.stderr


def test_min_occurs_excludes_one_run_wonders(root, tmp_path):
    runs = _runs(tmp_path)
    r = pick(root, "--runs", *runs, "--min-occurs", 1, "--q-fees", 1, "--q-turnover", 1, "--out-csv", tmp_path / "f.csv")
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(tmp_path / "f.csv").iloc[0]["family"].startswith("roc lb3")  # the one-off wins without the rule
    r = pick(root, "--runs", *runs, "--min-occurs", 4)
    assert r.returncode == 2 and "3 run(s) given but --min-occurs 4" in r.stderr and "--min-occurs 3" in r.stderr


def test_a_chance_pick_that_loses_btc_is_flagged(root, tmp_path):
    """Random trials whose families never repeat, except one pair that loses BTC: wf_pick still
    picks it (the only family in 2 runs) but says why not to trust it."""
    runs = _runs(tmp_path, n_runs=2, seed=5)
    for i, path in enumerate(runs):
        df = pd.read_csv(path)
        keep = df[~df["trend_kind"].eq("sma") | ~df["trend_lookback"].between(96, 104)]  # no planted family
        keep = keep[~keep["trend_lookback"].isin([30])]  # nor the churner
        loser = keep.iloc[[0]].assign(trend_kind="roc", trend_lookback=777, cooldown_minutes=600,
                                      flip_band_entry=0.05, flip_band_exit=0.02, step_allocation=0.5,
                                      test_final_btc=0.97 + i / 100)
        pd.concat([keep, loser]).to_csv(path, index=False)
    r = pick(root, "--runs", *runs, "--min-occurs", 2, "--q-fees", 1, "--q-turnover", 1)
    assert r.returncode == 0, r.stderr
    assert "pick: family #0 roc lb768-791" in r.stdout
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert any("the pick rests on 2 trial(s) from 2 run(s)" in w and "--lb-bucket 96" in w for w in warnings), r.stderr
    assert any("less BTC than it started with (mean 0.9750 x the start)" in w for w in warnings), r.stderr


@pytest.mark.parametrize("content, args, needle", [
    ("a,b\n1,2\n", [], "missing column(s) trend_kind"),
    (None, [], "runs file not found"),
    ("ok", ["--band-round", "3.5"], "--band-round is the rounding step"),
    ("ok", ["--family-index", "99"], "--family-index 99 is out of range"),
    ("ok", ["--require-costs", "--drop-costs"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_exit_2(root, tmp_path, content, args, needle):
    if content == "ok":
        path = _runs(tmp_path, 2)[0]
    else:
        path = tmp_path / "bad.csv"
        if content is not None:
            path.write_text(content)
    r = pick(root, "--runs", path, "--min-occurs", 1, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@settings(max_examples=60, deadline=None)
@given(days=st.integers(30, 2000), train=st.integers(5, 400), test=st.integers(1, 200), step=st.integers(1, 200),
       val=st.floats(0.05, 0.95))
def test_folds_never_train_on_their_test_data(days, train, test, step, val):
    first = pd.Timestamp("2020-01-01 05:15", tz="UTC")
    last = first + pd.Timedelta(days=days)
    try:
        folds = W.make_folds(first, last, train, test, step)
    except Exception as exc:  # noqa: BLE001 - only "no fold fits" is acceptable
        assert "no walk-forward fold fits" in str(exc)
        assert train + test > days - 1
        return
    for f in folds:
        (fit_a, fit_b), (val_a, val_b) = f.fit_and_validation(val)
        assert first <= f.train_start < f.train_end == f.test_start < f.test_end <= last
        assert pd.Timestamp(fit_a) <= pd.Timestamp(fit_b) < pd.Timestamp(val_a) <= pd.Timestamp(val_b) < f.test_start
    assert [f.index for f in folds] == list(range(len(folds)))
    assert all(b.train_start - a.train_start == pd.Timedelta(days=step) for a, b in zip(folds, folds[1:], strict=False))


def _hourly(n_days: int, seed: int) -> Candles:
    raw = generate(n_days * 24, 60, seed=seed, gaps=0)
    df = raw.set_index(pd.DatetimeIndex(pd.to_datetime(raw["open_time"], unit="ms", utc=True), name="open_time"))
    df = df[["open", "high", "low", "close", "volume"]]
    return Candles(df, 60, DataReport("synthetic", interval_minutes=60))


def _wf(candles: Candles) -> W.WalkForward:
    job = Job(build_config({}), candles, None, {}, load_space(None), Penalties(), n_trials=12, seed=4, threads=1,
              chunk_size=4, progress=False)
    folds = W.make_folds(candles.df.index[0], candles.df.index[-1] + pd.Timedelta(hours=1), 60, 20, 20)
    return W.run_walk_forward(job, folds, 0.3, FamilyRules(), FamilyPenalties(), top_k=3)


def test_walk_forward_choices_do_not_depend_on_test_data():
    """Scramble every bar from the last fold's test start on: every fold must pick the same
    configuration (their training data is unchanged); only the last OOS result may change."""
    clean = _hourly(160, seed=5)
    a = _wf(clean)
    cut = a.folds[-1].fold.test_start
    df = clean.df.copy()
    after = df.index >= cut
    rng = np.random.default_rng(9)
    df.loc[after, ["open", "high", "low", "close"]] *= np.exp(rng.normal(0, 0.05, (after.sum(), 1)))
    b = _wf(Candles(df, 60, clean.report))
    assert len(a.folds) == len(b.folds) >= 4
    for fa, fb in zip(a.folds, b.folds, strict=True):
        assert fa.best["trial"] == fb.best["trial"]
        assert fa.best["robust_score"] == fb.best["robust_score"]
        pd.testing.assert_frame_equal(fa.survivors, fb.survivors)
    for fa, fb in zip(a.folds[:-1], b.folds[:-1], strict=True):
        pd.testing.assert_series_equal(fa.oos, fb.oos)
    assert not a.folds[-1].oos.equals(b.folds[-1].oos)
    # stitched equity: starts at 1, covers exactly the test bars, chains the segments
    eq = a.equity
    assert eq.index[0] == a.folds[0].fold.test_start and eq.index.is_monotonic_increasing
    assert eq.iloc[-1] == pytest.approx(np.prod([f.oos.iloc[-1] for f in a.folds]))


def test_walk_forward_cli_end_to_end(root, tmp_path):
    eth, _ = ensure_sample(tmp_path / "s", days=200)
    r = pick(root, "--walk-forward", "--data", eth, "--train-days", 60, "--test-days", 30, "--n-random", 16,
             "--seed", 3, "--threads", 1, "--top-k", 3, "--pbo-splits", 8, "--emit-config", tmp_path / "wf.json",
             "--folds-out", tmp_path / "folds.csv", "--oos-out", tmp_path / "oos.csv", "--out-csv", tmp_path / "s.csv",
             "--excel-out", tmp_path / "wf.xlsx")
    assert r.returncode == 0, r.stderr
    assert "stitched OOS" in r.stdout and "surviving family" in r.stdout and "PBO" in r.stdout
    folds = pd.read_csv(tmp_path / "folds.csv")
    assert len(folds) == 4
    oos = pd.read_csv(tmp_path / "oos.csv", parse_dates=["time"])
    assert oos["time"].iloc[0] == pd.Timestamp(folds["test_start"].iloc[0])
    meta = json.loads((tmp_path / "wf.json").read_text())["meta"]
    assert meta["folds"]["n"] == 4 and 0 <= meta["overfit"]["pbo"] <= 1 and 0 <= meta["overfit"]["deflated_sharpe"] <= 1
    surv = pd.read_csv(tmp_path / "s.csv")
    assert meta["family"] == surv.iloc[0]["family"] and meta["folds_survived"] == surv["folds_survived"].max()
    cfg = load_config(tmp_path / "wf.json")
    candles = load_candles(eth)
    assert cfg.bar_minutes() == candles.interval_minutes


def test_runs_of_mixed_spec_versions_warn_in_one_line(tmp_path, capsys):
    """SPEC v2 (issue 14): trial CSVs record spec_version; stacking runs of different versions warns."""
    from ethbtc.research.families import load_runs

    old, new = _runs(tmp_path, n_runs=2)
    df = pd.read_csv(new)
    df["spec_version"] = K.SPEC_VERSION
    df.to_csv(new, index=False)
    load_runs([str(new)])
    assert capsys.readouterr().err == ""
    load_runs([str(old), str(new)])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: the runs files mix SPEC versions v1, v{K.SPEC_VERSION}: their figures are not "
                   "comparable (v2 changed R19 stepping and R23 BNB fees, v3 R22's fill model); re-run the older ones"]
