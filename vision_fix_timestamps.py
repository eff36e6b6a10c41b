#!/usr/bin/env python3
"""Repair a Binance kline CSV onto an exact interval grid, and say what changed.

    python vision_fix_timestamps.py --in data/raw/ETHBTC_1h_2018-01_2018-03_vision.csv \\
        --out data/ETHBTC_1h_2018-01_2018-03.csv --freq 1h

Floors each open_time to its interval boundary (after the 2018-02 outage Binance published
rows like 09:28:14.652), recomputes close_time = open_time + interval - 1 ms, converts s/us
to ms, sorts, drops identical duplicates and refuses two different candles for one time
unless --keep first|last. Gaps are reported; --fill-gaps fills them with flat zero-volume
candles at the previous close, marked in an added `filled` column. Running it again on its
own output changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ethbtc.cli import ArgumentParser, run_main
from ethbtc.errors import DataError, UserError
from ethbtc.fileio import check_writable

if TYPE_CHECKING:  # pandas loads after parsing (``--help`` stays instant)
    import pandas as pd

    from ethbtc.data.klines import Cleanup


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="vision_fix_timestamps.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--in", dest="inp", required=True,
                   help="kline CSV (with or without header); freqtrade JSON and OHLCV CSVs are converted")
    p.add_argument("--out", required=True, help="output CSV (may be the same file)")
    p.add_argument("--freq", help="bar interval: 1h, 15m, 15min, 15T, ... (default: inferred)")
    p.add_argument("--keep", choices=["first", "last"],
                   help="keep this one of two different candles for the same open time")
    p.add_argument("--fill-gaps", action="store_true",
                   help="fill missing bars flat at the previous close, volume 0, filled=1")
    return p


def read_any(src: Path, cleanup: Cleanup) -> tuple[pd.DataFrame, str]:
    """A kline table from any file the backtest loader reads: Binance kline CSVs as they are;
    freqtrade JSON and generic OHLCV CSVs converted (second value names the format, '' for klines)."""
    import numpy as np
    import pandas as pd

    from ethbtc.data.candles import read_ohlcv_ms
    from ethbtc.data.klines import KLINE_COLUMNS, read_klines

    if src.suffix.lower() != ".json":
        try:
            return read_klines(src, cleanup=cleanup), ""
        except DataError as exc:
            if "kline columns" not in str(exc):
                raise
            try:
                rows = read_ohlcv_ms(src)
            except DataError:
                raise exc from None  # neither layout: the kline reader's message says what it expected
    else:
        rows = read_ohlcv_ms(src)
    what = "freqtrade JSON candles" if src.suffix.lower() == ".json" else "an OHLCV CSV"
    df = pd.DataFrame({c: "0" for c in KLINE_COLUMNS}, index=rows.index)
    df["open_time"] = rows["open_time"].to_numpy(np.int64)
    df["close_time"] = df["open_time"]
    for c in ("open", "high", "low", "close", "volume"):
        df[c] = rows[c].to_numpy()
    return df, what


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ethbtc.data.klines import (  # pandas loads after parsing (``--help`` stays instant)
        Cleanup,
        align_to_grid,
        fill_gaps,
        gap_report,
        median_spacing_ms,
        sort_dedupe,
        write_klines,
    )
    from ethbtc.data.timeframes import interval_minutes

    given = interval_minutes(args.freq) * 60_000 if args.freq else None
    check_writable(args.out)
    src = Path(args.inp)
    cleanup = Cleanup()
    df, converted = read_any(src, cleanup)
    if df.empty:
        raise DataError(f"{src}: no candles")
    spacing = median_spacing_ms(df)
    step = given or spacing
    if step is None:
        raise UserError(f"{src}: one row only, pass --freq")
    if spacing is not None and not 2 / 3 <= spacing / step <= 1.5:  # a wrong --freq, not a few odd rows
        raise UserError(f"--freq {args.freq} but rows in {src} are {spacing / 60_000:g} minutes apart (median)")
    if step % 60_000:
        raise UserError(f"{src}: rows are {step / 60_000:g} minutes apart (median); pass --freq")
    if converted:
        df["close_time"] = df["open_time"] + step - 1
    df = align_to_grid(df, step, cleanup)
    try:
        df = sort_dedupe(df, keep=args.keep, cleanup=cleanup)
    except DataError as exc:
        raise DataError(f"{src}: {exc}") from None
    report = gap_report(df, step)
    added = 0
    if args.fill_gaps:
        df, added = fill_gaps(df, step)
    write_klines(args.out, df)

    if converted:
        print(f"read {src} as {converted}; written as a 12-column kline CSV (quote volume, count and "
              "taker columns 0)")
    print(f"interval: {step // 60_000} minutes ({'given' if given else 'inferred from median spacing'})")
    c = cleanup
    print(f"open times moved onto the grid: {c.rows_aligned}; close times recomputed: {c.close_times_fixed}")
    if c.times_rescaled:
        print(f"rows converted from seconds/microseconds to ms: {c.times_rescaled}")
    if c.exact_duplicates:
        print(f"identical duplicate rows dropped: {c.exact_duplicates}")
    if c.conflicts_resolved:
        print(f"conflicting rows dropped (--keep {args.keep}): {c.conflicts_resolved}")
    for line in report.lines():
        print(line)
    if args.fill_gaps:
        print(f"filled {added} missing bars (flat at previous close, volume 0, filled=1)")
    elif report.gaps:
        print("gaps left as they are (--fill-gaps fills them, marked in a `filled` column)")
    print(f"wrote {args.out} ({len(df)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
