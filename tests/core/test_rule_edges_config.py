"""The edges of the configuration (issue 22, survivors of ``make mutation`` over
``ethbtc/config.py``): the fee rate without a BNBBTC series (SPEC R23), the R17 range edges at
equality, and the one-line messages for bad keys (SPEC section 6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ethbtc.config import FeeParams, build_config, load_config, strip_json_comments
from ethbtc.errors import ConfigError


@pytest.mark.parametrize(("in_bnb", "rates"), [(True, (0.00075, 0.0015)), (False, (0.001, 0.002))])
def test_r23_without_a_bnb_series_the_discount_applies_exactly_when_fees_are_paid_in_bnb(
        in_bnb: bool, rates: tuple[float, float]) -> None:
    """SPEC R23: d = 1 - bnb_discount when fees are paid in BNB, else 1 (maker and taker alike)."""
    fees = FeeParams(maker_fee=0.001, taker_fee=0.002, bnb_discount=0.25, pay_fees_in_bnb=in_bnb)
    assert fees.rates_without_bnb_series() == pytest.approx(rates, rel=1e-15)


def test_a_key_with_control_characters_is_named_escaped_and_readable() -> None:
    """SPEC section 6: an unknown key is named in one line; control characters are escaped
    (never printed raw into a terminal), other characters such as accents stay as typed."""
    with pytest.raises(ConfigError) as err:
        build_config({"clé\x07": 1})
    msg = str(err.value)
    assert "'clé\\u0007'" in msg and "\n" not in msg and "\x07" not in msg


def test_parameters_from_a_trials_table_build_a_config() -> None:
    """Optimiser trial rows come back from CSV/pandas as floats and numpy scalars (192.0,
    np.int64(96)): built from a mapping, they are whole numbers and accepted; only JSON files
    are read strictly (SPEC section 6: one config flows from optimiser to backtest)."""
    cfg = build_config({"trend_lookback": 192.0, "vol_window": np.int64(96), "gate_window_days": np.float64(7.0)})
    assert (cfg.strategy.trend_lookback, cfg.strategy.vol_window, cfg.strategy.gate_window_days) == (192, 96, 7)
    assert isinstance(cfg.strategy.trend_lookback, int)


def test_comment_markers_and_escaped_quotes_inside_strings_are_text(tmp_path: Path) -> None:
    """SPEC section 6: `//` comments are accepted, but `//` and escaped quotes inside a string
    are part of the string, and everything after such a string is still read."""
    text = '{"meta": {"note": "say \\"hi\\" // not a comment", "url": "http://x"}, // a comment\n "trend_lookback": 5}'
    assert strip_json_comments(text) == text.replace("// a comment", "")
    p = tmp_path / "c.json"
    p.write_text(text)
    cfg = load_config(p)
    assert cfg.meta["note"] == 'say "hi" // not a comment' and cfg.strategy.trend_lookback == 5


def test_a_file_cut_off_after_a_backslash_in_a_string_is_one_clear_line(tmp_path: Path) -> None:
    """Bad input: a config truncated right after a backslash inside a string is invalid JSON,
    said in one line (never an IndexError traceback from the comment stripper)."""
    text = '{"meta": {"note": "C:\\'
    assert strip_json_comments(text) == text
    p = tmp_path / "cut.json"
    p.write_text(text)
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_config(p)


@pytest.mark.parametrize(("entry", "needle"), [('"trend_lookback": true', "trend_lookback"),
                                               ('"pay_fees_in_bnb": "yes"', "pay_fees_in_bnb"),
                                               ('"trend_lookback": 192.5', "trend_lookback")])
def test_a_json_file_value_of_the_wrong_type_is_refused_not_coerced(tmp_path: Path, entry: str, needle: str) -> None:
    """SPEC R17 / section 6: in a JSON file, true is not the lookback 1 and "yes" is not a
    boolean: one line naming the key, instead of a silently different strategy."""
    p = tmp_path / "c.json"
    p.write_text("{" + entry + "}")
    with pytest.raises(ConfigError, match=needle):
        load_config(p)


def test_bar_minutes_come_from_the_interval_when_not_given_directly() -> None:
    """SPEC R5: the bar length is bar_interval_minutes, else the execution interval, else unknown."""
    assert build_config({"interval": "1h"}).bar_minutes() == 60
    assert build_config({"interval": "1h", "bar_interval_minutes": 60}).bar_minutes() == 60
    assert build_config({"bar_interval_minutes": 15}).bar_minutes() == 15
    assert build_config({}).bar_minutes() is None


@pytest.mark.parametrize(("key", "shown"), [("k" * 60, "k" * 60), ("k" * 61, "k" * 57 + "..."),
                                            ('trend"look\\back', 'trend"look\\back')])
def test_an_unknown_key_is_shown_as_typed_up_to_sixty_characters(key: str, shown: str) -> None:
    """SPEC section 6: the unknown key is named as typed (quotes and backslashes are printable:
    not escaped); a key longer than 60 characters is cut to 57 and '...'."""
    with pytest.raises(ConfigError) as err:
        build_config({key: 1})
    assert f"unknown key '{shown}'" in str(err.value)


def test_the_reference_table_is_printed_by_the_module_only_when_run() -> None:
    """``python -m ethbtc.config`` prints the configuration table of docs/configuration.md; importing the module
    (every script does) prints nothing."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "ethbtc.config"], cwd=root, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("| key | section | default |") and "`trend_lookback`" in run.stdout
    imp = subprocess.run([sys.executable, "-c", "import ethbtc.config"], cwd=root, capture_output=True, text=True,
                         check=True)
    assert imp.stdout == ""


