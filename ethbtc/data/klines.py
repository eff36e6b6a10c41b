"""Binance kline tables as text: read, normalise to ms, sort, de-duplicate, align, gap report.

Used by ``download_vision.py`` (merge many archive files into one CSV) and
``vision_fix_timestamps.py`` (repair one CSV). Prices and volumes stay the exact strings the
exchange published; only ``open_time``/``close_time`` are rewritten (to integer ms, SPEC R2).
Duplicates follow SPEC R4: identical rows are dropped and counted, conflicting rows are an
error unless the caller chooses which one to keep.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fileio import atomic_write
from .timeframes import epoch_to_ms

KLINE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_base", "taker_buy_quote", "ignore",
]
TIME_COLUMNS = ("open_time", "close_time")
VALUE_COLUMNS = [c for c in KLINE_COLUMNS if c not in TIME_COLUMNS]
PRICE_COLUMNS = ("open", "high", "low", "close")
MAX_TIME_US = 7_258_118_400_000_000.0  # 2200-01-01 in microseconds, the largest unit (SPEC R2)
FILLED = "filled"
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONDAY_MS = 4 * DAY_MS  # 1970-01-05, Binance weekly candles open on Mondays


def fmt_ms(ms: int) -> str:
    """UTC time of an epoch-ms value, e.g. '2018-02-09 09:28:14.652' (ms shown only if set)."""
    t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{ms % 1000:03d}" if ms % 1000 else text


@dataclass
class Cleanup:
    """What reading, :func:`sort_dedupe` and :func:`align_to_grid` changed (reported, never silent)."""

    times_rescaled: int = 0  # rows whose times were in seconds or microseconds
    exact_duplicates: int = 0
    conflicts_resolved: int = 0
    rows_aligned: int = 0
    close_times_fixed: int = 0


def read_klines(source: str | Path | IO[str], name: str | None = None,
                cleanup: Cleanup | None = None) -> pd.DataFrame:
    """Read a Binance kline CSV (with or without header; 12 columns, optional ``filled``).

    Returns string columns, except open_time/close_time as int64 milliseconds.
    """
    label = name or str(source)
    try:
        raw = pd.read_csv(source, header=None, dtype=str, keep_default_na=False, skip_blank_lines=True,
                          encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{label}: not a valid CSV ({str(exc).strip().splitlines()[-1]})") from None
    except UnicodeDecodeError:
        raise DataError(f"{label}: not a UTF-8 text CSV (binary file?)") from None
    first_line = 1
    has_filled = False
    if len(raw) and not _is_number(raw.iat[0, 0]):
        header = [str(h).strip().lower() for h in raw.iloc[0]]
        has_filled = FILLED in header[len(KLINE_COLUMNS):]
        raw = raw.iloc[1:]
        first_line = 2
    if raw.shape[1] < len(KLINE_COLUMNS):
        raise DataError(f"{label}: expected {len(KLINE_COLUMNS)} kline columns, found {raw.shape[1]}")
    names = KLINE_COLUMNS + ([FILLED] if has_filled else [])
    df = raw.iloc[:, : len(names)].copy()
    df.columns = names
    df = df.reset_index(drop=True)
    for col in df.columns:
        df[col] = df[col].str.strip()
        num = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        bad, what = np.isnan(num), "is not a number"
        if not bad.any():
            bad, what = np.isinf(num), "is not a finite number"
        if not bad.any():
            bad = num <= 0 if col in PRICE_COLUMNS else num < 0
            what = "must be positive" if col in PRICE_COLUMNS else "must not be negative"
        if col in TIME_COLUMNS and not bad.any():
            bad = num >= MAX_TIME_US
            what = "is not a time before 2200"
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{label}: line {i + first_line}: {col} {df[col].iat[i][:40]!r} {what}")
    raw_open = pd.to_numeric(df["open_time"]).to_numpy(np.float64)
    if cleanup is not None:
        cleanup.times_rescaled += int(((raw_open < 1e11) | (raw_open >= 1e14)).sum())
    for col in TIME_COLUMNS:
        df[col] = epoch_to_ms(pd.to_numeric(df[col]).to_numpy())
    return df


def read_klines_bytes(data: bytes, name: str, cleanup: Cleanup | None = None) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 text CSV (binary file?)") from None
    return read_klines(io.StringIO(text), name=name, cleanup=cleanup)


def sort_dedupe(df: pd.DataFrame, keep: str | None = None, cleanup: Cleanup | None = None) -> pd.DataFrame:
    """Sort by open_time (stable), drop identical rows, refuse conflicting ones unless ``keep``.

    Rows are compared by value (``0.1`` equals ``0.10000000``). ``keep`` is 'first' or
    'last' in file order.
    """
    cleanup = cleanup if cleanup is not None else Cleanup()
    df = df.sort_values("open_time", kind="stable").reset_index(drop=True)
    key = df.copy()
    for col in df.columns:
        if col not in TIME_COLUMNS:
            key[col] = pd.to_numeric(key[col]).astype(np.float64)
    exact = key.duplicated(keep="first").to_numpy()
    cleanup.exact_duplicates += int(exact.sum())
    df = df[~exact].reset_index(drop=True)
    clash = df["open_time"].duplicated(keep=False).to_numpy()
    if clash.any():
        times = df["open_time"][clash].unique()
        if keep not in ("first", "last"):
            raise DataError(
                f"{len(times)} open time(s) have two different candles (first at {fmt_ms(int(times[0]))}); "
                "choose one with --keep first|last"
            )
        before = len(df)
        df = df.drop_duplicates("open_time", keep=keep).reset_index(drop=True)  # type: ignore[arg-type]
        cleanup.conflicts_resolved += before - len(df)
    return df


def median_spacing_ms(df: pd.DataFrame) -> int | None:
    """Median distance between consecutive distinct open times (SPEC R5), None if < 2 rows."""
    opens = np.unique(df["open_time"].to_numpy(np.int64))
    return int(np.median(np.diff(opens))) if len(opens) > 1 else None


def grid_anchor(step_ms: int) -> int:
    """Epoch-ms origin of the interval grid: 0 for intervals dividing a day, Monday for 1w."""
    if DAY_MS % step_ms == 0:
        return 0
    if step_ms == WEEK_MS:
        return MONDAY_MS
    raise DataError(f"cannot align to a {step_ms // 60_000}-minute grid: use an interval that divides a day, or 1w")


def align_to_grid(df: pd.DataFrame, step_ms: int, cleanup: Cleanup | None = None) -> pd.DataFrame:
    """Floor open_time to the interval grid and set close_time = open_time + step - 1 ms (SPEC R3)."""
    cleanup = cleanup if cleanup is not None else Cleanup()
    anchor = grid_anchor(step_ms)
    opens = df["open_time"].to_numpy(np.int64)
    aligned = (opens - anchor) // step_ms * step_ms + anchor
    closes = aligned + step_ms - 1
    cleanup.rows_aligned += int((aligned != opens).sum())
    cleanup.close_times_fixed += int((closes != df["close_time"].to_numpy(np.int64)).sum())
    out = df.copy()
    out["open_time"] = aligned
    out["close_time"] = closes
    return out


@dataclass(frozen=True)
class Gap:
    first_missing: int  # open_time (ms) of the first missing bar
    last_missing: int
    bars: int


@dataclass(frozen=True)
class GapReport:
    rows: int
    first: int | None
    last: int | None
    step_ms: int
    gaps: list[Gap]
    off_grid: int

    @property
    def missing_bars(self) -> int:
        return sum(g.bars for g in self.gaps)

    def lines(self, top: int = 5) -> list[str]:
        if not self.rows or self.first is None or self.last is None:
            return ["0 rows"]
        out = [
            f"{self.rows} rows, {fmt_ms(self.first)} .. {fmt_ms(self.last)} UTC",
            f"gaps: {len(self.gaps)} ({self.missing_bars} missing bars)",
        ]
        for g in sorted(self.gaps, key=lambda g: (-g.bars, g.first_missing))[:top]:
            out.append(f"  {fmt_ms(g.first_missing)} .. {fmt_ms(g.last_missing)}  ({g.bars} bars)")
        if self.off_grid:
            out.append(f"{self.off_grid} rows off the interval grid (fix with vision_fix_timestamps.py)")
        return out


def gap_report(df: pd.DataFrame, step_ms: int) -> GapReport:
    """Gaps between consecutive bars (on grid slots, so off-grid rows count sensibly)."""
    opens = df["open_time"].to_numpy(np.int64)
    if len(opens) == 0:
        return GapReport(0, None, None, step_ms, [], 0)
    try:
        anchor = grid_anchor(step_ms)
    except DataError:
        anchor = int(opens[0] % step_ms)
    slots = (opens - anchor) // step_ms
    jumps = np.diff(slots)
    gaps = [
        Gap(int(slots[i] + 1) * step_ms + anchor, int(slots[i + 1] - 1) * step_ms + anchor, int(jumps[i] - 1))
        for i in np.nonzero(jumps > 1)[0]
    ]
    off_grid = int(((opens - anchor) % step_ms != 0).sum())
    return GapReport(len(opens), int(opens[0]), int(opens[-1]), step_ms, gaps, off_grid)


def fill_gaps(df: pd.DataFrame, step_ms: int) -> tuple[pd.DataFrame, int]:
    """Insert flat zero-volume candles at the previous close into gaps; mark them ``filled=1``.

    Expects aligned, sorted, unique open times. Returns the new table and the rows added.
    """
    out = df.copy()
    if FILLED not in out.columns:
        out[FILLED] = "0"
    if out.empty:
        return out, 0
    anchor = grid_anchor(step_ms)
    opens = out["open_time"].to_numpy(np.int64)
    if ((opens - anchor) % step_ms != 0).any():
        raise DataError("cannot fill gaps: some open times are off the interval grid")
    grid = np.arange(opens[0], opens[-1] + 1, step_ms, dtype=np.int64)
    added = len(grid) - len(opens)
    if added == 0:
        return out, 0
    full = out.set_index("open_time").reindex(grid)
    new = full["close"].isna().to_numpy()
    prev_close = full["close"].ffill()
    for col in ("open", "high", "low", "close"):
        full.loc[new, col] = prev_close[new]
    for col in ("volume", "quote_volume", "count", "taker_buy_base", "taker_buy_quote", "ignore"):
        full.loc[new, col] = "0"
    full.loc[new, FILLED] = "1"
    full.index.name = "open_time"
    full = full.reset_index()
    full["close_time"] = full["open_time"] + step_ms - 1
    full["close_time"] = full["close_time"].astype(np.int64)
    return full[list(out.columns)], added


def write_klines(path: str | Path, df: pd.DataFrame) -> None:
    """Write with a header row, ms timestamps, values exactly as read; atomically."""
    cols = KLINE_COLUMNS + ([FILLED] if FILLED in df.columns else [])
    atomic_write(path, lambda fh: df[cols].to_csv(fh, index=False, lineterminator="\n"))


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True
