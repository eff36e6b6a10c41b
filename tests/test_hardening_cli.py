"""Input hardening of every CLI (issue 9): bad flags, files, configs and replies end in one line.

The contract (developers' guide): bad input ends with exactly one ``error: ...`` line naming
what is wrong, exit code 2, no traceback, and no output file left looking valid -- an earlier
complete output survives untouched, no new output appears, no temp file is left behind.

``SCRIPTS`` is the registry: each script's minimal valid argv (placeholders such as
``{candles}``, ``{out:bars.csv}``) and which flags take candle files, kline files, configs,
outputs or numbers. Cases are generated from it and the tables in tests/bad_inputs.py. To
cover a new script, add one ``Script`` entry. The short run executes the ``core`` cases as real
subprocesses (in parallel) and every other case in-process through ``run_main``; ``make soak``
runs all of them as subprocesses, plus a ~50 MB input.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ethbtc.sample import generate
from tests.bad_inputs import CANDLES, CONFIGS, KLINES, Bad
from tests.cli_harness import Run, error_line, output_problems, run_inprocess, run_script, seed_outputs
from tests.sim_fixtures import SIM_KEY, SIM_SECRET, make_candles
from tests.vision_mirror import Mirror, serve

BAD_NUMBERS = ("abc", "nan", "inf", "-1")
# the short run feeds only this smoke set of each bad-input table to each script as a
# subprocess; every other entry runs in-process (same run_main path), all as subprocesses in soak
SMOKE = {"binary", "nan_price", "not_json", "unknown_key"}
SMOKE_REPLIES = {"not_json", "order_without_fields"}


@dataclass(frozen=True)
class Script:
    name: str
    cmd: tuple[str, ...]
    valid: tuple[str, ...]  # minimal valid argv; {placeholders} resolved per case
    module: str | None = None  # importable module with main(argv) for in-process cases
    candles: tuple[str, ...] = ()  # flags fed tests/bad_inputs.CANDLES
    klines: tuple[str, ...] = ()  # flags fed KLINES
    configs: tuple[str, ...] = ()  # flags fed CONFIGS
    outputs: tuple[str, ...] = ()  # flags naming output files (also fed bad paths)
    bad_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag -> refused values
    required: tuple[str, ...] = ()  # flags whose absence is an error
    env: Mapping[str, str] = field(default_factory=dict)
    ready: str | None = None  # a server: the line after which a valid run is stopped (SIGTERM)
    leftovers: tuple[str, ...] = ()  # globs a failed run may leave in out/ (e.g. a verified cache)


BOT_OUT = ("--out", "{out:bars.csv}", "--trades-out", "{out:trades.csv}", "--json-out", "{out:summary.json}",
           "--excel-out", "{out:report.xlsx}")
OPT_WINDOWS = ("--train-start", "2022-01-01", "--train-end", "2022-01-03", "--test-start", "2022-01-04",
               "--test-end", "2022-01-05")
SIM_KEYS = {"BINANCE_KEY": SIM_KEY, "BINANCE_SECRET": SIM_SECRET}

SCRIPTS: dict[str, Script] = {s.name: s for s in [
    Script("backtest", ("ethbtc_accum_bot.py", "backtest"), ("--data", "{candles}", "--config", "{config}", *BOT_OUT),
           module="ethbtc_accum_bot", candles=("--data", "--bnb-data"), configs=("--config",),
           outputs=("--out", "--trades-out", "--json-out", "--excel-out"), required=("--data",),
           bad_values={"--basis-btc": BAD_NUMBERS, "--trend": (*BAD_NUMBERS, "1e30", "99999999999999999999"),
                       "--flip-band-entry": BAD_NUMBERS, "--maker-fee": (*BAD_NUMBERS, "0.5"),
                       "--step-allocation": ("nan", "0", "1.5"), "--cooldown-minutes": ("nan", "-1"),
                       "--min-trade-btc": ("inf", "-1"), "--strategy": ("ema",),
                       "--start": ("not-a-date", "2099-01-01", "99999-01-01"), "--end": ("2000-01-01",)}),
    Script("optimize", ("ethbtc_accum_bot.py", "optimize"),
           ("--data", "{candles}", *OPT_WINDOWS, "--n-random", "2", "--out", "{out:trials.csv}",
            "--emit-config", "{out:best.json}"),
           module="ethbtc_accum_bot", candles=("--data",), configs=("--config",),
           outputs=("--out", "--emit-config", "--excel-out"), required=("--data", "--train-start"),
           bad_values={"--n-random": ("0", "-5", "abc", "99999999999999999999999"), "--seed": ("-1", "x"),
                       "--train-end": ("2021-12-01",), "--taker-fee": ("nan", "1")}),
    Script("selftest", ("ethbtc_accum_bot.py", "selftest"), (), module="ethbtc_accum_bot"),
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


# ------------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    script: Script
    kind: str  # valid | file | value | missing_value | unknown_flag | required | output | efbig | reply
    label: str
    flag: str | None = None
    value: str | None = None  # for "value"/"output": the replacement value
    bad: Bad | None = None  # for "file": what to feed
    table: str = ""  # candles | klines | configs
    needles: tuple[str, ...] = ()  # the error line must contain one of these
    expect: str = "error"
    core: bool = True  # runs as a subprocess in the short run

    @property
    def id(self) -> str:
        return f"{self.script.name}:{self.kind}:{self.flag or ''}:{self.label}"


def _key(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def build_cases() -> list[Case]:
    cases: list[Case] = []
    tables = {"candles": CANDLES, "klines": KLINES, "configs": CONFIGS}
    for s in SCRIPTS.values():
        cases.append(Case(s, "valid", "minimal", expect="ok"))
        cases.append(Case(s, "unknown_flag", "--no-such-flag", needles=("--no-such-flag",)))
        for flag in s.required:
            cases.append(Case(s, "required", "dropped", flag=flag, needles=(flag,), core=False))
        for table in tables:
            for i, flag in enumerate(getattr(s, table)):
                for bad in tables[table]:
                    core = bad.core and i == 0 and bad.name in SMOKE
                    cases.append(Case(s, "file", bad.name, flag=flag, bad=bad, table=table, expect=bad.expect,
                                      core=core, needles=(bad.needle,) if bad.needle else ()))
                cases.append(Case(s, "missing_value", "at end", flag=flag, needles=(flag,), core=False))
        for flag, values in s.bad_values.items():
            for j, value in enumerate(values):
                cases.append(Case(s, "value", value or "empty", flag=flag, value=value,
                                  needles=(flag, _key(flag), value) if value else (flag, _key(flag)),
                                  core=j == 0 and (flag == next(iter(s.bad_values)) or s.module is None)))
        for i, flag in enumerate(s.outputs):
            for label, value in (("under_a_file", "{file}/x.out"), ("a_folder", "{dir}")):
                cases.append(Case(s, "output", label, flag=flag, value=value, needles=("file.txt", "folder"),
                                  core=i == 0 and label == "under_a_file"))
        if s.ready is None and (s.outputs or "{outdir}" in s.valid):
            cases.append(Case(s, "efbig", "file size limit", needles=("File too large",)))
        if s.name == "download_vision":
            for bad in KLINES:
                if not bad.directory and bad.name != "missing":
                    # a month holding one candle is possible (unlike a one-row file to repair)
                    expect = "ok" if bad.name in ("one_row", "all_same_time") else bad.expect
                    cases.append(Case(s, "archive", bad.name, bad=bad, table="klines", expect=expect,
                                      core=bad.name == "binary",
                                      needles=("ETHBTC", "1h klines")))
        if s.name == "seed_order":
            for label in REPLIES:
                cases.append(Case(s, "reply", label, needles=("unexpected reply", "exchange"),
                                  core=label in SMOKE_REPLIES))
            for bad in DOTENV_FILES:
                cases.append(Case(s, "dotenv", bad.name, bad=bad, needles=(bad.needle or "env",),
                                  core=bad.name == "binary"))
    return cases


# ------------------------------------------------------------------------------- inputs

# seed_testnet_order.py: exchange replies that are valid HTTP but not what Binance sends
REPLIES: dict[str, dict[str, bytes]] = {
    "not_json": {"exchangeInfo": b"<html>maintenance</html>"},
    "no_symbols": {"exchangeInfo": b"{}"},
    "empty_symbols": {"exchangeInfo": b'{"symbols": []}'},
    "list_reply": {"exchangeInfo": b"[1, 2]"},
    "order_without_fields": {"order": b'{"orderId": 1}'},
    "order_bad_number": {"order": b'{"orderId": 1, "status": "FILLED", "executedQty": "x", "cummulativeQuoteQty": "1"}'},
    "account_without_balances": {"account": b"{}"},
}
_GOOD_REPLY = {
    "exchangeInfo": b'{"symbols": [{"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC"}]}',
    "order": b'{"orderId": 1, "status": "FILLED", "executedQty": "0.01", "cummulativeQuoteQty": "0.0005", "fills": []}',
    "account": b'{"balances": [{"asset": "BTC", "free": "1", "locked": "0"}]}',
}

DOTENV_FILES = [
    Bad("binary", lambda d: bytes(range(256)) * 8, suffix=".env"),
    Bad("utf16", lambda d: "BINANCE_KEY=k\n".encode("utf-16"), suffix=".env"),
]


class _JunkExchange(ThreadingHTTPServer):
    """Answers /<case>/api/v3/<endpoint> with REPLIES[case] (else a well-formed reply)."""

    daemon_threads = True


class _JunkHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _answer(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        case, endpoint = parts[0], parts[-1]
        body = REPLIES.get(case, {}).get(endpoint, _GOOD_REPLY.get(endpoint, b"{}"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.8f").encode()


def _month_klines(month: str, header: bool = False) -> bytes:
    """A month of 1h Binance rows (by default without a header, as Vision publishes them)."""
    start = pd.Timestamp(month + "-01", tz="UTC")
    n = int((start + pd.offsets.MonthBegin(1) - start) / pd.Timedelta(hours=1))
    df = generate(n, 60, seed=5, gaps=0)
    t = start.value // 1_000_000 + pd.RangeIndex(n).to_numpy() * 3_600_000
    df["open_time"], df["close_time"] = t, t + 3_600_000 - 1
    return df.to_csv(index=False, header=header, float_format="%.8f").encode()


@dataclass
class Workspace:
    root: Path
    files: dict[str, Path]
    valid_bytes: dict[str, bytes]
    mirror: Mirror
    exchange_url: str
    sim_url: str
    archive_month: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from ethbtc.sim import serve_sim

    root = tmp_path_factory.mktemp("hardening")
    candles = _csv_bytes(generate(400, 15, seed=7))
    config = json.dumps({"trend_kind": "sma", "trend_lookback": 48, "bar_interval_minutes": 15}).encode()
    files = {"candles": root / "candles.csv", "bnb": root / "bnb.csv", "config": root / "config.json",
             "klines": root / "klines.csv"}
    files["candles"].write_bytes(candles)
    files["klines"].write_bytes(candles)
    files["bnb"].write_bytes(_csv_bytes(generate(400, 15, seed=11, start_price=0.009, gaps=0)))
    files["config"].write_bytes(config)
    junk = _JunkExchange(("127.0.0.1", 0), _JunkHandler)
    threading.Thread(target=junk.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    with serve(root / "vision") as mirror, serve_sim(make_candles(), api_key=SIM_KEY, api_secret=SIM_SECRET,
                                                      balances={"BTC": "1", "ETH": "0", "BNB": "0"},
                                                      start=200) as sim:
        months = [f"{y}-{m:02d}" for y in range(2018, 2022) for m in range(1, 13)]
        mirror.add_zip("data/spot/monthly/klines/ETHBTC/1h/ETHBTC-1h-2017-12.zip", _month_klines("2017-12").decode())
        ws = Workspace(root, files, {"candles": candles, "klines": candles, "configs": config}, mirror,
                       f"http://127.0.0.1:{junk.server_address[1]}", sim.base_url)
        for case, month in zip((c for c in build_cases() if c.kind == "archive"), months, strict=False):
            ws.archive_month[case.label] = month
            data = case.bad.make(_month_klines(month, header=True)) if case.bad else None
            key = f"data/spot/monthly/klines/ETHBTC/1h/ETHBTC-1h-{month}.zip"
            if data is not None:
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                    zf.writestr(f"ETHBTC-1h-{month}.csv", data)
                _publish(mirror, key, buf.getvalue())
        yield ws
    junk.shutdown()
    junk.server_close()


def _publish(mirror: Mirror, key: str, body: bytes) -> None:
    mirror.extra[key] = body
    mirror.extra[key + ".CHECKSUM"] = f"{hashlib.sha256(body).hexdigest()}  {key.rsplit('/', 1)[-1]}\n".encode()


@dataclass
class Prepared:
    argv: list[str]
    env: dict[str, str]
    folder: Path  # the case's own folder (cwd)
    out: Path  # where outputs go
    outputs: list[Path]
    seeded: list[Path]


def prepare(case: Case, ws: Workspace, folder: Path) -> Prepared:
    s = case.script
    out = folder / "out"
    tokens = list(s.valid)
    env = dict(s.env)
    if case.kind == "unknown_flag":
        tokens.append("--no-such-flag")
    elif case.kind == "required":
        i = tokens.index(case.flag)
        del tokens[i: i + 2]
    elif case.kind == "missing_value":
        if case.flag in tokens:
            i = tokens.index(case.flag)
            del tokens[i: i + 2]
        tokens.append(case.flag)
    elif case.kind in ("value", "output"):
        _set(tokens, case.flag, case.value)
    elif case.kind == "file":
        _set(tokens, case.flag, "{bad}")
    elif case.kind == "archive":
        month = ws.archive_month[case.label]
        _set(tokens, "--start", month)
        _set(tokens, "--end", month)
    elif case.kind == "reply":
        _set(tokens, "--base-url", f"{ws.exchange_url}/{case.label}")
    elif case.kind == "dotenv":
        env = {}  # keys must come from the (broken) .env file
        env["DOTENV_PATH"] = "{bad}"

    (folder / "file.txt").write_text("a file, not a folder\n")
    (folder / "folder").mkdir(exist_ok=True)
    if case.bad is not None and case.kind in ("file", "dotenv"):
        bad_path = folder / f"bad_{case.bad.name}{case.bad.suffix}"
        if case.bad.directory:
            bad_path.mkdir()
        else:
            data = case.bad.make(ws.valid_bytes.get(case.table, b""))
            if data is not None:
                bad_path.write_bytes(data)
    else:
        bad_path = folder / "unused"
    outputs: list[Path] = []

    def resolve(token: str) -> str:
        if token.startswith("{out:"):
            path = out / token[5:-1]
            outputs.append(path)
            return str(path)
        values = {"{candles}": ws.files["candles"], "{config}": ws.files["config"], "{klines}": ws.files["klines"],
                  "{bnb}": ws.files["bnb"], "{mirror}": ws.mirror.url, "{outdir}": out, "{bad}": bad_path,
                  "{exchange}": ws.sim_url if case.kind != "reply" else ws.exchange_url,
                  "{file}": folder / "file.txt", "{dir}": folder / "folder"}
        for name, value in values.items():
            token = token.replace(name, str(value))
        return token

    argv = [resolve(t) for t in tokens]
    env = {k: resolve(v) for k, v in env.items()}
    seeded: list[Path] = []
    if case.expect == "error" and outputs:
        seed_outputs(outputs)
        seeded = outputs[:1]
    return Prepared(argv, env, folder, out, outputs, seeded)


def _set(tokens: list[str], flag: str | None, value: str | None) -> None:
    assert flag is not None and value is not None
    if flag in tokens:
        tokens[tokens.index(flag) + 1] = value
    else:
        tokens += [flag, value]


def execute(case: Case, ws: Workspace, folder: Path, inprocess: bool, fsize: int | None = None) -> tuple[Run, Prepared]:
    prep = prepare(case, ws, folder)
    if inprocess:
        assert case.script.module is not None
        return run_inprocess(case.script.module, [*case.script.cmd[1:], *prep.argv], cwd=folder), prep
    limit = 200 if case.kind == "efbig" else fsize  # bytes: every output here is larger
    return run_script(case.script.cmd, prep.argv, cwd=folder, env=prep.env, fsize_limit=limit,
                      ready=case.script.ready, timeout=300), prep


def judge(case: Case, run: Run, prep: Prepared) -> None:
    s = case.script
    if case.expect == "ok":
        assert run.returncode == 0, run.describe()
        assert "Traceback" not in run.stderr, run.describe()
        for path in prep.outputs:
            assert path.is_file() and path.stat().st_size > 0, f"{path} not written\n{run.describe()}"
        if case.kind == "valid" and s.name == "download_vision":
            assert list(prep.out.glob("ETHBTC_1h_*_vision.csv")), run.describe()
        return
    line = error_line(run)
    needles = case.needles or ((case.bad.name if case.bad else ""),)
    assert any(n and n in line for n in needles), f"error line names none of {needles}: {line}"
    assert len(line) < 600, line
    problems = output_problems(prep.out, prep.seeded, s.leftovers)
    assert not problems, "\n".join(problems) + "\n" + run.describe()
    leftovers = [p for p in prep.folder.rglob(".*.tmp")]
    assert not leftovers, leftovers


# ------------------------------------------------------------------------------- tests

CASES = build_cases()
SUBPROCESS = [c for c in CASES if c.core or c.kind in ("valid", "efbig")]
_ENV_BOUND = ("reply", "dotenv")  # need the subprocess's own environment (keys, DOTENV_PATH)
INPROCESS = [c for c in CASES if c not in SUBPROCESS and c.script.module is not None and c.kind not in _ENV_BOUND]
SOAK_ONLY = [c for c in CASES if c not in SUBPROCESS]  # all as subprocesses in make soak


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


# ------------------------------------------------------------------------------- huge inputs (soak)

def _write_huge(path: Path, target_bytes: int, tail: str | None = None) -> None:
    """~target_bytes of valid 1m candles written in chunks (never all in memory); ``tail``
    replaces the last row (e.g. a NaN price)."""
    chunk = generate(20_000, 1, seed=3, gaps=0)
    step = 20_000 * 60_000
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(",".join(chunk.columns) + "\n")
        k = 0
        while fh.tell() < target_bytes:
            part = chunk.copy()
            part["open_time"] += k * step
            part["close_time"] += k * step
            fh.write(part.to_csv(index=False, header=False, float_format="%.8f"))
            k += 1
        if tail is not None:
            fh.write(tail + "\n")


@pytest.mark.soak
@pytest.mark.parametrize("script", ["backtest", "vision_fix"])
def test_huge_file_with_a_bad_last_row_fails_cleanly(script: str, workspace: Workspace, tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    _write_huge(huge, 50_000_000, tail="1999999999999,0.05,nan,0.05,0.05,1,1999999999999,1,1,1,1,0")
    s = SCRIPTS[script]
    flag = "--data" if script == "backtest" else "--in"
    tokens = list(s.valid)
    _set(tokens, flag, str(huge))
    case = Case(replace(s, valid=tuple(tokens)), "huge", "50MB", needles=("huge.csv",))
    run, prep = execute(case, workspace, tmp_path, inprocess=False)
    judge(case, run, prep)
