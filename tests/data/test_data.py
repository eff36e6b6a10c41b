"""SPEC R1-R5: the candle loader."""

import json

import numpy as np
import pandas as pd
import pytest

from ethbtc.data.candles import BINANCE_COLUMNS, load_candles
from ethbtc.data.timeframes import epoch_to_ms, interval_minutes
from ethbtc.errors import DataError

T0 = 1_700_000_000_000 - (1_700_000_000_000 % 900_000)


def rows(n, step=900_000, t0=T0):
    out = []
    for i in range(n):
        t = t0 + i * step
        p = 0.05 + i * 1e-5
        out.append([t, p, p * 1.01, p * 0.99, p, 10.0, t + step - 1, 1.0, 5, 1.0, 1.0, 0])
    return out


def write_csv(path, data, header=True):
    df = pd.DataFrame(data, columns=BINANCE_COLUMNS)
    df.to_csv(path, index=False, header=header)
    return path


def test_r1_binance_csv_with_and_without_header(tmp_path):
    a = load_candles(write_csv(tmp_path / "a.csv", rows(50)))
    b = load_candles(write_csv(tmp_path / "b.csv", rows(50), header=False))
    pd.testing.assert_frame_equal(a.df, b.df)
    assert list(a.df.columns) == ["open", "high", "low", "close", "volume"]
    assert str(a.df.index.tz) == "UTC" and a.interval_minutes == 15


def test_r2_mixed_ms_and_us_and_seconds():
    assert list(epoch_to_ms(np.array([1.7e9, 1.7e12, 1.7e15]))) == [1_700_000_000_000] * 3


def test_r2_merged_file_mixing_ms_and_us(tmp_path):
    data = rows(40)
    for r in data[20:]:
        r[0] *= 1000  # Vision files from 2025 carry microseconds
    c = load_candles(write_csv(tmp_path / "m.csv", data, header=False))
    assert len(c.df) == 40 and not c.report.gaps
    assert c.df.index[20] - c.df.index[19] == pd.Timedelta(minutes=15)


def test_generic_iso_csv_and_freqtrade_json(tmp_path):
    p = tmp_path / "iso.csv"
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=30, freq="1h").strftime("%Y-%m-%d %H:%M:%S"),
                  "Open": 1.0, "High": 1.1, "Low": 0.9, "Close": 1.0, "Volume": 3}).to_csv(p, index=False)
    c = load_candles(p)
    assert c.interval_minutes == 60 and c.df.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    j = tmp_path / "ft.json"
    j.write_text(json.dumps([[r[0], *r[1:6]] for r in rows(30)]))
    assert load_candles(j).interval_minutes == 15


def test_r4_gaps_reported_not_filled(tmp_path):
    data = rows(60)
    del data[10:14]
    c = load_candles(write_csv(tmp_path / "g.csv", data))
    assert len(c.df) == 56
    assert len(c.report.gaps) == 1 and c.report.gaps[0].missing_bars == 4
    assert "4 missing bars" in c.report.summary()


def test_r4_identical_duplicates_dropped_conflicting_rejected(tmp_path):
    data = rows(30)
    c = load_candles(write_csv(tmp_path / "d.csv", data + [list(data[5])]))
    assert len(c.df) == 30 and c.report.duplicates_dropped == 1
    bad = list(data[5])
    bad[4] = 0.06
    with pytest.raises(DataError, match="conflicting duplicate"):
        load_candles(write_csv(tmp_path / "e.csv", data + [bad]))


def test_r4_unsorted_rows_reported_and_sorted(tmp_path):
    data = rows(30)
    data[3], data[4] = data[4], data[3]
    c = load_candles(write_csv(tmp_path / "u.csv", data))
    assert c.report.nonmonotonic_rows == 1 and c.df.index.is_monotonic_increasing


def test_r5_interval_inferred_and_checked(tmp_path):
    p = write_csv(tmp_path / "h.csv", rows(30, step=3_600_000))
    assert load_candles(p, "1h").interval_minutes == 60
    with pytest.raises(DataError, match="data interval is 60m but the config/flags say 15m"):
        load_candles(p, "15m")


def test_interval_strings():
    assert [interval_minutes(s) for s in ("15m", "15T", "15min", "1h", "1d", 30)] == [15, 15, 15, 60, 1440, 30]


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "empty file"),
        (b"\x00\x01\x02", "binary"),
        (b"open_time,open,high,low\n1,2,3,4\n", "missing column"),
        (b"open_time,open,high,low,close,volume\n1700000000000,1,1,1,nan,1\n1700000900000,1,1,1,1,1\n", "non-numeric"),
        (b"open_time,open,high,low,close,volume\n1700000000000,-1,1,1,1,1\n1700000900000,1,1,1,1,1\n", "positive"),
        (b"open_time,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", "neither epoch"),
        (b"open_time,open,high,low,close,volume\n1700000000000,1,1,1,1,1\n", "at least 2"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, needle):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_candles(p)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_window_slicing_and_empty_window(tmp_path):
    c = load_candles(write_csv(tmp_path / "w.csv", rows(200)))
    day = c.df.index[0].strftime("%Y-%m-%d")
    w = c.window(day, day)  # a bare end date includes that whole day
    assert w.df.index[-1].strftime("%Y-%m-%d") == day and len(w.df) > 1
    with pytest.raises(DataError, match="no candles between"):
        c.window("2030-01-01", "2030-02-01")
    with pytest.raises(DataError, match="before start"):
        c.window("2024-02-01", "2024-01-01")


def test_real_data_defects_reported(shared_data):
    c = load_candles(shared_data / "ETHBTC_1h_2017-07_2023-06.csv")
    assert c.report.rows == 52151 and len(c.report.gaps) == 27 and c.report.missing_bars == 117
    assert c.report.off_grid_rows == 43
    f = load_candles(shared_data / "ETHBTC_15m_2020-02_2020-10.freqtrade.json", "15m")
    assert f.report.rows == 24160 and len(f.report.gaps) == 3 and f.report.missing_bars == 32
    assert max(g.missing_bars for g in f.report.gaps) == 14
