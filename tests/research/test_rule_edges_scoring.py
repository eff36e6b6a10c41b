"""The edges of the robust score and the pick (issue 22, survivors of ``make mutation`` over
``ethbtc/research/scoring.py``). The rules are the module's (README "Robust score"): every term
a share of ``basis_btc``; the pick comes from the trading trials within the top quantile of test
results (ties kept); a penalty term that decides alone is named with the lambda that balances it.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from ethbtc.errors import UserError
from ethbtc.research import scoring


def _frame(n: int = 6, basis: float = 0.16, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "trial": range(n), "basis_btc": basis, "train_final_btc": basis * 1.02, "test_turns": 10,
        "test_final_btc": basis * (1 + rng.normal(0, 0.03, n)), "test_fees_btc": basis * 0.008,
        "test_turnover_btc": basis * 8.0,
    })


def test_score_is_the_test_final_relative_to_basis() -> None:
    """``score`` is test_final / basis: 0.176 BTC from 0.16 is 1.1, whatever the account size."""
    df = pd.DataFrame({"trial": [0, 1], "basis_btc": [0.16, 4.0], "train_final_btc": [0.16, 4.0],
                       "test_final_btc": [0.176, 4.4], "test_turns": [2, 2], "test_fees_btc": [0.0, 0.0],
                       "test_turnover_btc": [0.0, 0.0]})
    out = scoring.add_scores(df, scoring.Penalties(0, 1, 0, 0, 0))
    assert out["score"].tolist() == pytest.approx([1.1, 1.1])
    assert out["robust_score"].tolist() == pytest.approx([1.1, 1.1])


def test_dominance_warnings_only_look_at_trading_trials() -> None:
    """Trials without a test turn are no strategy (never picked unless asked): when none trades,
    there are no top trials to compare penalties with, so no warning, however heavy a lambda."""
    heavy = scoring.Penalties(lambda_turns=0, gap_penalty=0, lambda_fees=0, lambda_turnover=100.0)
    df = scoring.add_scores(_frame(50), heavy)
    assert len(scoring.dominance_warnings(df, heavy, 0.5)) == 1
    assert scoring.dominance_warnings(df.assign(test_turns=0), heavy, 0.5) == []
    assert scoring.candidates(df.assign(test_turns=0)).empty  # the default never allows idle trials


def test_the_balancing_lambda_makes_the_term_as_large_as_the_spread() -> None:
    """The suggested lambda scales the term down to the spread of the top test results:
    lambda x spread / typical, and with it the term's median equals that spread."""
    heavy = scoring.Penalties(lambda_turns=0, gap_penalty=0, lambda_fees=0, lambda_turnover=100.0)
    df = scoring.add_scores(_frame(50), heavy)
    (line,) = scoring.dominance_warnings(df, heavy, 0.5)
    typical, times, spread, suggested = (float(x) for x in re.search(
        r"typically (\S+) among the top trials, (\d+)x the spread of their test results \((\S+)\): .*"
        r"--lambda-turnover (\S+) would", line).groups())  # type: ignore[union-attr]
    assert times == pytest.approx(typical / spread, rel=1e-2)
    assert typical == pytest.approx(100.0 * 8.0 / 100, rel=1e-3)  # 8 account-sized trades per 100, x 100
    assert suggested == pytest.approx(100.0 * spread / typical, rel=1e-2)
    assert suggested < 100.0
    balanced = scoring.Penalties(lambda_turns=0, gap_penalty=0, lambda_fees=0, lambda_turnover=suggested)
    assert scoring.penalty_frame(df, balanced)["turnover"].median() == pytest.approx(spread, rel=1e-2)
    assert math.isfinite(typical / spread)


def test_penalties_refuse_what_has_no_meaning() -> None:
    """Every lambda finite and >= 0 (0 switches a term off), the turns scale > 0."""
    scoring.Penalties(0, 1e-9, 0, 0, 0)
    for bad in ({"turns_scale": 0.0}, {"turns_scale": -1.0}, {"lambda_fees": -1e-9}, {"gap_penalty": math.inf},
                {"lambda_turns": math.nan}):
        with pytest.raises(UserError):
            scoring.Penalties(**bad)


