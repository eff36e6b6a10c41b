"""Lean evaluation, indicator cache, search spaces, the trial-seeded sampler and the robust score."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethbtc import indicators as I
from ethbtc.config import build_config
from ethbtc.data.candles import load_candles
from ethbtc.data.sample import ensure_sample
from ethbtc.errors import ConfigError, UserError
from ethbtc.research import scoring
from ethbtc.research.space import EXIT_FRAC, default_space, focus, load_space, suggest, validate
from ethbtc.research.study import TrialSeededRandomSampler, redact
from ethbtc.search import IndicatorCache, RowTable, Window, evaluate, evaluate_batch, sample


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory):
    eth, bnb = ensure_sample(tmp_path_factory.mktemp("s"), days=60)
    return load_candles(eth), load_candles(bnb)


def _bnb_px(c, bnb):
    from ethbtc.backtest import prepare_bnb

    return prepare_bnb(c, bnb)


def test_lean_summary_equals_the_backtesters_summary(sample_data):
    """SPEC R29: the optimiser's lean metrics are the backtest's metrics, for any parameters."""
    candles, bnb = sample_data
    w = Window.of(candles, _bnb_px(candles, bnb))
    rng = np.random.default_rng(3)
    risk = [{}, {"max_dd_frac": 0.05, "max_daily_loss_frac": 0.01}, {"pay_fees_in_bnb": True, "start_bnb": 0.3},
            {"risk_mode": "fixed_basis", "max_dd_frac": 0.03, "basis_btc": 2.0}]
    for i in range(12):
        cfg = build_config(sample(rng) | risk[i % len(risk)])
        lean, full = evaluate(cfg, w), evaluate(cfg, w, full=True)
        assert lean.keys() == full.keys()
        for k, v in full.items():
            if isinstance(v, float) and np.isnan(v):
                assert np.isnan(lean[k]), k
            elif isinstance(v, float):
                assert lean[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
            else:
                assert lean[k] == v, k


def test_indicator_cache_is_bounded_and_exact(sample_data):
    candles, _ = sample_data
    cache = IndicatorCache(candles.df, 15, max_mb=len(candles.df) * 8 * 20 / 1e6)  # room for ~20 series
    rng = np.random.default_rng(0)
    for _ in range(40):
        cfg = build_config(sample(rng))
        got = cache.get(cfg)
        want = I.compute(candles.df, cfg.strategy, 15)
        for name in ("ratio", "sigma", "entry", "exit", "gate", "gate_open", "mult"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert len(cache._vol) <= cache._vol.max_entries and len(cache._trend) <= cache._trend.max_entries
    assert cache._vol.max_entries < 40


def test_batched_evaluation_equals_one_by_one(sample_data):
    """The optimiser's batched compiled evaluation (many parameter sets per call, indicator
    tables shared) gives every set the same R29 metrics as evaluating it alone (SPEC R29,
    R6-R10 via the same compiled arithmetic), whatever the batch holds: BNB fees and none,
    risk breakers, repeated and new window lengths, a table too small for the batch."""
    candles, bnb = sample_data
    w_one, w_batch = Window.of(candles, _bnb_px(candles, bnb)), Window.of(candles, _bnb_px(candles, bnb), cache_mb=0.01)
    rng = np.random.default_rng(5)
    risk = [{}, {"max_dd_frac": 0.05, "max_daily_loss_frac": 0.01}, {"pay_fees_in_bnb": True, "start_bnb": 0.3},
            {"risk_mode": "fixed_basis", "max_dd_frac": 0.03, "basis_btc": 2.0}, {"pay_fees_in_bnb": False}]
    cfgs = [build_config(sample(rng) | risk[i % len(risk)]) for i in range(30)]
    cfgs += [build_config(cfgs[0].flat() | {"target_vol": 0.0, "vol_adapt_k": 0.0, "gate_window_days": 0})]
    chunks = (cfgs[:7], cfgs[7:], cfgs[3:5] * 2)
    for chunk in chunks:
        for cfg, got in zip(chunk, evaluate_batch(chunk, w_batch), strict=True):
            want = evaluate(cfg, w_one)
            for k, v in got.items():
                assert type(v) is type(want[k]), k
                if not isinstance(v, float):
                    assert v == want[k], k
                elif np.isnan(want[k]):
                    assert np.isnan(v), k
                else:
                    assert v == pytest.approx(want[k], rel=1e-12, abs=1e-14), k
    assert w_batch.tables is not None  # a bound of 0.01 MB holds one row: grown only as far as a batch needs
    assert w_batch.tables.vol.table.shape[0] <= max(len(c) for c in chunks)


def test_row_table_reuses_least_recently_used_rows_and_never_evicts_a_needed_one():
    made: list[int] = []

    def make(key: int) -> np.ndarray:
        made.append(key)
        return np.full(3, float(key))

    t = RowTable(3, 2, make)
    rows = t.rows([1, 2, 1])
    assert rows[0] == rows[2] != rows[1] and made == [1, 2]
    t.rows([3])  # full: the least recently used key (1) gives its row
    assert made == [1, 2, 3] and len(t) == 2 and t.rows([2]).tolist() == [rows[1]]
    rows = t.rows([4, 5, 6])  # a batch larger than the bound grows the table for itself
    assert sorted(t.table[rows, 0]) == [4.0, 5.0, 6.0] and len(set(rows.tolist())) == 3
    np.testing.assert_array_equal(t.table[t.rows([5])[0]], [5.0, 5.0, 5.0])


def test_search_space_file_merges_and_rejects_mistakes(tmp_path):
    f = tmp_path / "space.json"
    f.write_text(json.dumps({"trend_lookback": [50, 60], "trend_kind": "roc", "vol_adapt_k": None,
                             "cooldown_minutes": {"low": 0, "high": 600, "step": 60}}))
    s = load_space(f)
    assert (s["trend_lookback"].low, s["trend_lookback"].high) == (50, 60)
    assert s["trend_kind"].kind == "fixed" and "vol_adapt_k" not in s and s["cooldown_minutes"].step == 60
    assert s["flip_band_entry"] == default_space()["flip_band_entry"]
    for bad, needle in [({"trend_lookbak": [1, 2]}, "did you mean 'trend_lookback'"),
                        ({"vol_window": [10.5, 20]}, "integer bounds"),
                        ({"step_allocation": {"low": 0.9, "high": 0.1}}, "above high"),
                        ({"max_position": {"low": 0.1}}, "needs both low and high")]:
        f.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=needle):
            load_space(f)
    f.write_text(json.dumps({"step_allocation": [0.5, 1.5]}))
    with pytest.raises(ConfigError, match="step_allocation=1.5"):
        validate(load_space(f), build_config({}))
    f.write_text(json.dumps({"flip_band_exit": [0.02, 0.03], "flip_band_entry": [0.01, 0.05]}))
    with pytest.raises(ConfigError, match="must not exceed the lowest flip_band_entry"):
        validate(load_space(f), build_config({}))


def test_focus_narrows_ranges_around_the_config_and_fixes_choices():
    center = build_config({"trend_kind": "roc", "trend_lookback": 120, "flip_band_entry": 0.03, "target_vol": 0.3})
    s = focus(default_space(), center, 0.1)
    assert s["trend_kind"].kind == "fixed" and s["trend_kind"].value == "roc"
    assert s["target_vol"].value == 0.3
    lb = s["trend_lookback"]
    assert lb.low <= 120 <= lb.high and lb.high - lb.low <= 0.1 * 380 + 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_sampled_trials_are_never_impossible(seed):
    """exit band <= entry band, every value inside its range, and the config validates (R17)."""
    space = default_space()
    study = optuna.create_study(sampler=TrialSeededRandomSampler(seed), direction="maximize")
    base = build_config({}).flat()
    for _ in range(20):
        t = study.ask()
        p = suggest(t, space, base)
        assert 0.0 <= p["flip_band_exit"] <= p["flip_band_entry"]
        for name, d in space.items():
            if d.kind in ("int", "float"):
                assert d.low <= p[name] <= d.high, name
        build_config(base | p)
        assert EXIT_FRAC in t.params
        study.tell(t, 0.0)


def test_trial_seeded_sampler_depends_only_on_seed_and_trial_number():
    def params(seed, n, tell_between):
        study = optuna.create_study(sampler=TrialSeededRandomSampler(seed))
        out = []
        trials = [study.ask() for _ in range(n)] if not tell_between else []
        for i in range(n):
            t = trials[i] if trials else study.ask()
            out.append(suggest(t, default_space(), build_config({}).flat()))
            if tell_between:
                study.tell(t, float(i))
        return out

    a, b, c = params(5, 12, False), params(5, 12, True), params(6, 12, True)
    assert a == b
    assert a != c
    assert len({json.dumps(p, sort_keys=True) for p in a}) == 12


def test_robust_score_formula_is_relative_to_basis():
    pen = scoring.Penalties(lambda_turns=0.1, turns_scale=5, gap_penalty=0.5, lambda_fees=2.0, lambda_turnover=0.01)
    # relative: train 1.3, test 1.1, 10 turns, fees 0.02, turnover 3
    want = 1.1 - 0.1 * (10 / 5) - 0.5 * (1.3 - 1.1) - 2.0 * 0.02 - 0.01 * 3 / 100  # turnover per 100 basis
    for basis in (1.0, 0.16, 25.0):
        got = scoring.robust_score(1.3 * basis, 1.1 * basis, 10, 0.02 * basis, 3 * basis, basis, pen)
        assert got == pytest.approx(want)
    no_gap = scoring.robust_score(1.0, 1.2, 0, 0, 0, 1.0, pen)  # test beats train: no gap penalty
    assert no_gap == pytest.approx(1.2)
    with pytest.raises(UserError, match="turns-scale"):
        scoring.Penalties(turns_scale=0)


def test_selection_takes_best_robust_score_within_top_quantile_ties_fewer_turns():
    df = pd.DataFrame({
        "trial": range(6),
        "test_final_btc": [1.50, 1.40, 1.39, 1.0, 0.9, 1.40],
        "robust_score": [1.0, 1.2, 1.9, 3.0, 0.1, 1.2],  # 3 and 2 are outside the top half by test final
        "test_turns": [5, 9, 1, 1, 1, 4],
    })
    assert scoring.select_best(df, 0.5) == 5  # robust 1.2 tie with trial 1 -> fewer turns
    assert scoring.select_best(df, 1.0) == 3
    assert scoring.select_best(df, 0.01) == 0  # only the best test row survives
    with pytest.raises(UserError):
        scoring.select_best(df, 0.0)


def test_storage_urls_are_redacted():
    assert redact("postgresql://bob:s3cret@db.example:5432/optuna") == "postgresql://bob:***@db.example:5432/optuna"
    assert redact("sqlite:///out/x.db") == "sqlite:///out/x.db"
    assert redact(None) is None


def test_selection_never_picks_a_trial_without_test_turns_while_one_trades():
    """Issue 13: a trial with 0 turns in its test window holds BTC; it is not a strategy."""
    df = pd.DataFrame({
        "trial": range(4),
        "test_final_btc": [1.0, 1.0, 0.98, 1.01],
        "robust_score": [1.0, 1.0, 0.9, 0.5],
        "test_turns": [0, 0, 4, 2],
    })
    assert scoring.select_best(df, 0.2) == 3  # best trading trial, although idle ones score higher
    idle = df.assign(test_turns=0)
    assert scoring.select_best(idle, 0.2) is None
    assert scoring.select_best(idle, 0.2, allow_idle=True) == 3
    assert "--allow-no-trade" in scoring.no_trade_message(4)


def test_dominating_penalty_term_is_named_with_the_lambda_that_balances_it():
    rng = np.random.default_rng(0)
    n = 50
    df = pd.DataFrame({
        "trial": range(n), "basis_btc": 0.16, "train_final_btc": 0.16, "test_turns": 10,
        "test_final_btc": 0.16 * (1 + rng.normal(0, 0.03, n)), "test_fees_btc": 0.16 * 0.008,
        "test_turnover_btc": 0.16 * 8.0,  # 8 account-sized trades (real 15m median)
    })
    heavy = scoring.Penalties(lambda_turns=0, gap_penalty=0, lambda_fees=0, lambda_turnover=100.0)
    lines = scoring.dominance_warnings(scoring.add_scores(df, heavy), heavy, 0.5)
    assert len(lines) == 1 and lines[0].startswith("penalty term turnover (--lambda-turnover 100)")
    assert "would make it as large as that spread" in lines[0]
    manual = scoring.Penalties(2.0, 800, 0.35, 2.0, 1.0)  # the v1 manual's lambdas tip, not decide
    assert scoring.dominance_warnings(scoring.add_scores(df, manual), manual, 0.5) == []
