"""The one candle loader (SPEC R1-R5) and its data-quality report.

Reads Binance kline CSVs (12 columns, with or without header, ms/us timestamps mixed),
generic OHLCV CSVs (ISO or epoch times), and freqtrade JSON candles. Returns a UTC-indexed
frame plus a report of gaps, duplicates, non-monotonic and off-grid rows. Missing bars are
reported, never invented (R4); the interval is inferred and checked against the config (R5).
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, UserError
from .timeframes import binance_interval, epoch_to_ms, interval_minutes

OHLCV = ["open", "high", "low", "close", "volume"]
BINANCE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_base", "taker_buy_quote", "ignore",
]
_TIME_NAMES = ("open_time", "timestamp", "time", "date", "datetime", "open time", "opentime", "ts")


@dataclass(frozen=True)
class Gap:
    after: pd.Timestamp  # open_time of the last bar before the gap
    before: pd.Timestamp  # open_time of the first bar after the gap
    missing_bars: int


@dataclass
class DataReport:
    path: str
    rows: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    interval_minutes: int = 0
    gaps: list[Gap] = field(default_factory=list)
    duplicates_dropped: int = 0
    nonmonotonic_rows: int = 0
    off_grid_rows: int = 0

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)

    def warnings(self) -> list[str]:
        out = []
        if self.gaps:
            big = max(self.gaps, key=lambda g: g.missing_bars)
            out.append(
                f"{len(self.gaps)} gaps ({self.missing_bars} missing bars); largest {big.missing_bars} bars "
                f"after {big.after:%Y-%m-%d %H:%M}"
            )
        if self.duplicates_dropped:
            out.append(f"{self.duplicates_dropped} identical duplicate rows dropped")
        if self.nonmonotonic_rows:
            out.append(f"{self.nonmonotonic_rows} rows out of time order (sorted)")
        if self.off_grid_rows:
            out.append(f"{self.off_grid_rows} rows off the {self.interval_minutes}m grid (kept; see vision_fix_timestamps.py)")
        return out

    def summary(self) -> str:
        head = f"{self.path}: {self.rows} bars of {self.interval_minutes}m, {self.first} .. {self.last}"
        return "; ".join([head, *self.warnings()])


@dataclass
class Candles:
    df: pd.DataFrame  # index: open_time (UTC DatetimeIndex); float64 open high low close volume
    interval_minutes: int
    report: DataReport

    def window_notes(self, start: str | None, end: str | None, start_flag: str = "--start",
                     end_flag: str = "--end") -> list[str]:
        """Lines for window bounds outside this data (see :func:`window_notes`)."""
        return window_notes(self.df, self.interval_minutes, start, end, start_flag, end_flag)

    def window(self, start: str | None = None, end: str | None = None) -> Candles:
        """The bars between ``start`` and ``end`` with a data report of that window."""
        if start is None and end is None:
            return self
        df = slice_window(self.df, start, end, self.report.path)
        rep = DataReport(path=f"{self.report.path} [{start or ''}..{end or ''}]", interval_minutes=self.interval_minutes)
        _fill_report(rep, df.index)
        return Candles(df, self.interval_minutes, rep)


def parse_when(text: str, *, end: bool = False) -> pd.Timestamp:
    """'2021-01-01' or an ISO time, UTC. A bare date as ``end`` means the end of that day."""
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise DataError(f"invalid date {text!r}: use YYYY-MM-DD or an ISO time") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end and len(str(text).strip()) <= 10:
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    return ts


def _interval_name(minutes: int) -> str:
    try:
        return binance_interval(minutes)
    except UserError:
        return f"{minutes}m"


def window_notes(df: pd.DataFrame, interval_minutes: int, start: str | None, end: str | None,
                 start_flag: str = "--start", end_flag: str = "--end") -> list[str]:
    """One line per window bound outside the data (the window is silently clipped to the data
    otherwise): a start before the first bar, an end after the last bar's close."""
    out = []
    first, last = df.index[0], df.index[-1]
    bar = pd.Timedelta(minutes=interval_minutes)
    if start and parse_when(start) < first - bar:
        out.append(f"{start_flag} {start} is before the data, which starts {first:%Y-%m-%d %H:%M}: "
                   f"the window starts there")
    if end and parse_when(end, end=True) >= last + 2 * bar:
        out.append(f"{end_flag} {end} is after the data, which ends {last:%Y-%m-%d %H:%M}: the window ends there")
    return out


