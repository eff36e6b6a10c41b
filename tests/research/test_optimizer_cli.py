"""optimizer_cli.py run as a user would: subprocesses, real files, real Optuna storages, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from ethbtc.config import load_config
from ethbtc.data.sample import ensure_sample
from ethbtc.research.trials import PARAM_COLUMNS

WINDOWS = ["--train-start", "2022-01-01", "--train-end", "2022-03-15",
           "--test-start", "2022-03-16", "--test-end", "2022-04-30"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_sample(tmp_path_factory.mktemp("sample"), days=120)


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away local PostgreSQL server (skips when PostgreSQL or psycopg is not installed)."""
    pytest.importorskip("psycopg")
    bins = [Path(p).parent for p in (shutil.which("initdb"), shutil.which("pg_ctl")) if p]
    bins += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    bindir = next((b for b in bins if (b / "initdb").exists() and (b / "pg_ctl").exists()), None)
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found")
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        as_user = ["runuser", "-u", "postgres", "--"]
    tmp = Path(tempfile.mkdtemp(prefix="ethbtc_pg_"))
    if as_user:
        shutil.chown(tmp, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp / "data"
    run = lambda *a: subprocess.run([*as_user, *map(str, a)], capture_output=True, text=True, timeout=120)  # noqa: E731
    if run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "optuna").returncode != 0:
        pytest.skip("initdb failed")
    started = run(bindir / "pg_ctl", "-D", data, "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1",
                  "-l", tmp / "log", "-w", "start")
    if started.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {started.stderr.strip()}")
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=optuna dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE optuna")
        yield f"postgresql+psycopg://optuna@127.0.0.1:{port}/optuna"
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def cli(root, *args, timeout=300):
    return subprocess.run([sys.executable, str(root / "optimizer_cli.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=root, timeout=timeout)


def start(root, *args):
    return subprocess.Popen([sys.executable, str(root / "optimizer_cli.py"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)


def wait_for_search(proc, timeout=120):
    """Read stderr until the search loop has started; return what was read."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if line.startswith("search:") or line == "":
            return "".join(seen)
    raise AssertionError("search never started: " + "".join(seen))


def test_seed_reproduces_trials_whatever_threads_and_chunks(root, data, tmp_path):
    common = ["--data", data[0], *WINDOWS, "--n-random", 24, "--seed", 7]
    a = cli(root, *common, "--threads", 1, "--out", tmp_path / "a.csv")
    b = cli(root, *common, "--threads", 2, "--chunk-size", 5, "--out", tmp_path / "b.csv")
    c = cli(root, *common[:-1], 8, "--threads", 1, "--out", tmp_path / "c.csv")
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + b.stderr + c.stderr
    fa, fb, fc = (pd.read_csv(tmp_path / f"{x}.csv").drop(columns="worker") for x in "abc")
    pd.testing.assert_frame_equal(fa, fb)
    assert len(fa) == 24 and not fa.set_index("trial")[PARAM_COLUMNS].equals(fc.set_index("trial")[PARAM_COLUMNS])
    # every parameter in its own column, plain values (no stringified dicts)
    assert set(PARAM_COLUMNS) <= set(fa.columns)
    assert {"train_final_btc", "test_final_btc", "test_turns", "score", "robust_score", "selected"} <= set(fa.columns)
    assert not fa[PARAM_COLUMNS].astype(str).apply(lambda s: s.str.contains("{")).any().any()
    assert (fa["flip_band_exit"] <= fa["flip_band_entry"]).all()
    assert fa["selected"].sum() == 1 and fa.iloc[0]["selected"]  # rows are ordered best robust first


def test_emitted_config_loads_unchanged_and_backtests_to_the_reported_figures(root, data, tmp_path):
    r = cli(root, "--data", data[0], "--bnb-data", data[1], "--config", root / "configs/prod_live.json", *WINDOWS,
            "--n-random", 30, "--seed", 3, "--out", tmp_path / "t.csv", "--emit-config", tmp_path / "best.json",
            "--excel-out", tmp_path / "t.xlsx")
    assert r.returncode == 0, r.stderr
    raw = json.loads((tmp_path / "best.json").read_text())
    assert set(raw) == {"strategy", "fees", "execution", "risk", "meta"}
    assert raw["strategy"]["bar_interval_minutes"] == 15 and raw["execution"]["interval"] == "15m"
    assert raw["meta"]["source"] == "optimizer_cli.py" and raw["meta"]["seed"] == 3
    cfg = load_config(tmp_path / "best.json")
    assert cfg.risk.basis_btc == 0.16 and cfg.fees.pay_fees_in_bnb  # base config carried over
    trials = pd.read_csv(tmp_path / "t.csv")
    pick = trials[trials["selected"]].iloc[0]
    assert raw["meta"]["trial"] == pick["trial"]
    assert raw["meta"]["spec_version"] == 3 and (trials["spec_version"] == 3).all()  # SPEC v3 (issues 14, 20)
    assert raw["execution"]["fill_model"] == "intrabar" and (trials["fill_model"] == "intrabar").all()  # R22 v3
    for k in PARAM_COLUMNS:
        assert getattr(cfg.strategy, k) == pytest.approx(pick[k]) if k != "trend_kind" else cfg.strategy.trend_kind == pick[k]
    bt = subprocess.run([sys.executable, str(root / "ethbtc_accum_bot.py"), "backtest", "--data", str(data[0]),
                         "--bnb-data", str(data[1]), "--config", str(tmp_path / "best.json"), "--start", "2022-03-16",
                         "--end", "2022-04-30", "--json-out", str(tmp_path / "s.json")],
                        capture_output=True, text=True, cwd=root, timeout=300)
    assert bt.returncode == 0, bt.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["final_btc"] == pytest.approx(pick["test_final_btc"], rel=1e-9)
    assert s["turns"] == pick["test_turns"] and s["trades"] == pick["test_trades"]
    assert "fees in BNB at -25 %, wallet assumed funded; BNB used" in bt.stdout  # R23 v2: which fee model ran
    assert (tmp_path / "t.xlsx").stat().st_size > 0


@pytest.mark.parametrize("kind, n", [("journal", 300), ("sqlite", 120), ("postgresql", 150)])
def test_two_workers_on_one_storage_produce_exactly_the_requested_distinct_trials(root, data, tmp_path, kind, n,
                                                                                  request):
    """Optuna's distributed mode: the same command twice on one storage (README multi-machine recipe)."""
    url = {"journal": str(tmp_path / "study.journal"), "sqlite": f"sqlite:///{tmp_path / 'study.db'}"}.get(kind)
    if kind == "postgresql":
        url = request.getfixturevalue("postgres_url")
    args = ["--data", data[0], *WINDOWS, "--n-random", n, "--threads", 1, "--chunk-size", 4,
            "--storage", url, "--study-name", "shared", "--seed", 11, "--no-progress"]
    procs = [start(root, *args, "--out", tmp_path / f"w{i}.csv") for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url)) if kind == "journal" else url
    study = optuna.load_study(study_name="shared", storage=storage)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == n
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == n
    workers = {t.user_attrs["row"]["worker"] for t in done}
    assert len(workers) == 2, "both processes should have evaluated trials"
    for i in range(2):  # each writes the whole study
        assert len(pd.read_csv(tmp_path / f"w{i}.csv")) == n


def test_sigint_stops_cleanly_and_still_writes_results(root, data, tmp_path):
    p = start(root, "--data", data[0], *WINDOWS, "--n-random", 100000, "--seed", 1, "--threads", 2,
              "--out", tmp_path / "t.csv", "--emit-config", tmp_path / "best.json")
    wait_for_search(p)
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "interrupt" in err
    trials = pd.read_csv(tmp_path / "t.csv")
    assert 0 < len(trials) < 100000
    assert "interrupted" in out and load_config(tmp_path / "best.json").meta["n_trials"] == len(trials)


def test_resume_after_interrupt_continues_the_same_study(root, data, tmp_path):
    db = f"sqlite:///{tmp_path / 'opt.db'}"
    common = ["--data", data[0], *WINDOWS, "--seed", 5, "--threads", 1, "--chunk-size", 4]
    p = start(root, *common, "--n-random", 100000, "--storage", db, "--study-name", "s1", "--out", tmp_path / "a.csv")
    wait_for_search(p)
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    study = optuna.load_study(study_name="s1", storage=db)
    k = len(study.get_trials(states=(TrialState.COMPLETE,)))
    assert k > 0 and not study.get_trials(states=(TrialState.RUNNING,))
    # the same command (with a reachable target) continues the study instead of starting over
    r = cli(root, *common, "--n-random", k + 6, "--storage", db, "--study-name", "s1", "--out", tmp_path / "b.csv")
    assert r.returncode == 0, r.stderr
    assert f"{k} already in the study" in r.stderr
    resumed = pd.read_csv(tmp_path / "b.csv").sort_values("trial").reset_index(drop=True)
    assert list(resumed["trial"]) == list(range(k + 6))
    # and the trials are exactly those of one uninterrupted in-memory run with the same seed
    ref = cli(root, *common, "--n-random", k + 6, "--out", tmp_path / "ref.csv")
    assert ref.returncode == 0, ref.stderr
    want = pd.read_csv(tmp_path / "ref.csv").sort_values("trial").reset_index(drop=True)
    cols = ["trial", *PARAM_COLUMNS, "train_final_btc", "test_final_btc", "robust_score"]
    pd.testing.assert_frame_equal(resumed[cols], want[cols])


def test_a_study_refuses_a_different_command(root, data, tmp_path):
    db = f"sqlite:///{tmp_path / 'opt.db'}"
    common = ["--data", data[0], "--n-random", 3, "--threads", 1, "--storage", db, "--study-name", "x"]
    assert cli(root, *common, *WINDOWS).returncode == 0
    other = WINDOWS[:-1] + ["2022-04-20"]
    r = cli(root, *common, *other)
    assert r.returncode == 2 and "was created for other data, windows" in r.stderr


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--n-random", "0"], "--n-random must be at least 1"),
        (["--top-quantile", "1.5"], "--top-quantile must be in (0, 1]"),
        (["--sampler", "grid"], "invalid choice: 'grid'"),
        (["--search-space", "{tmp}/space.json"], "unknown search parameter 'lookback'"),
        (["--storage", "{tmp}/no/such/dir/j.log"], "does not exist"),
        (["--storage", "nosuchdb://x"], "cannot open storage"),
        (["--threads", "-1"], "--threads must be >= 0"),
        (["--train-start", "2031-01-01", "--train-end", "2031-02-01"], "no candles between 2031-01-01"),
        (["--lambda-fees", "-1"], "--lambda-fees must be a finite number >= 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(root, data, tmp_path, extra, needle):
    (tmp_path / "space.json").write_text('{"lookback": [1, 2]}')
    extra = [e.format(tmp=tmp_path) for e in extra]
    r = cli(root, "--data", data[0], *WINDOWS, *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_trials_left_running_by_a_dead_worker_can_be_failed_on_resume(root, data, tmp_path):
    journal = tmp_path / "s.journal"
    common = ["--data", data[0], *WINDOWS, "--threads", 1, "--storage", journal, "--study-name", "z", "--seed", 1]
    assert cli(root, *common, "--n-random", 3).returncode == 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    orphan = optuna.load_study(study_name="z", storage=storage).ask()  # a worker that died mid-trial
    r = cli(root, *common, "--n-random", 6)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="z", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5  # the orphan holds a slot
    r = cli(root, *common, "--n-random", 6, "--fail-stale-minutes", 0)
    assert r.returncode == 0 and "marked failed" in r.stderr, r.stderr
    study = optuna.load_study(study_name="z", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert study.trials[orphan.number].state == TrialState.FAIL


def test_focused_cmaes_stage_and_tpe_run(root, data, tmp_path):
    common = ["--data", data[0], *WINDOWS, "--threads", 1, "--seed", 4]
    assert cli(root, *common, "--n-random", 20, "--emit-config", tmp_path / "best.json").returncode == 0
    best = load_config(tmp_path / "best.json").strategy
    r = cli(root, *common, "--n-random", 24, "--sampler", "cmaes", "--config", tmp_path / "best.json",
            "--out", tmp_path / "cma.csv")
    assert r.returncode == 0, r.stderr
    cma = pd.read_csv(tmp_path / "cma.csv")
    assert len(cma) == 24 and (cma["trend_kind"] == best.trend_kind).all()  # choices fixed by --focus
    assert (cma["trend_lookback"] - best.trend_lookback).abs().max() <= 0.2 * 380 / 2 + 1  # 20 % window
    r = cli(root, *common, "--n-random", 30, "--sampler", "tpe", "--out", tmp_path / "tpe.csv")
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "tpe.csv")) == 30


def test_early_stop_ends_the_search_when_the_best_stalls(root, data, tmp_path):
    r = cli(root, "--data", data[0], *WINDOWS, "--threads", 1, "--chunk-size", 2, "--seed", 1, "--n-random", 2000,
            "--early-stop", "--patience", 10, "--out", tmp_path / "t.csv")
    assert r.returncode == 0, r.stderr
    assert "early stop" in r.stdout
    n = len(pd.read_csv(tmp_path / "t.csv"))
    assert 10 < n < 2000
