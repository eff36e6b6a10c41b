#!/usr/bin/env python3
"""Console picture of where the price sits between the buy and sell levels, plus a sparkline.

Used by the live executor at ``-v`` and runnable on its own::

    python ascii_levelbar.py --demo                   # synthetic bars, warm-up included
    python ascii_levelbar.py --close 0.0518 --buy 0.0512 --sell 0.0526 --closes 0.051,0.052,0.0518

Importable: ``render(close, buy_level, sell_level, closes, width)`` returns the lines as one
string. Every line fits ``width`` (default: the terminal's), NaN levels (indicator warm-up)
and a missing price are shown as such, and ``ascii_only`` avoids Unicode for plain terminals.
Distances are ``ethbtc.monitoring.levels.distance_bps``: the move from the price to each level in bps.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
from collections.abc import Sequence

from ethbtc.cli import ArgumentParser, run_main
from ethbtc.monitoring.levels import distance_bps, price_levels

SPARK_UNICODE = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.:-=+*#"
MIN_BAR = 5


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _unicode_ok(stream: object = None) -> bool:
    encoding = getattr(stream if stream is not None else sys.stdout, "encoding", None) or ""
    return encoding.lower().replace("-", "") in ("utf8", "utf16", "utf32")


def fmt_price(x: float) -> str:
    """About five significant digits, fixed-point (0.051800, 1.2300, 60000)."""
    if not _finite(x):
        return "n/a"
    if x == 0:
        return "0"
    decimals = min(10, max(0, 4 - math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def fmt_bps(x: float) -> str:
    return "n/a" if not _finite(x) else f"{x:+.0f}bps"


def _frac(x: float, lo: float, hi: float) -> float:
    """(x - lo) / (hi - lo) in [0, 1] without overflow: halves keep 1e308 - (-1e308) finite."""
    span = hi / 2 - lo / 2
    f = (x / 2 - lo / 2) / span if span > 0 else 0.5
    return min(1.0, max(0.0, f)) if math.isfinite(f) else 0.5


def sparkline(values: Sequence[float], width: int, ascii_only: bool = False) -> str:
    """The last ``width`` values as one line of block characters (NaN -> blank)."""
    if width <= 0:
        return ""
    chars = SPARK_ASCII if ascii_only else SPARK_UNICODE
    tail = list(values)[-width:]
    finite = [v for v in tail if _finite(v)]
    if not finite:
        return " " * len(tail)
    lo, hi = min(finite), max(finite)
    top = len(chars) - 1
    out = []
    for v in tail:
        if not _finite(v):
            out.append(" ")
        elif hi == lo:
            out.append(chars[top // 2])
        else:
            out.append(chars[round(_frac(v, lo, hi) * top)])
    return "".join(out)


def levelbar(close: float, buy_level: float, sell_level: float, width: int, ascii_only: bool = False) -> str:
    """``[··B────●──────S··]``: buy (B) and sell (S) levels, price marker, scaled to ``width``."""
    width = max(0, width)
    inner = width - 2
    if inner < 1:
        return "[]"[:width]
    if not (_finite(close) and _finite(buy_level) and _finite(sell_level)):
        text = "warming up" if _finite(close) else "no price"
        return "[" + text[:inner].center(inner) + "]"
    lo_level, hi_level = min(buy_level, sell_level), max(buy_level, sell_level)
    lo, hi = min(lo_level, close), max(hi_level, close)
    pad = (hi / 2 - lo / 2) * 0.16 or abs(close) * 0.001 or 1.0
    lo, hi = lo - pad, hi + pad  # may reach +-inf for absurd inputs: _frac copes

    def pos(x: float) -> int:
        return min(inner - 1, max(0, round(_frac(x, lo, hi) * (inner - 1))))

    inside, outside, marker = ("-", ".", "*") if ascii_only else ("─", "·", "●")
    first, last = pos(lo_level), pos(hi_level)
    cells = [inside if first <= i <= last else outside for i in range(inner)]
    cells[pos(buy_level)] = "B"
    cells[pos(sell_level)] = "S"
    cells[pos(close)] = marker
    return "[" + "".join(cells) + "]"


def _zone(close: float, buy_level: float, sell_level: float) -> str:
    if not (_finite(close) and _finite(buy_level) and _finite(sell_level)):
        return "warm-up"
    if close <= buy_level:
        return "below buy"
    if close >= sell_level:
        return "above sell"
    return "between"


def _fit(parts: Sequence[str], width: int) -> list[str]:
    """Pack ``parts`` into as few lines of at most ``width`` characters as possible."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += "  " + part
        else:
            lines.append(part[:width])
    return lines


