"""Self-test of tests/support/secret_scan.py: planted secrets are found in every format the bot writes,
clean output gives no hit (the executor's secret-hygiene tests rely on both)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from openpyxl import Workbook

from tests.support.secret_scan import Text, scan

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j+/="
SHORT_KEY = "Xq7Lm2Pz9Rt4Vw8Yb1"  # fits an Excel sheet name (31 characters at most)
SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
SIGNED_URL = f"https://testnet.binance.vision/api/v3/order?symbol=ETHBTC&timestamp=1700000000000&signature={SIG}"


def excel(path: Path, where: str, value: str) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    ws.append(["metric", "value"])
    ws.append(["final_btc", 1.02])
    if where == "cell":
        wb.create_sheet("Trades").append(["time", "note"])
        wb["Trades"]["B7"] = f"order failed: {value}"
    elif where == "sheet_name":
        wb.create_sheet(value[:31])
    elif where == "comment":
        from openpyxl.comments import Comment

        ws["A1"].comment = Comment(f"debug {value}", "bot")
    wb.save(path)
    return path


PLANTS = {
    "log line": lambda d: (d / "bot.log").write_text(f"2024-01-01 INFO starting with key={KEY}\n"),
    "json log": lambda d: (d / "bot.jsonl").write_text(json.dumps({"msg": "boom", "secret": SECRET}) + "\n"),
    "json escaped": lambda d: (d / "state.json").write_text(
        '{"note": "' + "".join(f"\\u{ord(c):04x}" for c in KEY) + '"}'),
    "rotated gz log": lambda d: (d / "bot.log.1.gz").write_bytes(gzip.compress(f"x {SECRET} y\n".encode())),
    "url-encoded secret": lambda d: (d / "err.log").write_text(f"GET /x?s={quote(SECRET, safe='')}\n"),
    "ledger csv": lambda d: (d / "ledger.csv").write_text(f"time,side,note\n1,BUY,{KEY}\n"),
    "signed url in log": lambda d: (d / "http.log").write_text(f"ERROR 500 for url: {SIGNED_URL}\n"),
    "signature in json": lambda d: (d / "req.json").write_text(json.dumps({"params": {"signature": SIG}})),
    "excel cell": lambda d: excel(d / "report.xlsx", "cell", SECRET),
    "excel sheet name": lambda d: excel(d / "report.xlsx", "sheet_name", SHORT_KEY),
    "excel comment": lambda d: excel(d / "report.xlsx", "comment", KEY),
    "nested folder": lambda d: (d / "a" / "b").mkdir(parents=True) or (d / "a" / "b" / "x.txt").write_text(KEY),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_planted_secret_is_found(plant: str, tmp_path: Path) -> None:
    (tmp_path / "clean.log").write_text("INFO nothing to see\n")
    PLANTS[plant](tmp_path)
    hits = scan([tmp_path], [KEY, SECRET, SHORT_KEY])
    assert hits, f"planted {plant} not found"
    assert all("<FOUND>" in h.excerpt for h in hits)


@pytest.mark.parametrize("label, body", [
    ("/metrics", f'ethbtc_info{{api_key="{KEY}"}} 1\n'),
    ("/health", json.dumps({"ok": True, "last_error": f"401 for {SIGNED_URL}"}).encode()),
    ("exception text", f"ClientError(401, -2015, 'Invalid API-key', {{'X-MBX-APIKEY': '{KEY}'}})"),
])
def test_in_memory_text_is_scanned(label: str, body: str | bytes) -> None:
    hits = scan([Text(label, body)], [KEY, SECRET])
    assert hits and hits[0].where == label


def test_clean_outputs_give_no_hit(tmp_path: Path) -> None:
    (tmp_path / "bot.log").write_text("INFO order placed signature=<redacted> key=vmPU***\n")
    (tmp_path / "state.json").write_text(json.dumps({"last_bar_close": 1700000000000, "api_key_set": True}))
    (tmp_path / "ledger.csv").write_text("time,side,qty\n1,BUY,0.5\n")
    excel(tmp_path / "report.xlsx", "none", "")
    metrics = Text("/metrics", "ethbtc_wealth_btc 1.02\n")
    assert scan([tmp_path, metrics], [KEY, SECRET]) == []


def test_too_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="realistic fake"):
        scan([Text("x", "abc")], ["k"])


def test_missing_path_is_an_error_not_a_silent_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan([tmp_path / "no-such.log"], [KEY])


def test_hits_name_the_place(tmp_path: Path) -> None:
    excel(tmp_path / "report.xlsx", "cell", SECRET)
    (tmp_path / "state.json").write_text('{"k": "' + "".join(f"\\u{ord(c):04x}" for c in KEY) + '"}')
    places = {h.where for h in scan([tmp_path], [KEY, SECRET])}
    assert f"{tmp_path / 'report.xlsx'}!Trades!B7" in places  # openpyxl: sheet and cell
    assert f"{tmp_path / 'state.json'} (decoded JSON)" in places  # only the decoded text holds it