def slice_window(df: pd.DataFrame, start: str | None, end: str | None, what: str = "data") -> pd.DataFrame:
    lo = parse_when(start) if start else None
    hi = parse_when(end, end=True) if end else None
    if lo is not None and hi is not None and hi < lo:
        raise DataError(f"end {end} is before start {start}")
    out = df.loc[lo:hi]  # type: ignore[misc]
    if out.empty:
        raise DataError(
            f"no candles between {start or 'start'} and {end or 'end'} in {what} "
            f"(it covers {df.index[0]:%Y-%m-%d} .. {df.index[-1]:%Y-%m-%d})"
        )
    return out


def _read_json(p: Path) -> pd.DataFrame:
    try:
        rows = json.loads(p.read_text(encoding="utf-8-sig"))
    except RecursionError:
        raise DataError(f"{p}: not valid JSON candles (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or an int with > 4300 digits
        raise DataError(f"{p}: not valid JSON candles ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and len(r) >= 6 for r in rows):
        raise DataError(f"{p}: expected a JSON list of [open_time, open, high, low, close, volume] rows")
    return pd.DataFrame([r[:6] for r in rows], columns=["open_time", *OHLCV])


def _read_csv(p: Path) -> pd.DataFrame:
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        raise DataError(f"{p}: binary file, expected a CSV of candles")
    try:  # incremental: a multi-byte character cut at byte 4096 is not an encoding error
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        raise DataError(f"{p}: not a UTF-8 text CSV") from None
    first = next((line for line in text.splitlines() if line.strip()), "")  # pandas skips blank lines
    if not first.strip():
        raise DataError(f"{p}: empty file")
    cells = [c.strip().strip('"') for c in first.split(",")]
    has_header = not _is_number(cells[0])
    try:
        if has_header:
            df = pd.read_csv(p, encoding="utf-8-sig")
        else:
            df = pd.read_csv(p, header=None)
            if df.shape[1] < 6:
                raise DataError(f"{p}: headerless CSV needs at least 6 columns (Binance kline layout)")
            df.columns = BINANCE_COLUMNS[: df.shape[1]] + [f"extra{i}" for i in range(max(0, df.shape[1] - 12))]
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{p}: unreadable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    time_col = next((c for c in _TIME_NAMES if c in df.columns), None)
    missing = [c for c in OHLCV if c not in df.columns]
    if time_col is None or missing:
        need = ([] if time_col else ["open_time"]) + missing
        found = ", ".join(json.dumps(c, ensure_ascii=False)[1:-1][:40] for c in df.columns[:12])  # one line
        raise DataError(f"{p}: missing column(s) {', '.join(need)}; found {found}")
    return df.rename(columns={time_col: "open_time"})[["open_time", *OHLCV]]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# open_time must fall in [1970-01-01, 2200-01-01): anything else is a corrupt or mis-scaled
# timestamp (and beyond 2262 pandas cannot even hold it)
MIN_MS, MAX_MS = 0, 7_258_118_400_000


def _to_ms(col: pd.Series, p: Path) -> np.ndarray:
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        v = num.to_numpy(dtype=np.float64)
        ok = np.isfinite(v) & (v >= 0) & (v < MAX_MS * 1000.0)  # microseconds at most (SPEC R2)
        ms = epoch_to_ms(np.where(ok, v, 0.0))
        return _check_range(ms, ok, col, p)
    try:
        ts = pd.to_datetime(col, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError):  # includes OutOfBoundsDatetime (year 3000)
        raise DataError(f"{p}: open_time has values that are neither epoch numbers nor dates "
                        "between 1970 and 2200") from None
    if ts.isna().any():
        raise DataError(f"{p}: open_time has {int(ts.isna().sum())} empty values")
    ms = (ts.dt.as_unit("ms").astype("int64")).to_numpy()
    return _check_range(ms, np.ones(len(ms), dtype=bool), col, p)


def _check_range(ms: np.ndarray, ok: np.ndarray, col: pd.Series, p: Path) -> np.ndarray:
    ok = ok & (ms >= MIN_MS) & (ms < MAX_MS)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataError(f"{p}: open_time {str(col.iloc[row])[:40]!r} (data row {row + 1}) is not a time "
                        f"between 1970 and 2200; {int((~ok).sum())} such rows")
    return ms


def read_ohlcv_ms(path: str | Path) -> pd.DataFrame:
    """Rows of any candle file the loader reads (freqtrade JSON, OHLCV CSV, kline CSV) as
    ``open_time`` (int64 epoch ms) plus the OHLCV columns as text, in file order and unchecked
    otherwise -- for tools that rewrite files (vision_fix_timestamps.py)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    raw = _read_json(p) if p.suffix.lower() == ".json" else _read_csv(p)
    if raw.empty:
        raise DataError(f"{p}: no candle rows")
    out = raw[OHLCV].astype(str)
    out.insert(0, "open_time", _to_ms(raw["open_time"], p).astype(np.int64))
    return out.reset_index(drop=True)


def load_candles(path: str | Path, interval: str | int | None = None) -> Candles:
    """Load candles; ``interval`` (e.g. '15m' or minutes) must match the inferred one (R5)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory, expected a candle file")
    raw = _read_json(p) if p.suffix.lower() == ".json" else _read_csv(p)
    if raw.empty:
        raise DataError(f"{p}: no candle rows")
    values = raw[OHLCV].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = ~np.isfinite(values.to_numpy()).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{p}: {int(bad.sum())} rows with empty, non-numeric or infinite prices (first at data row {row + 1})")
    prices = values[["open", "high", "low", "close"]].to_numpy()
    if (prices <= 0).any():
        row = int(np.flatnonzero((prices <= 0).any(axis=1))[0])
        raise DataError(f"{p}: prices must be positive (data row {row + 1})")
    if (values["volume"].to_numpy() < 0).any():
        raise DataError(f"{p}: negative volume")
    ms = _to_ms(raw["open_time"], p)
    report = DataReport(path=str(p))
    report.nonmonotonic_rows = int((np.diff(ms) < 0).sum())
    frame = values.copy()
    frame.insert(0, "ms", ms)
    frame = frame.sort_values("ms", kind="stable")
    dup_time = frame["ms"].duplicated(keep=False)
    if dup_time.any():
        dups = frame[dup_time]
        identical = dups.duplicated(keep=False)
        if not identical.all():
            when = pd.Timestamp(int(dups.loc[~identical, "ms"].iloc[0]), unit="ms", tz="UTC")
            raise DataError(f"{p}: conflicting duplicate candles for {when} (two different rows for one time)")
        before = len(frame)
        frame = frame.drop_duplicates()
        report.duplicates_dropped = before - len(frame)
    ms_sorted = frame["ms"].to_numpy()
    if len(ms_sorted) < 2:
        raise DataError(f"{p}: need at least 2 candles, found {len(ms_sorted)}")
    spacing = np.diff(ms_sorted)
    inferred = int(round(float(np.median(spacing)) / 60000))
    if inferred <= 0:
        raise DataError(f"{p}: cannot infer the bar interval (median spacing {np.median(spacing)} ms)")
    if interval is not None and interval_minutes(interval) != inferred:
        raise DataError(
            f"{p}: data interval is {inferred}m but the config/flags say {interval_minutes(interval)}m (SPEC R5); "
            f"use {interval_minutes(interval)}m data, or a copy of the config with \"bar_interval_minutes\": {inferred} "
            f"and \"interval\": \"{_interval_name(inferred)}\" (or both removed: the data's interval is used)"
        )
    report.interval_minutes = inferred
    idx = pd.DatetimeIndex(pd.to_datetime(ms_sorted, unit="ms", utc=True), name="open_time")
    df = frame[OHLCV].set_index(idx)
    _fill_report(report, idx)
    return Candles(df, inferred, report)


def _fill_report(report: DataReport, idx: pd.DatetimeIndex) -> None:
    """Gaps, off-grid rows and span of a sorted index at ``report.interval_minutes``."""
    step = report.interval_minutes * 60000
    ms = idx.as_unit("ms").asi8
    spacing = np.diff(ms)
    report.off_grid_rows = int((ms % step != 0).sum())
    report.gaps = [Gap(idx[i], idx[i + 1], int(round(spacing[i] / step)) - 1)
                   for i in np.flatnonzero(spacing > step * 1.5)]
    report.rows, report.first, report.last = len(idx), idx[0], idx[-1]


def align_series(target: pd.DatetimeIndex, other: Candles) -> np.ndarray:
    """Close of ``other`` (e.g. BNBBTC) as known at each ``target`` bar, forward-filled (no look-ahead)."""
    return other.df["close"].reindex(target, method="ffill").to_numpy(dtype=np.float64)
