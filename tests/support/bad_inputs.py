"""Tables of broken inputs for the hardening suite: candle files, kline files, JSON configs.

Each entry turns a *valid* file (bytes) into a broken or odd one. The same tables drive the
in-process loader tests and the subprocess CLI tests (tests/scripts/test_hardening_cli.py), so a new
kind of bad input added here is fed to every script at once.

``expect`` is "error" (a one-line ``error: ...`` naming the file, exit 2) or "ok" (accepted,
possibly with a ``warning:``: SPEC R4 sorts out-of-order rows and drops identical duplicates).
``core`` entries run as subprocesses in the short CI run; all entries run in ``make soak``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Transform = Callable[[bytes], bytes | None]  # None: the file does not exist
HUGE_BYTES = 5_000_000  # "huge" input in the short run; make soak uses ~50 MB (test_hardening_cli)


@dataclass(frozen=True)
class Bad:
    name: str
    make: Transform
    expect: str = "error"  # "error" | "ok"
    core: bool = True
    suffix: str = ".csv"
    directory: bool = False  # pass a folder where a file is expected
    needle: str | None = None  # must appear in the error line (default: the file's name)

    def place(self, path: Path, valid: bytes) -> Path:
        """Put this bad input at ``path`` (a folder, the broken bytes, or nothing at all)."""
        if self.directory:
            path.mkdir()
        elif (data := self.make(valid)) is not None:
            path.write_bytes(data)
        return path


# ---------------------------------------------------------------- CSV text transforms

def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def _join(lines: list[str], eol: str = "\n") -> bytes:
    return (eol.join(lines) + eol).encode("utf-8")


def set_cell(row: int, col: int, value: str) -> Transform:
    """Replace one cell; ``row`` counts data rows (0 = first row after the header)."""
    def make(data: bytes) -> bytes:
        lines = _lines(data)
        cells = lines[row + 1].split(",")
        cells[col] = value
        lines[row + 1] = ",".join(cells)
        return _join(lines)
    return make


def set_column(col: int, fn: Callable[[str], str]) -> Transform:
    def make(data: bytes) -> bytes:
        lines = _lines(data)
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            cells[col] = fn(cells[col])
            out.append(",".join(cells))
        return _join(out)
    return make


def keep_columns(n: int, header: bool = True) -> Transform:
    def make(data: bytes) -> bytes:
        lines = [",".join(line.split(",")[:n]) for line in _lines(data)]
        return _join(lines if header else lines[1:])
    return make


def rows(fn: Callable[[list[str]], list[str]]) -> Transform:
    """Apply ``fn`` to the data rows, keep the header."""
    def make(data: bytes) -> bytes:
        lines = _lines(data)
        return _join([lines[0], *fn(lines[1:])])
    return make


def _binary(n: int, seed: int = 9) -> bytes:
    return random.Random(seed).randbytes(n)


def _nul_after_head(data: bytes) -> bytes:
    # the loaders sniff the first 4 KB for NULs; put them further in
    cut = data.index(b"\n", 6000) + 1
    return data[:cut] + b"\x00" * 64 + b"\n" + data[cut:]


def _latin1_row(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[5] = lines[5].replace(b",", b",\xe9", 1)
    return b"\n".join(lines)


def _conflict(r: list[str]) -> list[str]:
    cells = r[3].split(",")
    cells[4] = str(float(cells[4]) * 1.01)
    return [*r[:4], ",".join(cells), *r[4:]]


def _mixed_units(r: list[str]) -> list[str]:
    # SPEC R2: Binance Vision switched to microseconds; one merged file may hold both
    out = []
    for i, line in enumerate(r):
        t, rest = line.split(",", 1)
        out.append((t + "000" if i % 2 else t) + "," + rest)
    return out


CSV_TRANSFORMS: dict[str, Transform] = {
    "missing": lambda d: None,
    "empty": lambda d: b"",
    "blank_lines": lambda d: b"\n\n\n",
    "binary": lambda d: _binary(4000),
    "nul_after_head": _nul_after_head,
    "latin1_byte": _latin1_row,
    "utf16": lambda d: d.decode("utf-8").encode("utf-16"),
    "header_only": lambda d: _join(_lines(d)[:1]),
    "one_row": lambda d: _join(_lines(d)[:2]),
    "wrong_columns": lambda d: b"a,b,c\n1,2,3\n4,5,6\n",
    "no_close_column": keep_columns(4),
    "headerless_5_columns": keep_columns(5, header=False),
    "nan_price": set_cell(7, 4, "nan"),
    "inf_price": set_cell(7, 2, "inf"),
    "negative_price": set_cell(7, 3, "-0.05"),
    "zero_price": set_cell(7, 1, "0"),
    "text_price": set_cell(7, 4, "abc"),
    "empty_price": set_cell(7, 4, ""),
    "negative_volume": set_cell(7, 5, "-3"),
    "truncated_last_row": lambda d: d[: d.rstrip(b"\n").rindex(b"\n") + 16],  # cut inside the open price
    "extra_fields_row": rows(lambda r: [*r[:5], r[5] + ",1,2,3", *r[6:]]),
    "conflicting_duplicate": rows(_conflict),
    "time_negative": set_column(0, lambda t: "-" + t),
    "time_1e30": set_cell(3, 0, "1e30"),
    "time_inf": set_cell(3, 0, "inf"),
    "time_year_3000": lambda d: _join(["time,open,high,low,close,volume", "3000-01-01,1,1,1,1,1",
                                       "3000-01-02,1,1,1,1,1"]),
    "time_garbage": lambda d: _join(["time,open,high,low,close,volume"] + ["9999-99-99,1,1,1,1,1"] * 3),
    "all_same_time": rows(lambda r: [r[0]] * 5),
    "huge_line": lambda d: b"9" * HUGE_BYTES,
    "huge_binary_tail": lambda d: d + _binary(HUGE_BYTES),
    # accepted: R4 sorts and drops identical duplicates (with a warning); R2 mixes units
    "shuffled": rows(lambda r: r[::-1]),
    "identical_duplicates": rows(lambda r: [*r[:10], *r[5:10], *r[10:]]),
    "bom": lambda d: b"\xef\xbb\xbf" + d,
    "crlf": lambda d: _join(_lines(d), "\r\n"),
    "mixed_ms_us": rows(_mixed_units),
}

_CANDLE_OK = {"shuffled", "identical_duplicates", "bom", "crlf", "mixed_ms_us"}
_CANDLE_SOAK_ONLY = {"utf16", "zero_price", "empty_price", "time_inf", "blank_lines", "huge_binary_tail",
                     "extra_fields_row", "crlf", "mixed_ms_us", "identical_duplicates"}

CANDLES: list[Bad] = [
    Bad(name, make, "ok" if name in _CANDLE_OK else "error", core=name not in _CANDLE_SOAK_ONLY)
    for name, make in CSV_TRANSFORMS.items()
] + [
    Bad("directory", lambda d: b"", directory=True),
    Bad("json_not_a_list", lambda d: b'{"a": 1}', suffix=".json"),
    Bad("json_short_rows", lambda d: b"[[1,2,3,4,5,6],[1,2]]", suffix=".json", core=False),
    Bad("json_deep", lambda d: b"[" * 100_000 + b"]" * 100_000, suffix=".json"),
    Bad("json_huge_int", lambda d: b"[[1" + b"0" * 5000 + b",1,1,1,1,1]]", suffix=".json", core=False),
    Bad("json_text", lambda d: b"not json", suffix=".json", core=False),
]

# read_klines (vision_fix_timestamps.py, download_vision.py): 12 Binance columns, prices kept as text
_KLINE_OK = {"shuffled", "identical_duplicates", "bom", "crlf", "mixed_ms_us"}
_KLINE_SKIP = {"time_year_3000", "time_garbage"}  # ISO times are not a kline layout: same as wrong_columns
KLINES: list[Bad] = [
    Bad(name, make, "ok" if name in _KLINE_OK else "error", core=name not in _CANDLE_SOAK_ONLY)
    for name, make in CSV_TRANSFORMS.items() if name not in _KLINE_SKIP
] + [Bad("directory", lambda d: b"", directory=True)]


# ---------------------------------------------------------------- JSON configs

def _json(obj: object) -> Transform:
    return lambda d: json.dumps(obj).encode()


def _patch(**values: object) -> Transform:
    def make(data: bytes) -> bytes:
        obj = json.loads(data)
        obj.update(values)
        return json.dumps(obj).encode()
    return make


CONFIGS: list[Bad] = [
    Bad("missing", lambda d: None, suffix=".json"),
    Bad("directory", lambda d: b"", suffix=".json", directory=True),
    Bad("empty", lambda d: b"", suffix=".json"),
    Bad("binary", lambda d: _binary(3000), suffix=".json"),
    Bad("utf16", lambda d: d.decode().encode("utf-16"), suffix=".json", core=False),
    Bad("not_json", lambda d: b"{ trend_lookback: 5 }", suffix=".json"),
    Bad("trailing_comma", lambda d: b'{"trend_lookback": 5,}', suffix=".json", core=False),
    Bad("top_level_list", _json([1, 2]), suffix=".json"),
    Bad("string_for_int", _patch(trend_lookback="fifty"), suffix=".json", needle="trend_lookback"),
    Bad("bool_for_int", _patch(trend_lookback=True), suffix=".json", needle="trend_lookback"),
    Bad("string_for_bool", _patch(pay_fees_in_bnb="yes"), suffix=".json", needle="pay_fees_in_bnb", core=False),
    Bad("unknown_key", _patch(trend_lookbak=5), suffix=".json", needle="did you mean 'trend_lookback'"),
    Bad("out_of_range", _patch(step_allocation=2), suffix=".json", needle="step_allocation"),
    Bad("negative", _patch(basis_btc=-1), suffix=".json", needle="basis_btc", core=False),
    Bad("huge_lookback", _patch(trend_lookback=10**30), suffix=".json", needle="trend_lookback"),
    Bad("nan_literal", lambda d: d.replace(b"{", b'{"flip_band_entry": NaN, ', 1), suffix=".json",
        needle="flip_band_entry"),
    Bad("inf_literal", lambda d: d.replace(b"{", b'{"basis_btc": 1e999, ', 1), suffix=".json",
        needle="basis_btc", core=False),
    Bad("huge_int_literal", lambda d: b'{"trend_lookback": 1' + b"0" * 5000 + b"}", suffix=".json"),
    Bad("deep_nesting", lambda d: b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", suffix=".json"),
    Bad("duplicate_key", lambda d: b'{"trend_lookback": 5, "trend_lookback": 6}', suffix=".json",
        needle="trend_lookback"),
    Bad("section_not_object", _json({"strategy": [1]}), suffix=".json", needle="strategy", core=False),
    Bad("key_in_wrong_section", _json({"strategy": {"maker_fee": 0.001}}), suffix=".json", needle="maker_fee",
        core=False),
    Bad("meta_not_object", _json({"meta": 3}), suffix=".json", needle="meta", core=False),
    Bad("entry_below_exit", _patch(flip_band_entry=0.001, flip_band_exit=0.01), suffix=".json",
        needle="flip_band_entry", core=False),
    # accepted: // comments and a BOM are part of the format (SPEC section 6)
    Bad("comments_and_bom", lambda d: b"\xef\xbb\xbf// note\n" + d.replace(b"{", b"{ // c\n", 1), suffix=".json",
        expect="ok"),
]


# ---------------------------------------------------------------- optimiser trial CSVs (wf_pick --runs)

def set_named(column: str, value: str, row: int = 0) -> Transform:
    """Replace the cell of ``column`` (by header name) in data row ``row``."""
    def make(data: bytes) -> bytes:
        lines = _lines(data)
        col = lines[0].split(",").index(column)
        return set_cell(row, col, value)(data)
    return make


RUNS: list[Bad] = [
    Bad("missing", lambda d: None),
    Bad("directory", lambda d: b"", directory=True),
    Bad("empty", lambda d: b""),
    Bad("binary", lambda d: _binary(3000)),
    Bad("latin1_byte", _latin1_row, core=False),
    Bad("header_only", lambda d: _join(_lines(d)[:1]), core=False),
    Bad("candles_not_trials", lambda d: b"open_time,open,high,low,close,volume\n1,1,1,1,1,1\n"),
    Bad("nan_result", set_named("test_final_btc", "nan")),
    Bad("text_lookback", set_named("trend_lookback", "abc")),
    # caught when the picked row becomes a config (validated then)
    Bad("negative_lookback", set_named("trend_lookback", "-5"), needle="trend_lookback", core=False),
    Bad("unknown_trend_kind", set_named("trend_kind", "ema"), core=False),
    Bad("inf_band", set_named("flip_band_entry", "inf"), core=False),
    Bad("huge_line", lambda d: b"9" * HUGE_BYTES, core=False),
]