def test_a_config_stays_valid_after_creation() -> None:
    """SPEC R17: the ranges hold for the life of a config, not only when it is read: assigning an
    out-of-range value to a loaded config is refused on the spot."""
    from pydantic import ValidationError

    cfg = build_config({})
    with pytest.raises(ValidationError):
        cfg.strategy.trend_lookback = 0
    with pytest.raises(ValidationError):
        cfg.fees.maker_fee = 0.5
    assert cfg.strategy.trend_lookback == 192


def test_an_emitted_config_lists_keys_in_the_schema_order() -> None:
    """SPEC section 6: one config file flows from optimiser to live; the emitted file reads in the
    schema's order (strategy, fees, execution, risk; trend_kind first), not alphabetically."""
    import json

    data = json.loads(build_config({"basis_btc": 2.0}).to_json())
    assert list(data) == ["strategy", "fees", "execution", "risk"]
    assert list(data["strategy"])[:3] == ["trend_kind", "trend_lookback", "flip_band_entry"]


def test_r17_equal_bounds_are_allowed() -> None:
    """SPEC R17: flip_band_entry >= flip_band_exit and min_mult <= max_mult include equality
    (a fixed multiplier, bands that coincide)."""
    cfg = build_config({"min_mult": 1.0, "max_mult": 1.0, "flip_band_entry": 0.02, "flip_band_exit": 0.02})
    assert cfg.strategy.min_mult == cfg.strategy.max_mult == 1.0
    with pytest.raises(ConfigError, match="min_mult"):
        build_config({"min_mult": 1.0000001, "max_mult": 1.0})


def test_a_bad_value_is_quoted_and_a_bad_combination_is_not() -> None:
    """One line each: a value out of range names what was given; a rule between two keys names
    both keys, without dumping the whole section."""
    with pytest.raises(ConfigError) as one:
        build_config({"trend_lookback": 0})
    assert "strategy.trend_lookback" in str(one.value) and "(got 0)" in str(one.value)
    with pytest.raises(ConfigError) as two:
        build_config({"min_mult": 2.0, "max_mult": 1.0})
    assert "min_mult (2.0) must be <= max_mult (1.0)" in str(two.value) and "(got" not in str(two.value)


def test_r21_the_derived_minimum_trade_and_its_equal_floor_and_cap() -> None:
    """SPEC R21: min trade = clip(min_trade_frac x basis_btc, floor, cap); a floor equal to the cap
    is allowed (a fixed minimum)."""
    assert build_config({"basis_btc": 2.0, "min_trade_frac": 0.002}).min_trade_btc() == pytest.approx(0.004)
    fixed = build_config({"min_trade_floor_btc": 0.001, "min_trade_cap_btc": 0.001})
    assert fixed.min_trade_btc() == 0.001


def test_overrides_keep_every_other_value_and_non_finite_numbers_are_refused() -> None:
    """SPEC section 6: CLI flags override file values where given, the rest stays; NaN or inf is
    refused with the key's name (one line)."""
    cfg = build_config({"basis_btc": 2.0, "trend_kind": "roc"}).with_overrides({"trend_lookback": 50})
    assert (cfg.risk.basis_btc, cfg.strategy.trend_kind, cfg.strategy.trend_lookback) == (2.0, "roc", 50)
    assert set(cfg.flat()) >= {"trend_lookback", "maker_fee", "ttl_sec", "basis_btc"}
    with pytest.raises(ConfigError, match="flip_band_entry must be a finite number"):
        build_config({"flip_band_entry": float("nan")})


def test_a_file_ending_in_a_single_slash_is_one_clear_line(tmp_path: Path) -> None:
    """Bad input: a stray '/' as the file's last character is invalid JSON, one line."""
    p = tmp_path / "slash.json"
    p.write_text('{"trend_lookback": 5}/')
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(p)
