"""Property-based fuzzing of the two input gates: the config loader and the candle loader (issue 9).

Whatever the bytes, ``load_config`` / ``build_config`` / ``load_candles`` either return a valid
result or raise a :class:`~ethbtc.errors.UserError` (ConfigError/DataError) with a short
one-line message -- never another exception. Valid configs survive ``to_json`` -> ``load_config``
unchanged; valid candles survive every accepted file layout unchanged (SPEC R1-R2, section 6).

Profiles (tests/conftest.py): ``ci`` is derandomized (same examples every run); ``make soak``
runs thousands of random examples per test and keeps failures in .hypothesis-fuzz/.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ethbtc.config import ALL_KEYS, SECTIONS, Config, build_config, load_config, strip_json_comments
from ethbtc.data.candles import BINANCE_COLUMNS, OHLCV, load_candles
from ethbtc.errors import UserError
from tests.support.bad_inputs import CANDLES, CONFIGS

MAX_MESSAGE = 1000  # one line; 'unknown key' lists all ~35 valid keys when none is close


@contextmanager
def written(data: bytes, suffix: str = ".csv") -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        yield path


def assert_user_message(exc: UserError) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < MAX_MESSAGE, repr(text)


# ---------------------------------------------------------------- strategies

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
config_keys = st.one_of(st.sampled_from(ALL_KEYS + list(SECTIONS) + ["params", "meta"]), st.text(max_size=15))
# values a key might plausibly get: right type, wrong type, out of range, non-finite
odd_values = st.one_of(json_values, st.sampled_from([0, -1, 1, 2, 0.5, 1e308, -1e308, 10**30, "15m", "1M", "sma",
                                                     "roc", "dynamic", True, False, None, float("nan"),
                                                     float("inf")]))
config_mappings = st.dictionaries(config_keys, st.one_of(odd_values, st.dictionaries(config_keys, odd_values,
                                                                                     max_size=4)), max_size=8)


@st.composite
def valid_configs(draw: st.DrawFn) -> Config:
    """Configs inside every SPEC R17 range and cross-field rule."""
    fin = st.floats(0, 10, allow_nan=False)
    unit = st.floats(0, 1, allow_nan=False)
    exit_ = draw(st.floats(0, 0.2))
    lo, hi = sorted((draw(fin), draw(fin)))
    floor, cap = sorted((draw(st.floats(0, 1)), draw(st.floats(0, 1))))
    minutes = draw(st.sampled_from([None, 1, 5, 15, 60, 240, 1440]))
    interval = draw(st.sampled_from([None, "1m", "5m", "15m", "1h", "4h", "1d"]))
    if minutes is not None and interval is not None:
        interval = {1: "1m", 5: "5m", 15: "15m", 60: "1h", 240: "4h", 1440: "1d"}[minutes]
    flat: dict[str, Any] = {
        "trend_kind": draw(st.sampled_from(["sma", "roc"])), "trend_lookback": draw(st.integers(1, 10_000)),
        "flip_band_entry": exit_ + draw(st.floats(0, 0.2)), "flip_band_exit": exit_,
        "vol_window": draw(st.integers(2, 5000)), "vol_adapt_k": draw(fin), "target_vol": draw(fin),
        "min_mult": lo, "max_mult": hi, "cooldown_minutes": draw(st.floats(0, 1e6)),
        "step_allocation": draw(st.floats(1e-6, 1)), "max_position": draw(st.floats(1e-6, 1)),
        "gate_window_days": draw(st.integers(0, 365)), "gate_roc_threshold": draw(fin),
        "rebalance_threshold_w": draw(unit), "bar_interval_minutes": minutes,
        "maker_fee": draw(st.floats(0, 0.01)), "taker_fee": draw(st.floats(0, 0.01)),
        "slippage_bps": draw(st.floats(0, 500)), "bnb_discount": draw(st.floats(0, 0.99)),
        "pay_fees_in_bnb": draw(st.booleans()), "start_bnb": draw(fin),
        "interval": interval, "poll_sec": draw(st.floats(0.001, 3600)), "ttl_sec": draw(st.floats(0.001, 86400)),
        "taker_fallback": draw(st.booleans()), "min_trade_btc": draw(st.none() | st.floats(0, 1)),
        "min_trade_frac": draw(unit), "min_trade_floor_btc": floor, "min_trade_cap_btc": cap,
        "basis_btc": draw(st.floats(1e-8, 1e6)), "risk_mode": draw(st.sampled_from(["dynamic", "fixed_basis"])),
        "max_dd_frac": draw(unit), "max_daily_loss_frac": draw(unit),
    }
    meta = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    return build_config(flat | {"meta": meta})


# ---------------------------------------------------------------- config loader

@given(st.binary(max_size=600))
def test_load_config_on_arbitrary_bytes(data: bytes) -> None:
    with written(data, ".json") as path:
        try:
            cfg = load_config(path)
        except UserError as exc:
            assert_user_message(exc)
        else:
            assert isinstance(cfg, Config)


@given(config_mappings, st.booleans(), st.booleans())
@example({"\n": 0}, False, False)  # found by the fuzzer: a key with a newline broke the one-line error
def test_load_config_on_arbitrary_json_objects(mapping: dict[str, Any], bom: bool, comment: bool) -> None:
    text = json.dumps(mapping, indent=1)
    if comment:
        text = "// fuzzed\n" + text.replace("\n", " // c\n", 1)
    with written((b"\xef\xbb\xbf" if bom else b"") + text.encode(), ".json") as path:
        try:
            cfg = load_config(path)
        except UserError as exc:
            assert_user_message(exc)
        else:
            assert_valid_config(cfg)


@given(config_mappings, st.dictionaries(st.sampled_from(ALL_KEYS), odd_values, max_size=3))
def test_build_config_with_overrides(mapping: dict[str, Any], overrides: dict[str, Any]) -> None:
    try:
        cfg = build_config(mapping, overrides)
    except UserError as exc:
        assert_user_message(exc)
    else:
        assert_valid_config(cfg)


def assert_valid_config(cfg: Config) -> None:
    flat = cfg.flat()
    for key, value in flat.items():
        assert not (isinstance(value, float) and not math.isfinite(value)), key
    s = cfg.strategy
    assert s.flip_band_entry >= s.flip_band_exit and s.min_mult <= s.max_mult  # SPEC R17
    assert 0 < s.step_allocation <= 1 and 0 < s.max_position <= 1
    assert 0 <= cfg.min_trade_btc()


@given(valid_configs())
def test_to_json_load_config_round_trip(cfg: Config) -> None:
    with written(cfg.to_json().encode(), ".json") as path:
        again = load_config(path)
    assert again == cfg
    assert build_config(json.loads(cfg.to_json())) == cfg


@given(json_values)
def test_strip_json_comments_leaves_json_untouched(value: Any) -> None:
    text = json.dumps(value)  # strings may hold // and escaped quotes
    assert strip_json_comments(text) == text
    commented = "// head\n" + json.dumps(value, indent=1).replace("\n", " // tail\n") + " // end"
    assert json.loads(strip_json_comments(commented)) == value


@given(st.text(max_size=300))
def test_strip_json_comments_never_fails(text: str) -> None:
    out = strip_json_comments(text)
    assert len(out) <= len(text)


@pytest.mark.parametrize("bad", CONFIGS, ids=lambda b: b.name)
def test_config_table(bad: Any, tmp_path: Path) -> None:
    """Every entry of the shared bad-config table, straight at the loader."""
    base = json.dumps({"trend_kind": "sma", "trend_lookback": 48}).encode()
    path = bad.place(tmp_path / f"c_{bad.name}.json", base)
    if bad.expect == "ok":
        assert_valid_config(load_config(path))
        return
    with pytest.raises(UserError) as exc:
        load_config(path)
    assert_user_message(exc.value)
    assert (bad.needle or path.name) in str(exc.value)


# ---------------------------------------------------------------- candle loader

NASTY_CELLS = ["nan", "NaN", "inf", "-inf", "", " ", "-1", "0", "1e30", "1e400", "abc", '"', "2021-01-01",
               "3000-01-01", "1640995200000", "1640995200000000", "1640995200", "-1640995200000", "0x10",
               "1_000", "\x00", "é", "1,5"]
cells = st.one_of(st.sampled_from(NASTY_CELLS), st.floats().map(repr), st.integers(-(2**70), 2**70).map(str),
                  st.text(max_size=6))
HEADERS = [None, ",".join(BINANCE_COLUMNS), "time,open,high,low,close,volume", "open_time,open,high,low,close",
           "Date,Open,High,Low,Close,Volume", "a,b,c"]


@st.composite
def csv_like(draw: st.DrawFn) -> bytes:
    """Text shaped like a candle CSV, with arbitrary cells."""
    header = draw(st.sampled_from(HEADERS))
    rows = draw(st.lists(st.lists(cells, max_size=13), max_size=12))
    lines = ([header] if header else []) + [",".join(r) for r in rows]
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8", "surrogatepass")


@st.composite
def nearly_valid_csv(draw: st.DrawFn) -> bytes:
    """A plausible candle file with a few defects: odd steps, repeats, reordering, bad cells."""
    n = draw(st.integers(0, 40))
    steps = draw(st.lists(st.sampled_from([900_000, 900_000, 900_000, 0, 1_800_000, 60_000, -900_000, 7]),
                          min_size=n, max_size=n))
    t = 1_640_995_200_000 + np.cumsum([0, *steps[1:]]).astype(np.int64) if n else np.array([], dtype=np.int64)
    unit = draw(st.sampled_from([1, 1000, 0.001]))
    px = draw(st.lists(st.floats(1e-9, 1e9), min_size=n, max_size=n))
    rows = [[str(int(ti * unit)) if unit != 0.001 else str(ti // 1000), *[repr(p)] * 4, "1.5"]
            for ti, p in zip(t, px, strict=True)]
    for _ in range(draw(st.integers(0, 3))):
        if rows:
            i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 5))
            rows[i][j] = draw(cells)
    if draw(st.booleans()):
        rows = draw(st.permutations(rows))
    header = draw(st.sampled_from([None, "open_time,open,high,low,close,volume"]))
    return "\n".join(([header] if header else []) + [",".join(r) for r in rows]).encode("utf-8", "surrogatepass")


def check_candles_or_error(data: bytes, suffix: str = ".csv") -> None:
    with written(data, suffix) as path:
        try:
            c = load_candles(path)
        except UserError as exc:
            assert_user_message(exc)
            return
    df = c.df
    assert list(df.columns) == OHLCV and all(df[col].dtype == np.float64 for col in OHLCV)
    assert str(df.index.tz) == "UTC" and df.index.name == "open_time"
    assert df.index.is_monotonic_increasing and df.index.is_unique and len(df) >= 2
    values = df.to_numpy()
    assert np.isfinite(values).all() and (values[:, :4] > 0).all() and (values[:, 4] >= 0).all()
    assert c.interval_minutes >= 1 and c.report.rows == len(df)
    assert pd.Timestamp("1970-01-01", tz="UTC") <= df.index[0] and df.index[-1] < pd.Timestamp("2200-01-01", tz="UTC")


@given(st.binary(max_size=800))
@example(b"\xef\xbb\xbf")  # found by make soak: a BOM alone raised IndexError
def test_load_candles_on_arbitrary_bytes(data: bytes) -> None:
    check_candles_or_error(data)


@given(csv_like())
@example(b'",nan\nnan,"')  # found by make soak: a quoted header cell with a newline broke the one-line error
def test_load_candles_on_csv_like_text(data: bytes) -> None:
    check_candles_or_error(data)


@given(nearly_valid_csv())
def test_load_candles_on_nearly_valid_files(data: bytes) -> None:
    check_candles_or_error(data)


@given(json_values)
def test_load_candles_on_arbitrary_json(value: Any) -> None:
    check_candles_or_error(json.dumps(value).encode(), ".json")


@given(st.lists(st.lists(st.one_of(st.integers(-(2**65), 2**65), st.floats(), st.text(max_size=4), st.none(),
                                   st.booleans()), min_size=6, max_size=8), max_size=10))
def test_load_candles_on_freqtrade_shaped_json(rows: list[list[Any]]) -> None:
    check_candles_or_error(json.dumps(rows).encode(), ".json")


@pytest.mark.parametrize("bad", CANDLES, ids=lambda b: b.name)
def test_candle_table(bad: Any, tmp_path: Path) -> None:
    """Every entry of the shared bad-candle table, straight at the loader."""
    from ethbtc.data.sample import generate

    base = generate(200, 15, seed=7).to_csv(index=False, float_format="%.8f").encode()
    path = bad.place(tmp_path / f"d_{bad.name}{bad.suffix}", base)
    if bad.expect == "ok":
        c = load_candles(path)
        assert len(c.df) >= 100 and c.interval_minutes == 15
        return
    with pytest.raises(UserError) as exc:
        load_candles(path)
    assert_user_message(exc.value)
    assert (bad.needle or path.name) in str(exc.value)


# ---------------------------------------------------------------- valid candles, every layout

@st.composite
def candle_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(2, 60))
    minutes = draw(st.sampled_from([1, 15, 60, 1440]))
    start = draw(st.integers(1_500_000_000, 4_000_000_000)) // 60 * 60 * 1000
    keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))  # gaps (R4: reported, never invented)
    keep[0] = keep[1] = True
    t = np.array([start + i * minutes * 60_000 for i in range(n) if keep[i]], dtype=np.int64)
    assume(len(t) >= 2 and np.median(np.diff(t)) == minutes * 60_000)
    px = np.array(draw(st.lists(st.floats(1e-6, 1e6), min_size=len(t), max_size=len(t))))
    vol = np.array(draw(st.lists(st.floats(0, 1e9), min_size=len(t), max_size=len(t))))
    idx = pd.DatetimeIndex(pd.to_datetime(t, unit="ms", utc=True), name="open_time")
    return pd.DataFrame({"open": px, "high": px * 1.01, "low": px * 0.99, "close": px, "volume": vol}, index=idx)


@given(candle_frames(), st.sampled_from(["binance", "headerless", "iso", "freqtrade", "shuffled_us"]))
def test_valid_candles_load_identically_in_every_layout(df: pd.DataFrame, layout: str) -> None:
    ms = df.index.as_unit("ms").asi8
    table = df.reset_index(drop=True)
    if layout in ("binance", "headerless", "shuffled_us"):
        raw = pd.DataFrame({"open_time": ms, **{c: table[c] for c in OHLCV}, "close_time": ms + 59_999,
                            "quote_volume": 0.0, "count": 1, "taker_buy_base": 0.0, "taker_buy_quote": 0.0,
                            "ignore": 0})
        if layout == "shuffled_us":  # SPEC R2 microseconds, R4 sorted
            raw["open_time"] = raw["open_time"] * 1000
            raw = raw.iloc[::-1]
        data = raw.to_csv(index=False, header=layout != "headerless").encode()
        suffix = ".csv"
    elif layout == "iso":
        iso = pd.DataFrame({"timestamp": df.index.strftime("%Y-%m-%dT%H:%M:%SZ"), **{c: table[c] for c in OHLCV}})
        data, suffix = iso.to_csv(index=False).encode(), ".csv"
    else:
        data = json.dumps([[int(t), *map(float, row)] for t, row in zip(ms, table.to_numpy(), strict=True)]).encode()
        suffix = ".json"
    with written(data, suffix) as path:
        got = load_candles(path)
    pd.testing.assert_frame_equal(got.df, df, check_freq=False, rtol=1e-12)


def test_multibyte_character_cut_by_the_4k_sniff_is_not_an_encoding_error(tmp_path: Path) -> None:
    """The loader sniffs the first 4096 bytes; an 'é' straddling byte 4096 is still UTF-8."""
    rows = [b"open_time,open,high,low,close,volume,note\n"]
    rows += [b"%d,1,1,1,1,1,x\n" % (1_640_995_200_000 + i * 900_000) for i in range(60)]
    head = b"".join(rows)
    row = b"%d,1,1,1,1,1," % (1_640_995_200_000 + 60 * 900_000)
    note = b"a" * (4095 - len(head) - len(row)) + "é".encode()
    data = head + row + note + b"\n"
    assert data[4095:4097] == "é".encode()
    path = tmp_path / "notes.csv"
    path.write_bytes(data)
    assert len(load_candles(path).df) == 61