def _two_groups(top: list[float], rest: list[float]) -> pd.DataFrame:
    finals = top + rest
    return pd.DataFrame({"trial": range(len(finals)), "basis_btc": 1.0, "train_final_btc": 1.0, "test_turns": 10,
                         "test_final_btc": finals, "test_fees_btc": 0.0, "test_turnover_btc": 0.0})


def test_the_spread_is_that_of_the_top_trials_from_three_on() -> None:
    """The spread a term is compared with is that of the top-quantile trading trials when there
    are at least three of them (exactly three here); only fewer fall back to all trading trials."""
    pen = scoring.Penalties(lambda_turns=0.02, turns_scale=10, gap_penalty=0, lambda_fees=0, lambda_turnover=0)
    df = scoring.add_scores(_two_groups([1.100, 1.101, 1.102], [0.5, 0.7, 0.9]), pen)  # turns term 0.02
    lines = scoring.dominance_warnings(df, pen, 0.5)  # top 3: spread 0.0008 -> the term decides alone
    assert len(lines) == 1 and lines[0].startswith("penalty term turns (--lambda-turns 0.02)")
    assert scoring.dominance_warnings(df, pen, 0.3) == []  # top 2 -> all six: spread 0.22, no warning


def test_no_spread_means_no_warning() -> None:
    """Top trials with identical test results have no spread to compare with: no warning (no
    division by zero, and no "45035996273704960x" from the float noise of six equal results)."""
    pen = scoring.Penalties(lambda_turns=1.0, turns_scale=1, gap_penalty=0, lambda_fees=0, lambda_turnover=0)
    df = scoring.add_scores(_two_groups([1.1, 1.1, 1.1], [1.1, 1.1, 1.1]), pen)
    assert scoring.dominance_warnings(df, pen, 0.5) == []
    assert scoring.dominance_warnings(df.head(2), pen, 0.5) == []  # fewer than three trading trials


def test_a_full_tie_goes_to_the_lower_trial_number() -> None:
    """Equal robust score and equal test turns: the lower trial number is picked (a rerun of the
    same study picks the same trial), whatever the row order."""
    df = pd.DataFrame({"trial": [7, 3, 5], "test_final_btc": [1.2, 1.2, 1.2], "robust_score": [1.1, 1.1, 1.1],
                       "test_turns": [4, 4, 4]}, index=[10, 11, 12])
    assert scoring.select_best(df, 1.0) == 11
    assert scoring.select_best(df.iloc[::-1], 1.0) == 11
    assert scoring.select_best(df.assign(test_turns=[4, 4, 3]), 1.0) == 12  # fewer turns first


def test_a_term_exactly_ten_times_the_spread_decides_alone() -> None:
    """The dominance line is drawn at DOMINANCE (10) x the spread, inclusive: finals 1.0/1.5
    (spread exactly 0.25) and a turns term of exactly 2.5 warn; a hair below does not."""
    assert scoring.DOMINANCE == 10.0
    df = _two_groups([1.0, 1.0, 1.5, 1.5], []).assign(test_turns=1)
    at = scoring.Penalties(lambda_turns=2.5, turns_scale=1, gap_penalty=0, lambda_fees=0, lambda_turnover=0)
    below = scoring.Penalties(lambda_turns=2.4999999, turns_scale=1, gap_penalty=0, lambda_fees=0, lambda_turnover=0)
    assert len(scoring.dominance_warnings(scoring.add_scores(df, at), at, 1.0)) == 1
    assert scoring.dominance_warnings(scoring.add_scores(df, below), below, 1.0) == []


def test_penalties_cannot_be_changed_after_validation() -> None:
    """Checked once on creation, so immutable: a negative lambda cannot be assigned later."""
    import dataclasses

    pen = scoring.Penalties()
    with pytest.raises(dataclasses.FrozenInstanceError):
        pen.lambda_fees = -1.0  # type: ignore[misc]
    assert pen.as_dict()["lambda_fees"] == 0.5


def test_three_trading_trials_are_enough_to_warn() -> None:
    """A spread needs at least three trading trials: with exactly three a dominating term is
    named; with two there is no warning."""
    pen = scoring.Penalties(lambda_turns=5.0, turns_scale=1, gap_penalty=0, lambda_fees=0, lambda_turnover=0)
    three = scoring.add_scores(_two_groups([1.0, 1.1, 1.2], []), pen)
    assert len(scoring.dominance_warnings(three, pen, 1.0)) == 1
    assert scoring.dominance_warnings(three.head(2), pen, 1.0) == []