def render(
    close: float,
    buy_level: float,
    sell_level: float,
    closes: Sequence[float] = (),
    width: int | None = None,
    ascii_only: bool | None = None,
    symbol: str = "ETHBTC",
) -> str:
    """Info line(s), the level bar and a sparkline of ``closes``; no line longer than ``width``."""
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    width = max(1, int(width))
    if ascii_only is None:
        ascii_only = not _unicode_ok()
    parts = [
        f"{symbol} {fmt_price(close)}",
        f"buy {fmt_price(buy_level)} ({fmt_bps(distance_bps(close, buy_level))})",
        f"sell {fmt_price(sell_level)} ({fmt_bps(distance_bps(close, sell_level))})",
        f"[{_zone(close, buy_level, sell_level)}]",
    ]
    lines = _fit(parts, width)
    lines.append(levelbar(close, buy_level, sell_level, min(width, 120), ascii_only))
    if closes:
        label = "closes " if width >= 30 else ""
        spark = sparkline(closes, min(width, 120) - len(label), ascii_only)
        if spark:
            lines.append(label + spark)
    return "\n".join(line[:width] for line in lines)


def demo_frames(bars: int = 160, lookback: int = 48, entry: float = 0.01, exit_: float = 0.0,
                seed: int = 7) -> list[tuple[float, float, float, list[float]]]:
    """Synthetic ETHBTC closes with an SMA trend: (close, buy, sell, recent closes) per bar."""
    rng = random.Random(seed)
    closes: list[float] = []
    price = 0.052
    for _ in range(bars):
        price *= math.exp(rng.gauss(0.0, 0.004) + 0.03 * math.log(0.052 / price))
        closes.append(price)
    frames = []
    for t, c in enumerate(closes):
        if t + 1 < lookback:
            buy = sell = float("nan")
        else:
            trend = sum(closes[t + 1 - lookback: t + 1]) / lookback
            buy, sell = price_levels(c, c / trend - 1.0, entry, exit_, sma_lookback=lookback)
        frames.append((c, buy, sell, closes[max(0, t - 59): t + 1]))
    return frames


def _price(text: str) -> float:
    """A price, or nan for 'not known yet' (shown as warming up / no price)."""
    value = float(text)  # ValueError: argparse reports an invalid value
    if math.isnan(value) or (math.isfinite(value) and value > 0):
        return value
    raise argparse.ArgumentTypeError(f"must be a positive price (or nan: not known yet), got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="ascii_levelbar.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="show frames for synthetic bars, warm-up included")
    parser.add_argument("--close", type=_price, help="current close (nan: no price)")
    parser.add_argument("--buy", type=_price, help="buy level (price; nan: warming up)")
    parser.add_argument("--sell", type=_price, help="sell level (price; nan: warming up)")
    parser.add_argument("--closes", default="", help="comma-separated recent closes for the sparkline")
    parser.add_argument("--width", type=int, help="columns (default: terminal width)")
    parser.add_argument("--ascii", action="store_true", help="plain ASCII characters only")
    args = parser.parse_args(argv)
    ascii_only = True if args.ascii else None
    if args.width is not None and args.width < 1:
        parser.error("--width must be at least 1")
    if args.demo:
        frames = demo_frames()
        picks = [10]  # warm-up, then the first bar in each zone, then the last bar
        for zone in ("below buy", "between", "above sell"):
            picks += [i for i, f in enumerate(frames) if _zone(*f[:3]) == zone][:1]
        for i in sorted(set(picks)) + [len(frames) - 1]:
            close, buy, sell, recent = frames[i]
            print(f"-- bar {i}")
            print(render(close, buy, sell, recent, args.width, ascii_only))
        return 0
    if args.close is None:
        parser.error("give --demo, or --close (with --buy and --sell)")
    try:
        closes = [float(x) for x in args.closes.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--closes must be comma-separated numbers, got {args.closes[:60]!r}")
    nan = float("nan")
    buy = nan if args.buy is None else args.buy
    sell = nan if args.sell is None else args.sell
    print(render(args.close, buy, sell, closes, args.width, ascii_only))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
