"""Plan, fetch in parallel and merge Binance Vision klines (the engine of download_vision.py).

Per month the plan tries the monthly zip first and falls back to the month's daily zips when
the monthly one is not published (404). With ``prefer_daily`` the newest month goes the other
way round (daily first, monthly if no daily file exists). Days after today are never asked
for. Files are fetched through an :class:`~ethbtc.data.vision.ArchiveCache` by a thread pool with
one progress bar per run; the result per interval is one sorted, de-duplicated table in ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
from tqdm import tqdm

from ..errors import DataError, UserError
from .klines import Cleanup, GapReport, gap_report, sort_dedupe
from .timeframes import interval_minutes
from .vision import ArchiveCache, DateRange, Fetched, daily_key, monthly_key, read_zip_klines


@dataclass(frozen=True)
class MonthPlan:
    interval: str
    month: str  # 'YYYY-MM'
    first: list[str]  # archive keys tried first
    second: list[str]  # tried only when none of ``first`` exists


@dataclass
class IntervalResult:
    interval: str
    frame: pd.DataFrame
    files: list[Fetched] = field(default_factory=list)
    missing_months: list[str] = field(default_factory=list)
    missing_days: int = 0
    cleanup: Cleanup = field(default_factory=Cleanup)
    report: GapReport | None = None


def plan(symbol: str, intervals: Iterable[str], rng: DateRange, prefer_daily: bool,
         today: date | None = None) -> list[MonthPlan]:
    today = today or datetime.now(UTC).date()
    months = [(y, m) for y, m in rng.months() if (y, m) <= (today.year, today.month)]
    plans = []
    for interval in intervals:
        for i, (y, m) in enumerate(months):
            monthly = [monthly_key(symbol, interval, y, m)]
            daily = [daily_key(symbol, interval, d) for d in rng.days_in(y, m) if d <= today]
            newest = i == len(months) - 1
            first, second = (daily, monthly) if prefer_daily and newest else (monthly, daily)
            plans.append(MonthPlan(interval, f"{y:04d}-{m:02d}", first, second))
    return plans


def fetch_all(cache: ArchiveCache, keys: list[str], workers: int, bar: tqdm) -> dict[str, Fetched]:
    """Fetch ``keys`` in parallel; the first error cancels what has not started and propagates."""
    out: dict[str, Fetched] = {}
    if not keys:
        return out
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vision")
    try:
        for fut in as_completed([pool.submit(cache.get, k) for k in keys]):
            res = fut.result()
            out[res.key] = res
            bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def download(symbol: str, intervals: list[str], rng: DateRange, cache: ArchiveCache, workers: int = 4,
             prefer_daily: bool = False, keep: str | None = None,
             today: date | None = None) -> list[IntervalResult]:
    plans = plan(symbol, intervals, rng, prefer_daily, today)
    if not plans:
        raise UserError(f"--start {rng.start_text} is in the future: nothing is published yet")
    first = [k for p in plans for k in p.first]
    with tqdm(total=len(first), unit="file", desc=f"{symbol} {','.join(intervals)}", disable=None) as bar:
        got = fetch_all(cache, first, workers, bar)
        fallback = [p for p in plans if not any(got[k].path for k in p.first)]
        second = [k for p in fallback for k in p.second]
        bar.total += len(second)
        bar.refresh()
        got.update(fetch_all(cache, second, workers, bar))
    results = [_merge(iv, [p for p in plans if p.interval == iv], got, cache, rng, keep) for iv in intervals]
    if all(r.frame.empty for r in results):
        others = other_intervals(cache, symbol, intervals, plans[0].month)
        if others:
            raise UserError(
                f"no {symbol} {', '.join(intervals)} klines at {cache.base_url} between {rng.start} and {rng.end}, "
                f"but the archive has {symbol} {', '.join(others)} for {plans[0].month}: the interval is missing "
                f"there, not the symbol; try --intervals {others[0]}")
        raise UserError(
            f"no {symbol} klines found at {cache.base_url} between {rng.start} and {rng.end} "
            f"(unknown symbol, or no trading in that period?)"
        )
    return results


PROBE_INTERVALS = ("1h", "15m", "1d", "4h", "5m", "30m", "1m")  # asked about (checksum files only) on a miss


def other_intervals(cache: ArchiveCache, symbol: str, asked: list[str], month: str) -> list[str]:
    """Intervals the archive does publish for ``symbol`` in ``month`` (the small .CHECKSUM files
    are probed, not the zips): tells a missing interval from an unknown symbol."""
    y, m = (int(x) for x in month.split("-"))
    out = []
    for iv in PROBE_INTERVALS:
        if iv in asked:
            continue
        try:
            if cache.fetcher.get(cache.url(monthly_key(symbol, iv, y, m)) + ".CHECKSUM") is not None:
                out.append(iv)
        except (DataError, UserError):  # a probe that fails says nothing either way
            continue
    return out


def check_all_found(symbol: str, results: list[IntervalResult], rng: DateRange) -> None:
    """Error naming the intervals that had no data (call after writing the others)."""
    empty = [r.interval for r in results if r.frame.empty]
    found = [r.interval for r in results if not r.frame.empty]
    if empty:
        why = (f": {symbol} {', '.join(found)} was found, so the archive lacks this interval there"
               if found else "")
        raise UserError(f"no {symbol} {', '.join(empty)} klines found between {rng.start} and {rng.end}{why}")


def _merge(interval: str, plans: list[MonthPlan], got: dict[str, Fetched], cache: ArchiveCache,
           rng: DateRange, keep: str | None) -> IntervalResult:
    res = IntervalResult(interval, pd.DataFrame())
    frames = []
    for p in plans:
        used = p.first if any(got[k].path for k in p.first) else p.second
        found = [got[k] for k in used if k in got and got[k].path]
        if not found:
            res.missing_months.append(p.month)
            continue
        if len(used) > 1:  # daily files: count the days not published
            res.missing_days += len(used) - len(found)
        for f in found:
            assert f.path is not None
            frames.append(read_zip_klines(f.path, cache.url(f.key), res.cleanup))
        res.files.extend(found)
    if not frames:
        return res
    df = pd.concat(frames, ignore_index=True)
    df = df[(df["open_time"] >= rng.start_ms) & (df["open_time"] < rng.end_ms_exclusive)]
    try:
        res.frame = sort_dedupe(df, keep=keep, cleanup=res.cleanup)
    except DataError as exc:  # say which download the clash is in
        raise DataError(f"{interval} klines from {cache.base_url}: {exc}") from None
    res.report = gap_report(res.frame, interval_minutes(interval) * 60_000)
    return res
