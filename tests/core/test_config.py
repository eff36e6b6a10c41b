"""SPEC §6 configuration and R17 validation, R21 minimum trade resolution."""

import json

import pytest

from ethbtc.config import build_config, load_config, strip_json_comments
from ethbtc.errors import ConfigError


def test_example_configs_load(root):
    nested = load_config(root / "configs/prod_live.json")
    flat = load_config(root / "configs/selected_params_15m_final.json")
    assert nested.strategy.trend_kind == flat.strategy.trend_kind == "roc"
    assert nested.execution.interval == "15m" and nested.bar_minutes() == 15
    assert flat.fees.pay_fees_in_bnb is True and flat.execution.min_trade_btc is None


def test_flat_nested_and_params_shapes_are_equivalent():
    flat = build_config({"trend_lookback": 50, "maker_fee": 0.0002, "basis_btc": 2.0})
    nested = build_config({"strategy": {"trend_lookback": 50}, "fees": {"maker_fee": 0.0002}, "risk": {"basis_btc": 2.0}})
    params = build_config({"params": {"trend_lookback": 50}, "maker_fee": 0.0002, "basis_btc": 2.0})
    assert flat.flat() == nested.flat() == params.flat()


def test_comments_bom_and_urls_in_strings(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('\ufeff// head\n{"trend_kind": "sma", // trailing\n "meta": {"url": "http://x//y"}}', encoding="utf-8")
    cfg = load_config(p)
    assert cfg.meta["url"] == "http://x//y"
    assert strip_json_comments('{"a": "//no"} // yes') == '{"a": "//no"} '


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"trend_lookbak": 5}, "did you mean 'trend_lookback'"),
        ({"strategy": {"maker_fee": 0.001}}, "belongs in section 'fees'"),
        ({"trend_lookback": 0}, "strategy.trend_lookback"),  # R17 lookback >= 1
        ({"vol_window": 1}, "strategy.vol_window"),  # R17 vol_window >= 2
        ({"flip_band_entry": 0.01, "flip_band_exit": 0.02}, "flip_band_entry"),  # R17 entry >= exit
        ({"step_allocation": 0}, "step_allocation"),
        ({"max_position": 1.5}, "max_position"),
        ({"min_mult": 2, "max_mult": 1}, "min_mult"),
        ({"cooldown_minutes": -1}, "cooldown_minutes"),
        ({"taker_fee": 0.02}, "fees.taker_fee"),  # R17 fees in [0, 0.01]
        ({"maker_fee": "cheap"}, "fees.maker_fee"),
        ({"risk_mode": "yolo"}, "risk.risk_mode"),
        ({"interval": "15m", "bar_interval_minutes": 60}, "disagrees"),
        ({"trend_lookback": 3, "strategy": {"trend_lookback": 4}}, "given twice"),
        ({"strategy": [1]}, "must be an object"),
    ],
)
def test_invalid_configs_name_the_key(data, needle):
    with pytest.raises(ConfigError) as exc:
        build_config(data)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_bad_files(tmp_path):
    p = tmp_path / "c.json"
    p.write_text("{ not json")
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_config(p)
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level must be a JSON object"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")


def test_overrides_win_and_none_means_not_given():
    cfg = build_config({"trend_lookback": 10}, {"trend_lookback": 20, "flip_band_exit": None})
    assert cfg.strategy.trend_lookback == 20
    with pytest.raises(ConfigError, match="unknown key 'trend'"):
        build_config({}, {"trend": 3})


def test_min_trade_resolution_r21():
    assert build_config({"min_trade_btc": 0.005}).min_trade_btc() == 0.005
    base = {"basis_btc": 1.0, "min_trade_floor_btc": 0.0002, "min_trade_cap_btc": 0.002}
    assert build_config(base | {"min_trade_frac": 0.001}).min_trade_btc() == pytest.approx(0.001)
    assert build_config(base | {"min_trade_frac": 0.00001}).min_trade_btc() == 0.0002  # floor
    assert build_config(base | {"min_trade_frac": 0.5}).min_trade_btc() == 0.002  # cap


def test_to_json_round_trips(tmp_path):
    cfg = build_config({"trend_kind": "roc", "basis_btc": 0.3, "interval": "1h"})
    cfg.meta["source"] = "test"
    p = tmp_path / "out.json"
    p.write_text(cfg.to_json())
    again = load_config(p)
    assert again.flat() == cfg.flat() and again.meta == {"source": "test"}
    assert json.loads(p.read_text())["strategy"]["trend_kind"] == "roc"


def test_readme_config_reference_is_generated_from_schema(root):
    from ethbtc.config import reference_markdown

    text = (root / "docs" / "configuration.md").read_text()
    block = text.split("<!-- config-reference:start -->\n")[1].split("<!-- config-reference:end -->")[0]
    assert block == reference_markdown(), "docs/configuration.md reference is stale: paste the output of python -m ethbtc.config"
