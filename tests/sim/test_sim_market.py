"""Paper exchange market model: intrabar path, trade-through detection, klines, book, clocks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ethbtc.errors import DataError
from ethbtc.sim.market import CandleSeries, Clock, Market
from tests.support.sim_fixtures import bars

UP = (0.05000, 0.05020, 0.04990, 0.05010)  # close > open: path open -> low -> high -> close
DOWN = (0.05010, 0.05030, 0.04980, 0.04990)  # close < open: path open -> high -> low -> close


def series(*rows: tuple[float, float, float, float]) -> CandleSeries:
    return CandleSeries(bars(rows))


def test_path_visits_low_before_high_on_an_up_bar_and_ends_at_close() -> None:
    s = series(UP)
    assert s.price_at(0, 0.0) == pytest.approx(0.05)
    assert s.price_at(0, 1 / 3) == pytest.approx(0.0499)
    assert s.price_at(0, 2 / 3) == pytest.approx(0.0502)
    assert s.price_at(0, 1.0) == pytest.approx(0.0501)
    d = series(DOWN)
    assert d.price_at(0, 1 / 3) == pytest.approx(0.0503)
    assert d.price_at(0, 2 / 3) == pytest.approx(0.0498)


def test_partial_bar_only_shows_prices_already_reached() -> None:
    s = series(UP)
    o, h, lo, c, v = s.partial(0, 0.5)
    assert (o, lo) == (0.05, pytest.approx(0.0499))
    assert h == pytest.approx(c) and 0.0499 < c < 0.0502  # the high is not reached yet
    assert v == pytest.approx(50.0)
    assert s.partial(0, 1.0)[:4] == pytest.approx(UP[:1] + (0.0502, 0.0499, 0.0501))


def test_first_cross_is_strict_unless_touch_and_respects_the_window() -> None:
    s = series(UP)
    # buy at 0.04995: the price goes under it on the way down to the low (first third)
    f = s.first_cross(0, 0.0, 1.0, 0.04995, below=True, touch=False)
    assert f is not None and 0 < f < 1 / 3
    # exactly at the low: not traded through, only touched
    assert s.first_cross(0, 0.0, 1.0, 0.0499, below=True, touch=False) is None
    assert s.first_cross(0, 0.0, 1.0, 0.0499, below=True, touch=True) == pytest.approx(1 / 3)
    # sell at 0.05015 trades through on the way up (second third), not in the first third
    assert s.first_cross(0, 0.0, 0.3, 0.05015, below=False, touch=False) is None
    g = s.first_cross(0, 0.3, 1.0, 0.05015, below=False, touch=False)
    assert g is not None and 1 / 3 < g < 2 / 3
    # already through at the window start
    assert s.first_cross(0, 0.5, 0.6, 0.05, below=False, touch=False) == 0.5
    assert s.first_cross(0, 0.5, 0.5, 0.05, below=False, touch=False) is None


def test_series_checks_columns_order_and_infers_interval() -> None:
    df = bars([UP, DOWN, UP], minutes=60)
    assert CandleSeries(df).interval_minutes == 60
    with pytest.raises(DataError, match="column"):
        CandleSeries(df.drop(columns=["volume"]))
    with pytest.raises(DataError, match="increasing"):
        CandleSeries(df.iloc[::-1])


def make_market(rows, start: float = 0.0, spread_bps: float = 0.0, mode: str = "manual", now=None) -> Market:
    s = CandleSeries(bars(rows))
    kw = {"now": now} if now else {}
    clock = Clock(start, float(len(s)), mode, 1.0, s.interval_minutes, **kw)
    return Market(s, clock, Decimal("0.00001"), spread_bps)


def test_book_is_at_least_one_tick_wide_and_on_the_tick_grid() -> None:
    m = make_market([UP])
    assert m.bid_ask(0.0) == (Decimal("0.05"), Decimal("0.05001"))
    wide = make_market([UP], spread_bps=10)  # +-5 bps around 0.05
    assert wide.bid_ask(0.0) == (Decimal("0.04997"), Decimal("0.05003"))
    assert m.last_price(0.5) % Decimal("0.00001") == 0


def test_klines_end_with_the_partial_current_bar_and_honour_window_and_limit() -> None:
    m = make_market([UP, DOWN, UP, DOWN, UP])
    rows = m.klines(2.5, None, None, 500)
    assert len(rows) == 3
    t0 = int(bars([UP]).index[0].value // 1_000_000)
    assert [r[0] for r in rows] == [t0, t0 + 900_000, t0 + 1_800_000]
    assert rows[0][1:5] == ["0.05000000", "0.05020000", "0.04990000", "0.05010000"]
    assert rows[-1][6] == t0 + 3 * 900_000 - 1  # close time of the open bar
    assert float(rows[-1][2]) < 0.0502 and float(rows[-1][5]) == pytest.approx(50.0)
    assert len(m.klines(4.0, None, None, 2)) == 2 and m.klines(4.0, None, None, 2)[-1][0] == t0 + 4 * 900_000
    assert [r[0] for r in m.klines(4.0, t0 + 900_000, None, 2)] == [t0 + 900_000, t0 + 1_800_000]
    assert [r[0] for r in m.klines(4.0, None, t0 + 900_000, 500)] == [t0, t0 + 900_000]
    assert len(m.klines(4.0, None, None, 500)) == 5


def test_speed_clock_moves_in_bars_per_second_and_stops_at_the_end() -> None:
    wall = [100.0]
    clock = Clock(1.0, 5.0, "speed", 2.0, 15, now=lambda: wall[0])
    assert clock.pos() == 1.0
    wall[0] += 0.5
    assert clock.pos() == pytest.approx(2.0)
    clock.advance(1)
    assert clock.pos() == pytest.approx(3.0)
    wall[0] += 10
    assert clock.pos() == 5.0
    real = Clock(0.0, 5.0, "realtime", interval_minutes=15, now=lambda: wall[0])
    wall[0] += 450  # half a 15-minute bar
    assert real.pos() == pytest.approx(0.5)
    manual = Clock(0.0, 5.0, "manual", now=lambda: wall[0])
    wall[0] += 1000
    assert manual.pos() == 0.0 and manual.advance(2.5) == 2.5 and manual.advance(9) == 5.0


def test_clock_set_mode_switches_speed_without_moving_backwards() -> None:
    wall = [0.0]
    clock = Clock(1.0, 100.0, "speed", 4.0, 1, now=lambda: wall[0])
    wall[0] += 2.0
    assert clock.pos() == pytest.approx(9.0)
    clock.set_mode("manual")  # freezes where the replay stood
    wall[0] += 50.0
    assert clock.pos() == pytest.approx(9.0) and clock.mode == "manual"
    clock.set_mode("realtime")  # 1-minute bars: one bar per 60 s from here
    wall[0] += 30.0
    assert clock.pos() == pytest.approx(9.5) and clock.bars_per_second == pytest.approx(1 / 60)
    clock.set_mode("speed", 10.0)
    wall[0] += 1.0
    assert clock.pos() == pytest.approx(19.5)
    with pytest.raises(ValueError, match="clock mode"):
        clock.set_mode("turbo")
    with pytest.raises(ValueError, match="positive"):
        clock.set_mode("speed", 0.0)
