"""download_vision.py against a local Vision mirror (real 2017-2023 zips + built daily zips).

Faults are injected per file (404 month, corrupt zip, wrong checksum, 500, 503 + Retry-After,
stalled body); the merged CSV must still equal the real monthly data row for row (SPEC R2:
microsecond rows from 2025 come out in ms).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import download_vision
from ethbtc.cli import run_main
from ethbtc.data.httpfetch import Fetcher, NetworkError, parse_retry_after
from ethbtc.data.vision import FETCH_COMMAND, daily_key, monthly_key
from tests.support.vision_mirror import Mirror, csv_rows, serve

ROOT = Path(download_vision.__file__).resolve().parent
KLINE_DIR = "data/spot/monthly/klines/ETHBTC/1h"


@pytest.fixture()
def vision_root(shared_data: Path) -> Path:
    root = shared_data / "vision"
    if not (root / KLINE_DIR).is_dir():
        pytest.skip(f"no Vision mirror at {root}")
    return root


@pytest.fixture()
def mirror(vision_root: Path) -> Iterator[Mirror]:
    with serve(vision_root) as m:
        yield m


@pytest.fixture()
def bare_mirror(tmp_path: Path) -> Iterator[Mirror]:
    """A mirror with no real files: only what the test publishes."""
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as m:
        yield m


def month_rows(vision_root: Path, month: str) -> list[list[str]]:
    with zipfile.ZipFile(vision_root / KLINE_DIR / f"ETHBTC-1h-{month}.zip") as zf:
        text = zf.read(zf.namelist()[0]).decode()
    return [line.split(",") for line in text.split()]


def publish_daily(mirror: Mirror, rows: list[list[str]], micro: bool, symbol: str = "ETHBTC") -> list[str]:
    """Split rows by UTC day into daily zips (times in us when ``micro``), as Vision does."""
    by_day: dict[str, list[list[str]]] = {}
    for r in rows:
        day = datetime.fromtimestamp(int(r[0]) / 1000, tz=UTC).date()
        out = list(r)
        if micro:
            out[0], out[6] = str(int(r[0]) * 1000), str(int(r[6]) * 1000 + 999)
        by_day.setdefault(day.isoformat(), []).append(out)
    keys = []
    for day, day_rows in by_day.items():
        key = daily_key(symbol, "1h", datetime.fromisoformat(day).date())
        mirror.add_zip(key, csv_rows(day_rows))
        keys.append(key)
    return keys


def expected(shared_data: Path, start: str, end_exclusive: str) -> pd.DataFrame:
    df = pd.read_csv(shared_data / "ETHBTC_1h_2017-07_2023-06.csv")
    lo, hi = (int(pd.Timestamp(t, tz="UTC").value // 1_000_000) for t in (start, end_exclusive))
    return df[(df.open_time >= lo) & (df.open_time < hi)].reset_index(drop=True)


def assert_same(path: Path, want: pd.DataFrame) -> None:
    got = pd.read_csv(path)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:  # values compared as numbers: '0.10000000' == '0.1'
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)


def dl(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = run_main(download_vision.main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "download_vision.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_full_archive_equals_real_monthly_csvs(mirror: Mirror, shared_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = dl(["--symbol", "ETHBTC", "--intervals", "1h", "--start", "2017-07", "--end", "2023-06",
                       "--out-dir", str(tmp_path), "--base-url", mirror.url], capsys)
    assert rc == 0, err
    assert_same(tmp_path / "ETHBTC_1h_2017-07_2023-06_vision.csv", expected(shared_data, "2017-07", "2023-07"))
    assert "52151 rows" in out and "gaps: 27 (117 missing bars)" in out  # README's known defects
    assert "43 rows off the interval grid" in out
    assert "2018-02-08 01:00:00 .. 2018-02-09 08:00:00  (32 bars)" in out


def test_faults_are_recovered_and_result_is_exact(mirror: Mirror, vision_root: Path, shared_data: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = {m: monthly_key("ETHBTC", "1h", 2020, int(m[-2:])) for m in
           ("2020-01", "2020-02", "2020-03", "2020-04", "2020-05")}
    mirror.fault(key["2020-01"] + ".CHECKSUM", "503:1")
    mirror.fault(key["2020-02"], "corrupt")
    mirror.fault(key["2020-03"], "404")  # not published -> daily zips, in microseconds
    march = month_rows(vision_root, "2020-03")
    daily = publish_daily(mirror, march, micro=True)
    mirror.fault(key["2020-04"], "500")
    mirror.fault(key["2020-05"], "stall")
    rc, out, err = dl(["--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-05", "--out-dir",
                       str(tmp_path), "--base-url", mirror.url, "--timeout", "0.5", "--workers", "3"], capsys)
    assert rc == 0, err
    assert_same(tmp_path / "ETHBTC_1h_2020-01_2020-05_vision.csv", expected(shared_data, "2020-01", "2020-06"))
    hits = mirror.hits()
    assert hits[key["2020-01"] + ".CHECKSUM"] == 2
    assert hits[key["2020-02"]] == 2 and hits[key["2020-04"]] == 2 and hits[key["2020-05"]] == 2
    assert hits[key["2020-03"]] == 1 and all(hits[k] == 1 for k in daily) and len(daily) == 31
    assert f"{len(march)} rows had microsecond" in out


def test_resume_fetches_only_missing_or_corrupt(mirror: Mirror, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-03", "--out-dir", str(tmp_path),
            "--base-url", mirror.url]
    assert dl(argv, capsys)[0] == 0
    first = (tmp_path / "ETHBTC_1h_2020-01_2020-03_vision.csv").read_bytes()
    cache = tmp_path / "vision_cache" / KLINE_DIR
    (cache / "ETHBTC-1h-2020-02.zip").write_bytes(b"PK truncated")
    (cache / "ETHBTC-1h-2020-03.zip").unlink()
    mirror.log.clear()
    rc, out, _ = dl(argv, capsys)
    assert rc == 0 and "2 downloaded, 1 from cache" in out
    assert sorted(mirror.log) == [f"{KLINE_DIR}/ETHBTC-1h-2020-0{m}.zip{s}" for m in (2, 3) for s in ("", ".CHECKSUM")]
    assert (tmp_path / "ETHBTC_1h_2020-01_2020-03_vision.csv").read_bytes() == first


def test_wrong_checksum_is_refetched_once_then_a_clear_error(mirror: Mirror, tmp_path: Path) -> None:
    key = monthly_key("ETHBTC", "1h", 2020, 2)
    mirror.extra[key + ".CHECKSUM"] = b"0" * 64 + b"  ETHBTC-1h-2020-02.zip\n"
    res = cli("--symbol", "ETHBTC", "--start", "2020-02", "--end", "2020-02", "--out-dir", "out",
              "--base-url", mirror.url, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"error: {mirror.url}/{key}: corrupt after re-download")
    assert mirror.hits()[key] == 2
    assert not list((tmp_path / "out").glob("*.csv"))


def test_span_2024_2025_mixes_ms_and_us_into_ms(bare_mirror: Mirror, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Vision spot files switched to microseconds on 2025-01-01; the merge must be seamless."""
    t0 = int(pd.Timestamp("2024-12-30", tz="UTC").value // 1_000_000)
    rows = [[str(t0 + i * 3_600_000), "0.031", "0.032", "0.030", f"{0.031 + i * 1e-6:.8f}", "10",
             str(t0 + (i + 1) * 3_600_000 - 1), "0.31", "5", "4", "0.12", "0"] for i in range(96)]
    publish_daily(bare_mirror, rows[:48], micro=False)
    publish_daily(bare_mirror, rows[48:], micro=True)
    rc, out, err = dl(["--symbol", "ETHBTC", "--start", "2024-12-30", "--end", "2025-01-02", "--out-dir",
                       str(tmp_path), "--base-url", bare_mirror.url], capsys)
    assert rc == 0, err
    got = pd.read_csv(tmp_path / "ETHBTC_1h_2024-12-30_2025-01-02_vision.csv")
    assert got.open_time.tolist() == [int(r[0]) for r in rows]
    assert (got.close_time - got.open_time == 3_599_999).all()
    assert "48 rows had microsecond" in out and "gaps: 0" in out
    assert "not published: 2024-12, 2025-01" not in out  # daily fallback found them


def test_prefer_daily_uses_dailies_for_newest_month(mirror: Mirror, vision_root: Path, shared_data: Path,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daily = publish_daily(mirror, month_rows(vision_root, "2020-02"), micro=False)
    rc, _, err = dl(["--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-02", "--prefer-daily",
                     "--out-dir", str(tmp_path), "--base-url", mirror.url], capsys)
    assert rc == 0, err
    hits = mirror.hits()
    assert hits[monthly_key("ETHBTC", "1h", 2020, 2)] == 0 and all(hits[k] == 1 for k in daily)
    assert hits[monthly_key("ETHBTC", "1h", 2020, 1)] == 1
    assert_same(tmp_path / "ETHBTC_1h_2020-01_2020-02_vision.csv", expected(shared_data, "2020-01", "2020-03"))


def test_conflicting_rows_in_archive_refused_unless_keep(bare_mirror: Mirror, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    t0 = int(pd.Timestamp("2021-03-01", tz="UTC").value // 1_000_000)
    row = [str(t0), "1", "1", "1", "1", "1", str(t0 + 3_599_999), "1", "1", "1", "1", "0"]
    bare_mirror.add_zip(daily_key("ETHBTC", "1h", pd.Timestamp(t0, unit="ms").date()),
                        csv_rows([row, row, row[:4] + ["2"] + row[5:]]))
    argv = ["--symbol", "ETHBTC", "--start", "2021-03-01", "--end", "2021-03-01", "--out-dir", str(tmp_path),
            "--base-url", bare_mirror.url]
    rc, _, err = dl(argv, capsys)
    assert rc == 2 and "two different candles" in err and "--keep" in err
    rc, out, _ = dl([*argv, "--keep", "last"], capsys)
    assert rc == 0 and "dropped 1 identical duplicate rows" in out
    got = pd.read_csv(tmp_path / "ETHBTC_1h_2021-03-01_2021-03-01_vision.csv")
    assert got.close.tolist() == [2.0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--symbol", "NOSUCHPAIR", "--start", "2020-01", "--end", "2020-01"], "unknown symbol"),
        (["--symbol", "ETHBTC", "--intervals", "2m", "--start", "2020-01", "--end", "2020-01"],
         "unsupported interval '2m'"),
        (["--symbol", "ETHBTC", "--start", "2020-03", "--end", "2020-01"], "--end 2020-01 is before --start"),
        (["--symbol", "ETHBTC", "--start", "2020-13", "--end", "2021-01"], "invalid --start '2020-13'"),
        (["--symbol", "ETHBTC", "--start", "2999-01", "--end", "2999-02"], "--start 2999-01 is in the future"),
        (["--symbol", "ETH/BTC", "--start", "2020-01", "--end", "2020-01"], "invalid symbol 'ETH/BTC'"),
        (["--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-01", "--out-dir", "afile/sub"],
         "--out-dir afile/sub: not writable"),
        (["--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-01", "--out-dir", "afile"],
         "--out-dir afile: exists and is not a folder"),
        pytest.param(["--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-01", "--out-dir", "ro/sub"],
                     "--out-dir ro/sub: not writable", marks=pytest.mark.skipif(
                         os.geteuid() == 0, reason="root ignores folder permissions")),
    ],
)
def test_bad_input_is_one_line_exit_2(bare_mirror: Mirror, tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "ro").mkdir(mode=0o500)
    res = cli(*args, "--base-url", bare_mirror.url, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert needle in res.stderr


def test_no_network_names_the_url(tmp_path: Path) -> None:
    with serve(tmp_path) as m:  # find a free port, then close it: connections are refused
        url = m.url
    res = cli("--symbol", "ETHBTC", "--start", "2020-01", "--end", "2020-01", "--base-url", url, "--retries",
              "1", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(f"error: cannot fetch {url}/{monthly_key('ETHBTC', '1h', 2020, 1)}")
    assert "connection refused" in res.stderr


def test_fetcher_honours_retry_after_and_backs_off_with_jitter(bare_mirror: Mirror) -> None:
    bare_mirror.extra["f"] = b"ok"
    bare_mirror.fault("f", "503:7", "500", "500")
    slept: list[float] = []
    fetcher = Fetcher(timeout=5, retries=3, backoff=0.5, sleep=slept.append)
    assert fetcher.get(f"{bare_mirror.url}/f") == b"ok"
    assert slept[0] == 7.0
    assert 1.0 <= slept[1] <= 1.5 and 2.0 <= slept[2] <= 3.0  # 0.5 * 2**n plus up to 50 % jitter
    assert fetcher.get(f"{bare_mirror.url}/missing") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and parse_retry_after("soon") is None
    bare_mirror.fault("f", "500", "500")
    with pytest.raises(NetworkError, match=r"GET http://127\.0\.0\.1:\d+/f failed: HTTP 500"):
        Fetcher(timeout=5, retries=1, sleep=slept.append).get(f"{bare_mirror.url}/f")


def test_readme_command_as_a_user_types_it(mirror: Mirror, shared_data: Path, tmp_path: Path) -> None:
    args = FETCH_COMMAND.split()[2:]
    res = cli(*args, "--base-url", mirror.url, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "data/raw/ETHBTC_1h_2020-01_2020-03_vision.csv"
    assert f"wrote {out.relative_to(tmp_path)}" in res.stdout
    assert_same(out, expected(shared_data, "2020-01", "2020-04"))


def test_missing_interval_is_an_error_after_writing_the_others(mirror: Mirror, tmp_path: Path) -> None:
    res = cli("--symbol", "ETHBTC", "--intervals", "1h", "4h", "--start", "2023-06", "--end", "2023-07",
              "--out-dir", "out", "--base-url", mirror.url, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr == ("error: no ETHBTC 4h klines found between 2023-06-01 and 2023-07-31: "
                                                  "ETHBTC 1h was found, so the archive lacks this interval there\n")
    assert "not published: 2023-07" in res.stdout  # neither monthly nor daily zips for 1h July
    assert len(pd.read_csv(tmp_path / "out/ETHBTC_1h_2023-06_2023-07_vision.csv")) == 720


def test_interval_missing_for_a_known_symbol_names_the_interval(mirror: Mirror, tmp_path: Path) -> None:
    """Issue 13: the v3 manual's --intervals 15m where the archive has only 1h: the interval is
    the problem (not the symbol), and the message gives the flag that works."""
    res = cli("--symbol", "ETHBTC", "--intervals", "15m", "--start", "2023-01-01", "--end", "2023-02-01",
              "--out-dir", "out", "--base-url", mirror.url, cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert "the interval is missing there, not the symbol; try --intervals 1h" in res.stderr


def test_output_loads_and_backtests(mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The downloader's file is what the backtester trusts: load_candles (SPEC R1-R5) and a run."""
    from ethbtc.data.candles import load_candles

    rc, _, err = dl(["--symbol", "ETHBTC", "--start", "2018-01", "--end", "2018-03", "--out-dir", str(tmp_path),
                     "--base-url", mirror.url], capsys)
    assert rc == 0, err
    path = tmp_path / "ETHBTC_1h_2018-01_2018-03_vision.csv"
    candles = load_candles(path, interval="1h")
    assert candles.interval_minutes == 60 and len(candles.df) == 2127
    assert candles.report.off_grid_rows == 43  # until vision_fix_timestamps.py puts them on the grid
    res = subprocess.run([sys.executable, str(ROOT / "ethbtc_accum_bot.py"), "backtest", "--data", str(path),
                          "--json-out", str(tmp_path / "summary.json")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "2127 bars of 60m" in res.stdout and (tmp_path / "summary.json").exists()


def test_demo_and_readme_show_the_fetch_command(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from ethbtc import demo

    monkeypatch.setattr(demo, "STAGES", [])
    monkeypatch.setattr(demo, "ensure_sample", lambda: (Path("eth.csv"), Path("bnb.csv")))
    assert demo.main() == 0
    assert FETCH_COMMAND in capsys.readouterr().out
    assert FETCH_COMMAND in (root / "docs" / "research.md").read_text()  # "1. Data", linked from the README
