"""Machinery of the CLI hardening suite: cases generated from a script registry, their inputs
(files, a Vision mirror, the paper exchange, a junk exchange), running and judging them.

The registry itself (``SCRIPTS``) and the tests live in tests/scripts/test_hardening_cli.py; the bad
inputs in tests/support/bad_inputs.py. A :class:`Case` is one script fed one bad thing; ``prepare``
turns it into argv/env in its own folder, ``execute`` runs it (subprocess or in-process) and
``judge`` checks the failure contract (tests/support/cli_harness.py) or, for accepted input, success.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from ethbtc.data.sample import generate
from tests.support.bad_inputs import CANDLES, CONFIGS, KLINES, RUNS, Bad
from tests.support.cli_harness import (
    Run,
    error_line,
    output_problems,
    run_inprocess,
    run_script,
    seed_outputs,
)
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET, make_candles
from tests.support.vision_mirror import Mirror, serve

BAD_NUMBERS = ("abc", "nan", "inf", "-1")
# the short run feeds only this smoke set of each bad-input table to each script as a
# subprocess; every other entry runs in-process (same run_main path), all as subprocesses in soak
SMOKE = {"binary", "nan_price", "not_json", "unknown_key"}
PLACEHOLDER_NAMES = {"{file}": "file.txt", "{dir}": "folder", "{candles}": "candles.csv"}
# train/test windows inside the workspace candles (400 x 15m from 2022-01-01)
WINDOWS = ("--train-start", "2022-01-01", "--train-end", "2022-01-03", "--test-start", "2022-01-04",
           "--test-end", "2022-01-05")
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
    runs: tuple[str, ...] = ()  # flags fed RUNS (optimiser trial CSVs)
    outputs: tuple[str, ...] = ()  # flags naming output files (also fed bad paths)
    bad_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag -> refused values
    required: tuple[str, ...] = ()  # flags whose absence is an error
    env: Mapping[str, str] = field(default_factory=dict)
    ready: str | None = None  # a server: the line after which a valid run is stopped (SIGTERM)
    leftovers: tuple[str, ...] = ()  # globs a failed run may leave in out/ (e.g. a verified cache)


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


def build_cases(scripts: Mapping[str, Script]) -> list[Case]:
    cases: list[Case] = []
    tables = {"candles": CANDLES, "klines": KLINES, "configs": CONFIGS, "runs": RUNS}
    for s in scripts.values():
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
                shown = PLACEHOLDER_NAMES.get(value, value)  # a path placeholder: its file name
                cases.append(Case(s, "value", value or "empty", flag=flag, value=value,
                                  needles=(flag, _key(flag), shown) if value else (flag, _key(flag)),
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


@contextmanager
def open_workspace(root: Path, cases: list[Case]) -> Iterator[Workspace]:
    """Valid input files, a Vision mirror (one month per archive case), the paper exchange and
    the junk exchange, all on 127.0.0.1 for the duration."""
    from ethbtc.sim import serve_sim

    candles = _csv_bytes(generate(400, 15, seed=7))
    config = json.dumps({"trend_kind": "sma", "trend_lookback": 48, "bar_interval_minutes": 15}).encode()
    files = {"candles": root / "candles.csv", "bnb": root / "bnb.csv", "config": root / "config.json",
             "klines": root / "klines.csv"}
    files["candles"].write_bytes(candles)
    files["klines"].write_bytes(candles)
    files["bnb"].write_bytes(_csv_bytes(generate(400, 15, seed=11, start_price=0.009, gaps=0)))
    files["config"].write_bytes(config)
    files["runs"] = root / "trials.csv"
    trials = _trials_csv(files["candles"], files["runs"])
    junk = _JunkExchange(("127.0.0.1", 0), _JunkHandler)
    threading.Thread(target=junk.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    with serve(root / "vision") as mirror, serve_sim(make_candles(), api_key=SIM_KEY, api_secret=SIM_SECRET,
                                                      balances={"BTC": "1", "ETH": "0", "BNB": "0"},
                                                      start=200) as sim:
        months = [f"{y}-{m:02d}" for y in range(2018, 2022) for m in range(1, 13)]
        mirror.add_zip("data/spot/monthly/klines/ETHBTC/1h/ETHBTC-1h-2017-12.zip", _month_klines("2017-12").decode())
        ws = Workspace(root, files, {"candles": candles, "klines": candles, "configs": config, "runs": trials}, mirror,
                       f"http://127.0.0.1:{junk.server_address[1]}", sim.base_url)
        for case, month in zip((c for c in cases if c.kind == "archive"), months, strict=False):
            ws.archive_month[case.label] = month
            data = case.bad.make(_month_klines(month, header=True)) if case.bad else None
            key = f"data/spot/monthly/klines/ETHBTC/1h/ETHBTC-1h-{month}.zip"
            if data is not None:
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                    zf.writestr(f"ETHBTC-1h-{month}.csv", data)
                _publish(mirror, key, buf.getvalue())
        try:
            yield ws
        finally:
            junk.shutdown()
            junk.server_close()


def _trials_csv(candles: Path, out: Path) -> bytes:
    """A real optimizer_cli.py trial CSV (8 trials) on the workspace candles, made in-process."""
    import optimizer_cli
    from ethbtc.cli import run_main

    argv = ["--data", str(candles), *WINDOWS, "--n-random", "8", "--seed", "3", "--threads", "1",
            "--no-progress", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        rc = run_main(optimizer_cli.main, argv)
    assert rc == 0, err.getvalue()
    return out.read_bytes()


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
        set_flag(tokens, case.flag, case.value)
    elif case.kind == "file":
        set_flag(tokens, case.flag, "{bad}")
    elif case.kind == "archive":
        month = ws.archive_month[case.label]
        set_flag(tokens, "--start", month)
        set_flag(tokens, "--end", month)
    elif case.kind == "reply":
        set_flag(tokens, "--base-url", f"{ws.exchange_url}/{case.label}")
    elif case.kind == "dotenv":
        env = {}  # keys must come from the (broken) .env file
        env["DOTENV_PATH"] = "{bad}"

    (folder / "file.txt").write_text("a file, not a folder\n")
    (folder / "folder").mkdir(exist_ok=True)
    if case.bad is not None and case.kind in ("file", "dotenv"):
        bad_path = case.bad.place(folder / f"bad_{case.bad.name}{case.bad.suffix}", ws.valid_bytes.get(case.table, b""))
    else:
        bad_path = folder / "unused"
    outputs: list[Path] = []

    def resolve(token: str) -> str:
        if token.startswith("{out:"):
            path = out / token[5:-1]
            outputs.append(path)
            return str(path)
        values = {"{candles}": ws.files["candles"], "{config}": ws.files["config"], "{klines}": ws.files["klines"],
                  "{runs}": ws.files["runs"], "{junk}": ws.exchange_url,
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


def set_flag(tokens: list[str], flag: str | None, value: str | None) -> None:
    assert flag is not None and value is not None
    if flag in tokens:
        tokens[tokens.index(flag) + 1] = value
    else:
        tokens += [flag, value]


def execute(case: Case, ws: Workspace, folder: Path, inprocess: bool, fsize: int | None = None) -> tuple[Run, Prepared]:
    prep = prepare(case, ws, folder)
    if inprocess:
        assert case.script.module is not None
        cmd = case.script.cmd
        sub = cmd[1:] if cmd[0].endswith(".py") else cmd[2:]  # ("x.py", "backtest") / ("-m", "pkg.mod")
        return run_inprocess(case.script.module, [*sub, *prep.argv], cwd=folder), prep
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


def write_huge(path: Path, target_bytes: int, tail: str | None = None) -> None:
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
