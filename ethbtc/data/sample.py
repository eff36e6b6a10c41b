"""Deterministic sample candles for the demo, selftest, tests and benchmarks.

A synthetic ETHBTC (and BNBBTC) series with several regimes -- quiet ranges, trends both
ways, volatility bursts, a few missing bars -- so every rule of the strategy gets exercised
without network access. Same seed, same bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..cli import ArgumentParser, run_main
from ..errors import UserError
from ..fileio import atomic_path
from .candles import BINANCE_COLUMNS
from .timeframes import interval_minutes

SAMPLE_DIR = Path("data/sample")
START = pd.Timestamp("2022-01-01", tz="UTC")


def generate(n_bars: int, interval_minutes: int = 15, seed: int = 7, start_price: float = 0.07,
             gaps: int = 3) -> pd.DataFrame:
    """Binance-layout candles (12 columns, ms times) with regime-switching log-price dynamics."""
    rng = np.random.default_rng(seed)
    bars_per_day = 1440 // interval_minutes
    regime_len = bars_per_day * 45
    n_reg = n_bars // regime_len + 1
    drift = rng.choice([-0.6, -0.25, 0.0, 0.0, 0.3, 0.7], size=n_reg) / (365 * bars_per_day)
    vol = rng.choice([0.35, 0.55, 0.9], size=n_reg) / np.sqrt(365 * bars_per_day)
    reg = np.minimum(np.arange(n_bars) // regime_len, n_reg - 1)
    # mean-reverting deviation around a drifting trend: ETH gets "cheap" and reverts
    trend = np.cumsum(drift[reg] + vol[reg] * 0.35 * rng.standard_normal(n_bars))
    dev = np.zeros(n_bars)
    shocks = vol[reg] * rng.standard_normal(n_bars)
    kappa = 1.0 / (bars_per_day * 4)
    for i in range(1, n_bars):
        dev[i] = dev[i - 1] * (1 - kappa) + shocks[i]
    logp = np.log(start_price) + trend + dev
    close = np.exp(logp)
    open_ = np.concatenate([[start_price], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n_bars))) * vol[reg] * 0.6
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.gamma(2.0, 400.0, n_bars)
    step = interval_minutes * 60_000
    t = START.value // 1_000_000 + np.arange(n_bars, dtype=np.int64) * step
    keep = np.ones(n_bars, dtype=bool)
    for g in rng.integers(n_bars // 10, n_bars - 10, size=gaps):
        keep[g : g + int(rng.integers(1, 6))] = False
    df = pd.DataFrame(
        {
            "open_time": t, "open": open_, "high": high, "low": low, "close": close, "volume": volume,
            "close_time": t + step - 1, "quote_volume": volume * close, "count": rng.integers(50, 900, n_bars),
            "taker_buy_base": volume * 0.5, "taker_buy_quote": volume * close * 0.5, "ignore": 0,
        },
        columns=BINANCE_COLUMNS,
    )
    return df[keep].reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.8f")
    return Path(path)


def ensure_sample(folder: str | Path = SAMPLE_DIR, days: int = 730, interval_minutes: int = 15) -> tuple[Path, Path]:
    """Create (once) data/sample/ETHBTC_15m_sample.csv and BNBBTC_15m_sample.csv; return their paths."""
    folder = Path(folder)
    n = days * 1440 // interval_minutes
    eth = folder / f"ETHBTC_{interval_minutes}m_sample.csv"
    bnb = folder / f"BNBBTC_{interval_minutes}m_sample.csv"
    if not eth.exists():
        write_csv(generate(n, interval_minutes, seed=7, start_price=0.07), eth)
    if not bnb.exists():
        write_csv(generate(n, interval_minutes, seed=11, start_price=0.009, gaps=0), bnb)
    return eth, bnb


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m ethbtc.data.sample",
                       description="Write the deterministic sample candles (ETHBTC and BNBBTC, Binance CSV layout) "
                                   "used by the demo and the paper exchange; existing files are kept.")
    p.add_argument("--out-dir", default=str(SAMPLE_DIR), help=f"folder (default {SAMPLE_DIR})")
    p.add_argument("--days", type=int, default=730, help="length of the series in days (default 730)")
    p.add_argument("--interval", default="15m", help="bar interval, e.g. 15m or 1h (default 15m)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.days <= 36500:
        build_parser().error(f"--days must be between 1 and 36500, got {args.days}")
    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise UserError(f"--out-dir {args.out_dir} exists and is not a folder")
    for path in ensure_sample(args.out_dir, args.days, interval_minutes(args.interval)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
