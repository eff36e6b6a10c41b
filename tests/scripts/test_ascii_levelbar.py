"""ascii_levelbar.py: marker between the buy and sell levels, bps distances, sparkline; no line
wider than the terminal; warm-up NaN levels shown as such; runnable demo and clean CLI errors."""

from __future__ import annotations

import math
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

import ascii_levelbar as lb

NAN = float("nan")
finite_price = st.floats(0.001, 1.0)
maybe_nan = st.one_of(finite_price, st.just(NAN))


@given(st.integers(1, 200), maybe_nan, maybe_nan, maybe_nan,
       st.lists(st.one_of(finite_price, st.just(NAN)), max_size=300), st.booleans())
def test_no_line_exceeds_the_width(width: int, close: float, buy: float, sell: float,
                                   closes: list[float], ascii_only: bool) -> None:
    text = lb.render(close, buy, sell, closes, width=width, ascii_only=ascii_only)
    assert text
    assert all(len(line) <= width for line in text.splitlines()), text


@given(st.floats(0.01, 0.1), st.floats(0.001, 0.2), st.floats(0.001, 0.2), st.floats(0, 1), st.integers(12, 120))
def test_marker_sits_between_b_and_s_in_price_order(buy: float, gap: float, below: float, frac: float,
                                                    width: int) -> None:
    sell = buy * (1 + gap)
    close = buy + frac * (sell - buy)
    bar = lb.levelbar(close, buy, sell, width, ascii_only=True)
    assert len(bar) == width and bar[0] == "[" and bar[-1] == "]"
    b, s, c = bar.find("B"), bar.find("S"), bar.find("*")
    assert c >= 0  # the price marker is always drawn (it wins a shared cell)
    assert (b == -1 or b <= c) and (s == -1 or c <= s)
    low = lb.levelbar(buy * (1 - below), buy, sell, width, ascii_only=True)
    assert low.find("*") < low.find("B") or low.find("B") == -1


def test_distances_and_zone_in_the_text() -> None:
    text = lb.render(0.05, 0.0495, 0.0505, [0.049, 0.05, 0.051], width=100, ascii_only=False)
    first = text.splitlines()[0]
    assert "ETHBTC 0.050000" in first
    assert "buy 0.049500 (-100bps)" in first and "sell 0.050500 (+100bps)" in first
    assert "[between]" in first
    assert text.splitlines()[-1] == "closes ▁▅█"
    assert "[below buy]" in lb.render(0.049, 0.0495, 0.0505, width=80)
    assert "[above sell]" in lb.render(0.051, 0.0495, 0.0505, width=80)


def test_warm_up_nan_levels() -> None:
    text = lb.render(0.05, NAN, NAN, [0.05, NAN, 0.051], width=60, ascii_only=True)
    assert "buy n/a (n/a)" in text and "[warm-up]" in text and "warming up" in text
    assert "B" not in text.splitlines()[1]
    assert "no price" in lb.render(NAN, NAN, NAN, width=40)


def test_narrow_terminal_wraps_the_info_instead_of_cutting_it() -> None:
    lines = lb.render(0.05, 0.0495, 0.0505, [0.05] * 50, width=24, ascii_only=True).splitlines()
    assert lines[:4] == ["ETHBTC 0.050000", "buy 0.049500 (-100bps)", "sell 0.050500 (+100bps)", "[between]"]
    assert len(lines[4]) == 24 and lines[5] == "-" * 24  # bar, then a flat sparkline (no label)


def test_sparkline() -> None:
    assert lb.sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert lb.sparkline([1, 2, 3], 2, ascii_only=True) == "_#"  # keeps the most recent values
    assert lb.sparkline([NAN, 1.0, NAN], 3) == " ▄ "
    assert lb.sparkline([], 5) == "" and lb.sparkline([1.0], 0) == ""


def test_fmt_price() -> None:
    assert lb.fmt_price(0.0518) == "0.051800"
    assert lb.fmt_price(60000) == "60000"
    assert lb.fmt_price(NAN) == "n/a"
    assert math.isnan(NAN)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "ascii_levelbar.py", *args], capture_output=True, text=True,
                          cwd=lb.__file__.rsplit("/", 1)[0], env={"PYTHONIOENCODING": "utf-8", "PATH": ""})


def test_demo_runs_and_shows_every_zone() -> None:
    r = run("--demo", "--width", "60")
    assert r.returncode == 0, r.stderr
    for zone in ("[warm-up]", "[below buy]", "[between]", "[above sell]"):
        assert zone in r.stdout
    assert all(len(line) <= 60 for line in r.stdout.splitlines())


def test_cli_values_and_errors() -> None:
    r = run("--close", "0.05", "--buy", "0.0495", "--sell", "0.0505", "--closes", "0.05,0.051", "--width", "80")
    assert r.returncode == 0 and "(-100bps)" in r.stdout
    for bad in (["--closes", "x,y", "--close", "0.05"], [], ["--demo", "--width", "0"]):
        r = run(*bad)
        assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
