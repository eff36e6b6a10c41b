"""Input hardening of every CLI (issue 9): bad flags, files, configs and replies end in one line.

The contract (developers' guide): bad input ends with exactly one ``error: ...`` line naming
what is wrong, exit code 2, no traceback, and no output file left looking valid -- an earlier
complete output survives untouched, no new output appears, no temp file is left behind.

``SCRIPTS`` is the registry: each script's minimal valid argv (placeholders such as
``{candles}``, ``{out:bars.csv}``) and which flags take candle files, kline files, configs,
outputs or numbers. Cases are generated from it and the tables in tests/support/bad_inputs.py
(machinery: tests/support/hardening_cases.py). To cover a new script, add one ``Script`` entry. The short run executes the ``core`` cases as real
subprocesses (in parallel) and every other case in-process through ``run_main``; ``make soak``
runs all of them as subprocesses, plus a ~50 MB input.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.cli_harness import Run
from tests.support.hardening_cases import (
    BAD_NUMBERS,
    WINDOWS,
    Case,
    Prepared,
    Script,
    Workspace,
    build_cases,
    execute,
    judge,
    open_workspace,
    set_flag,
    write_huge,
)
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET

BOT_OUT = ("--out", "{out:bars.csv}", "--trades-out", "{out:trades.csv}", "--json-out", "{out:summary.json}",
           "--excel-out", "{out:report.xlsx}")
RESEARCH = ("--n-random", "2", "--seed", "1", "--threads", "1", "--no-progress")
SIM_KEYS = {"BINANCE_KEY": SIM_KEY, "BINANCE_SECRET": SIM_SECRET}

SCRIPTS: dict[str, Script] = {s.name: s for s in [
    Script("backtest", ("ethbtc_accum_bot.py", "backtest"), ("--data", "{candles}", "--config", "{config}", *BOT_OUT),
           module="ethbtc_accum_bot", candles=("--data", "--bnb-data"), configs=("--config",),
           outputs=("--out", "--trades-out", "--json-out", "--excel-out", "--html-out"), required=("--data",),
           bad_values={"--basis-btc": BAD_NUMBERS, "--trend": (*BAD_NUMBERS, "1e30", "99999999999999999999"),
                       "--flip-band-entry": BAD_NUMBERS, "--maker-fee": (*BAD_NUMBERS, "0.5"),
                       "--step-allocation": ("nan", "0", "1.5"), "--cooldown-minutes": ("nan", "-1"),
                       "--min-trade-btc": ("inf", "-1"), "--strategy": ("ema",),
                       "--start": ("not-a-date", "2099-01-01", "99999-01-01"), "--end": ("2000-01-01",)}),
    Script("optimize", ("ethbtc_accum_bot.py", "optimize"),
           ("--data", "{candles}", *WINDOWS, "--n-random", "2", "--out", "{out:trials.csv}",
            "--emit-config", "{out:best.json}", "--allow-no-trade"),  # 2 trials on tiny data may not trade
           module="ethbtc_accum_bot", candles=("--data",), configs=("--config",),
           outputs=("--out", "--emit-config", "--excel-out", "--html-out"), required=("--data", "--train-start"),
           bad_values={"--n-random": ("0", "-5", "abc", "99999999999999999999999"), "--seed": ("-1", "x"),
                       "--train-end": ("2021-12-01",), "--taker-fee": ("nan", "1")}),
    Script("optimizer_cli", ("optimizer_cli.py",),
           ("--data", "{candles}", *WINDOWS, *RESEARCH, "--out", "{out:trials.csv}", "--emit-config", "{out:pick.json}",
            "--allow-no-trade"),
           module="optimizer_cli", candles=("--data", "--bnb-data"), configs=("--config",),
           outputs=("--out", "--emit-config", "--excel-out", "--html-out"), required=("--data", "--test-end"),
           bad_values={"--threads": ("100000", "-1", "x"), "--seed": ("-1", "1.5"), "--n-random": ("0",),
                       "--top-quantile": ("0", "nan", "2"), "--lambda-turns": ("nan", "-1"), "--turns-scale": ("0",),
                       "--min-improve": ("inf",), "--sampler": ("grid",), "--focus": ("0", "nan"),
                       "--search-space": ("{file}", "{dir}", "{candles}"), "--storage": ("foo://bar", "{file}"),
                       "--fail-stale-minutes": ("nan",), "--test-start": ("not-a-date", "2099-01-01")}),
    Script("wf_pick", ("wf_pick.py",), ("--runs", "{runs}", "--min-occurs", "1", "--no-overfit", "--allow-no-trade",
                                        "--out-csv", "{out:families.csv}", "--emit-config", "{out:pick.json}"),
           module="wf_pick", runs=("--runs",), configs=("--config",),
           outputs=("--out-csv", "--emit-config", "--excel-out", "--folds-out", "--html-out"),
           bad_values={"--cd-bucket": ("nan", "0"), "--lb-bucket": ("0", "x"), "--q-fees": ("2", "nan"),
                       "--top-k": ("0",), "--family-index": ("99", "-1"), "--min-occurs": ("0", "99"),
                       "--band-round": ("0",), "--penalty-turns": ("nan",), "--train-days": ("1e300", "0"),
                       "--pbo-configs": ("0",)}),
    Script("multi_interval_opt", ("multi_interval_opt.py",),
           ("--data", "{candles}", *WINDOWS, "--resample", "1h", *RESEARCH, "--out", "{out:summary.csv}",
            "--excel-out", "{out:multi.xlsx}", "--allow-no-trade"),
           module="multi_interval_opt", candles=("--data", "--bnb-data"), configs=("--config",),
           outputs=("--out", "--excel-out"), required=("--data",),
           bad_values={"--resample": ("7x", "5m", ",", "1M"), "--ref-interval": ("0m", "99999999999999999999m"),
                       "--out-dir": ("{file}",), "--seed": ("-1",), "--threads": ("100000",)}),
    Script("healthcheck", ("-m", "ethbtc.monitoring.healthcheck"), ("--url", "{junk}/health", "--timeout", "5"),
           module="ethbtc.monitoring.healthcheck",
           bad_values={"--url": ("ftp://x", "http://[::1", "nonsense", "http://127.0.0.1:99999/health"),
                       "--timeout": ("nan", "-1", "0", "x")}),
    Script("sample", ("-m", "ethbtc.data.sample"), ("--out-dir", "{outdir}", "--days", "2"), module="ethbtc.data.sample",
           bad_values={"--days": ("0", "-1", "x", "99999999"), "--interval": ("7x", "0m"), "--out-dir": ("{file}",)}),
    Script("selftest", ("ethbtc_accum_bot.py", "selftest"), (), module="ethbtc_accum_bot"),
    Script("live", ("live_executor.py",),
           ("--params", "{config}", "--mode", "testnet", "--once", "--metrics-port", "0",
            "--state", "{outdir}/state.json"),
           env=SIM_KEYS | {"BINANCE_BASE_URL": "{exchange}", "DOTENV_PATH": "{outdir}/none.env"},
           configs=("--params",), required=("--params",),
           bad_values={"--mode": ("paper", "LIVE "), "--interval": ("7x", "1M"), "--poll-sec": ("nan", "0", "-1"),
                       "--ttl-sec": ("nan", "-5"), "--klines-limit": ("0", "x"), "--http-timeout": ("nan", "0"),
                       "--metrics-port": ("70000", "-1"), "--recv-window-ms": ("0", "999999"),
                       "--state": ("{file}/sub/state.json", "{dir}")}),
    Script("vision_fix", ("vision_fix_timestamps.py",), ("--in", "{klines}", "--out", "{out:fixed.csv}"),
           module="vision_fix_timestamps", klines=("--in",), outputs=("--out",), required=("--in", "--out"),
           bad_values={"--freq": ("7x", "0m", "1M", "1h", "-15m"), "--keep": ("middle",)}),
    Script("download_vision", ("download_vision.py",),
           ("--symbol", "ETHBTC", "--intervals", "1h", "--start", "2017-12", "--end", "2017-12",
            "--base-url", "{mirror}", "--out-dir", "{outdir}", "--retries", "0", "--timeout", "5"),
           module="download_vision", required=("--symbol", "--start"), leftovers=("vision_cache/**/*",),
           bad_values={"--workers": ("0", "33", "nan"), "--timeout": ("0", "nan", "inf", "-1"),
                       "--retries": ("-1", "99999999999999999999"), "--symbol": ("ETH/BTC", ""),
                       "--intervals": ("7m", "", "1M"), "--start": ("2017-13", "1999", "2999-01"),
                       "--end": ("2017-11",), "--base-url": ("ftp://x", "http://[::1", "http://127.0.0.1:99999"),
                       "--out-dir": ("{file}", "{file}/sub")}),
    Script("seed_order", ("seed_testnet_order.py",), ("--side", "BUY", "--qty", "0.01", "--base-url", "{exchange}"),
           module="seed_testnet_order", env=SIM_KEYS, required=("--side",),
           bad_values={"--side": ("HOLD",), "--qty": ("0", "-1", "nan", "inf", "abc"), "--timeout": ("0", "nan", "inf"),
                       "--base-url": ("https://api.binance.com", "http://[::1", "ftp://127.0.0.1", "http://example.org")}),
    Script("ascii_levelbar", ("ascii_levelbar.py",), ("--close", "0.05", "--buy", "0.049", "--sell", "0.051"),
           module="ascii_levelbar", required=("--close",),
           bad_values={"--close": ("abc", "inf", "-1", "0"), "--buy": ("inf",), "--width": ("0", "-3", "x"),
                       "--closes": ("1,x,3",)}),
    Script("sim", ("-m", "ethbtc.sim"), ("--data", "{candles}", "--port", "0", "--manual",
                                          "--ledger-out", "{out:ledger.json}"),
           candles=("--data", "--bnb-data"), outputs=("--ledger-out",), ready="listening", required=("--data",),
           bad_values={"--port": ("70000", "-1", "x"), "--speed": ("nan", "0", "-1"), "--tick-size": ("0", "nan"),
                       "--spread-bps": ("nan", "-1"), "--fault-5xx": ("2", "nan"), "--delay-seconds": ("-5", "inf"),
                       "--start": ("garbage", "99999999"), "--interval": ("1h", "7x"), "--btc": ("-1", "nan")}),
]}


# ------------------------------------------------------------------------------- tests

CASES = build_cases(SCRIPTS)
SUBPROCESS = [c for c in CASES if c.core or c.kind in ("valid", "efbig")]
_ENV_BOUND = ("reply", "dotenv")  # need the subprocess's own environment (keys, DOTENV_PATH)
INPROCESS = [c for c in CASES if c not in SUBPROCESS and c.script.module is not None and c.kind not in _ENV_BOUND]
SOAK_ONLY = [c for c in CASES if c not in SUBPROCESS]  # all as subprocesses in make soak


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with open_workspace(tmp_path_factory.mktemp("hardening"), CASES) as ws:
        yield ws


def _params(cases: list[Case], soak_rest: list[Case] | None = None) -> list[Any]:
    out = [pytest.param(c, id=c.id) for c in cases]
    out += [pytest.param(c, id=c.id, marks=pytest.mark.soak) for c in soak_rest or []]
    return out


@pytest.fixture(scope="module")
def prefetched(request: pytest.FixtureRequest, workspace: Workspace,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Run, Prepared]]:
    """Run every selected subprocess case up front, in parallel (each is mostly interpreter start-up)."""
    wanted = [item.callspec.params["case"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_cli_subprocess" and hasattr(item, "callspec")
              and not item.get_closest_marker("skip")]
    jobs = int(os.environ.get("HARDENING_JOBS", max(2, os.cpu_count() or 2)))

    def one(case: Case) -> tuple[str, tuple[Run, Prepared]]:
        folder = tmp_path_factory.mktemp(case.script.name)
        return case.id, execute(case, workspace, folder, inprocess=False)

    # valid runs first: they also fill the numba cache, so no later case (e.g. one under a
    # file-size limit) has to compile and write it
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = dict(pool.map(one, [c for c in wanted if c.kind == "valid"]))
        done.update(pool.map(one, [c for c in wanted if c.kind != "valid"]))
    return done


@pytest.mark.parametrize("case", _params(SUBPROCESS, SOAK_ONLY))
def test_cli_subprocess(case: Case, prefetched: dict[str, tuple[Run, Prepared]], workspace: Workspace,
                        tmp_path: Path) -> None:
    run, prep = prefetched.get(case.id) or execute(case, workspace, tmp_path, inprocess=False)
    judge(case, run, prep)


@pytest.mark.parametrize("case", _params(INPROCESS))
def test_cli_inprocess(case: Case, workspace: Workspace, tmp_path: Path) -> None:
    run, prep = execute(case, workspace, tmp_path, inprocess=True)
    judge(case, run, prep)


def test_registry_covers_every_script_on_disk(root: Path) -> None:
    """A new top-level script without a registry entry fails here (add it to SCRIPTS)."""
    registered = {s.cmd[0] for s in SCRIPTS.values()}
    on_disk = {p.name for p in root.glob("*.py")}
    assert on_disk <= registered, f"scripts without hardening cases: {sorted(on_disk - registered)}"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.soak
@pytest.mark.parametrize("script", ["backtest", "vision_fix"])
def test_huge_file_with_a_bad_last_row_fails_cleanly(script: str, workspace: Workspace, tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    write_huge(huge, 50_000_000, tail="1999999999999,0.05,nan,0.05,0.05,1,1999999999999,1,1,1,1,0")
    s = SCRIPTS[script]
    flag = "--data" if script == "backtest" else "--in"
    tokens = list(s.valid)
    set_flag(tokens, flag, str(huge))
    case = Case(replace(s, valid=tuple(tokens)), "huge", "50MB", needles=("huge.csv",))
    run, prep = execute(case, workspace, tmp_path, inprocess=False)
    judge(case, run, prep)


@given(st.text(min_size=1, max_size=40))
def test_run_main_prints_exactly_one_line_whatever_the_message(text: str) -> None:
    """Last line of defence: a message echoing user text (a header, an argument) stays one line."""
    from ethbtc.cli import ArgumentParser, run_main
    from ethbtc.errors import UserError

    def fails(argv: Any) -> int:
        raise UserError(f"bad thing {text}")

    def parses(argv: Any) -> int:
        ArgumentParser(prog="x").parse_args(["--unknown", text])
        return 0

    for main in (fails, parses):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                rc = run_main(main, [])
            except SystemExit as exc:  # argparse exits itself
                rc = exc.code
        assert rc == 2 and err.getvalue().count("\n") == 1 and err.getvalue().startswith("error: ")
