#!/usr/bin/env python3
"""Download Binance Vision spot klines into one clean CSV per symbol and interval.

    python download_vision.py --symbol ETHBTC --intervals 1h --start 2020-01 --end 2020-03 --out-dir data/raw

Monthly zips, falling back to daily zips for months not yet published; every zip checked
against its .CHECKSUM and cached under OUT_DIR/vision_cache (a re-run fetches only what is
missing or corrupt). Writes OUT_DIR/SYMBOL_INTERVAL_START_END_vision.csv (header, sorted,
de-duplicated, times in ms) and prints a gap report.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ethbtc.cli import ArgumentParser, http_url, number, run_main
from ethbtc.endpoints import VISION_ARCHIVE_URL as DEFAULT_BASE_URL
from ethbtc.errors import UserError

if TYPE_CHECKING:  # pandas/requests load after parsing (``--help`` stays instant)
    from ethbtc.data.vision_download import IntervalResult

CACHE_DIR = "vision_cache"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="download_vision.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--symbol", required=True, help="spot pair, e.g. ETHBTC")
    p.add_argument("--intervals", nargs="+", default=["1h"], help="one or more intervals, e.g. 1h 15m (default 1h)")
    p.add_argument("--start", required=True, help="first month or day: YYYY-MM or YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last month or day (inclusive): YYYY-MM or YYYY-MM-DD")
    p.add_argument("--out-dir", default="data/raw", help="output folder (default data/raw)")
    p.add_argument("--prefer-daily", action="store_true", help="use daily zips for the newest month")
    p.add_argument("--base-url", default=os.environ.get("VISION_BASE_URL", DEFAULT_BASE_URL),
                   help="archive root or a mirror (env VISION_BASE_URL; default %(default)s)")
    p.add_argument("--workers", type=number(int, 1, 32), default=4, help="parallel downloads (1-32, default 4)")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 .CHECKSUM check")
    p.add_argument("--keep", choices=["first", "last"],
                   help="which candle to keep when the archive has two different ones for one time")
    p.add_argument("--timeout", type=number(float, 0, 3600, above=True), default=30.0, help="seconds before a silent server counts as failed")
    p.add_argument("--retries", type=number(int, 0, 100), default=4, help="extra attempts per file on 5xx/timeouts (default 4)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ethbtc.data.httpfetch import Fetcher
    from ethbtc.data.klines import write_klines
    from ethbtc.data.vision import ArchiveCache, check_symbol, parse_range, vision_interval
    from ethbtc.data.vision_download import check_all_found, download

    symbol = check_symbol(args.symbol)
    intervals = list(dict.fromkeys(vision_interval(t) for a in args.intervals for t in a.split(",") if t.strip()))
    if not intervals:
        raise UserError("--intervals: give at least one interval, e.g. 1h")
    rng = parse_range(args.start, args.end)
    if http_url(args.base_url) is None:
        raise UserError(f"--base-url {args.base_url!r}: expected http(s)://host[:port][/path]")
    out_dir = writable_dir(Path(args.out_dir))
    fetcher = Fetcher(timeout=args.timeout, retries=args.retries, pool_size=args.workers)
    cache = ArchiveCache(fetcher, args.base_url, out_dir / CACHE_DIR, verify=not args.no_verify)
    try:
        results = download(symbol, intervals, rng, cache, args.workers, args.prefer_daily, args.keep)
    finally:
        fetcher.close()
    for res in (r for r in results if not r.frame.empty):
        path = out_dir / f"{symbol}_{res.interval}_{rng.start_text}_{rng.end_text}_vision.csv"
        write_klines(path, res.frame)
        print_summary(symbol, res, path)
    check_all_found(symbol, results, rng)
    return 0


def writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise UserError(f"--out-dir {path}: exists and is not a folder") from None
    except NotADirectoryError:
        raise UserError(f"--out-dir {path}: not writable (part of the path is a file)") from None
    except OSError as exc:
        raise UserError(f"--out-dir {path}: not writable ({exc.strerror})") from None
    return path


def print_summary(symbol: str, res: IntervalResult, path: Path) -> None:
    counts = {s: sum(f.status == s for f in res.files) for s in ("downloaded", "cached")}
    print(f"{symbol} {res.interval}: {len(res.files)} files ({counts['downloaded']} downloaded, "
          f"{counts['cached']} from cache)")
    if res.missing_months:
        print(f"  not published: {', '.join(res.missing_months)}")
    if res.missing_days:
        print(f"  {res.missing_days} daily files not published yet")
    c = res.cleanup
    if c.times_rescaled:
        print(f"  {c.times_rescaled} rows had microsecond (or second) timestamps: converted to ms")
    if c.exact_duplicates:
        print(f"  dropped {c.exact_duplicates} identical duplicate rows")
    if c.conflicts_resolved:
        print(f"  dropped {c.conflicts_resolved} conflicting duplicate rows (--keep)")
    print(f"wrote {path}")
    for line in res.report.lines() if res.report else []:
        print(f"  {line}")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
