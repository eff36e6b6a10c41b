"""PBO via CSCV and the deflated Sharpe ratio (Bailey & López de Prado)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethbtc.errors import UserError
from ethbtc.research import overfit as O


def test_pbo_of_pure_noise_is_about_one_half():
    """Picking the best of N noise strategies is a coin flip out of sample."""
    rng = np.random.default_rng(1)
    pbos = [O.cscv_pbo(rng.normal(0, 0.01, (600, 20)), n_splits=10).pbo for _ in range(6)]
    assert 0.3 < np.mean(pbos) < 0.7


def test_pbo_of_a_real_edge_is_near_zero():
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.01, (600, 20))
    r[:, 7] += 0.004  # a persistent edge of 0.4 sd per period
    res = O.cscv_pbo(r, n_splits=10)
    assert res.pbo < 0.05 and res.median_logit > 1
    assert res.n_combinations == 252 and res.n_candidates == 20


def test_pbo_detects_anti_persistent_selection():
    """Candidates that shine in some blocks and fail in the others: the IS winner loses OOS."""
    rng = np.random.default_rng(3)
    t, n, s = 640, 16, 8
    r = rng.normal(0, 0.01, (t, n))
    block = t // s
    for j in range(n):
        good = rng.choice(s, s // 2, replace=False)
        for b in range(s):
            r[b * block:(b + 1) * block, j] += 0.006 if b in good else -0.006
    assert O.cscv_pbo(r, n_splits=s).pbo > 0.6


def test_pbo_rejects_bad_shapes():
    with pytest.raises(UserError, match="even"):
        O.cscv_pbo(np.zeros((100, 3)), n_splits=5)
    with pytest.raises(UserError, match="at least two"):
        O.cscv_pbo(np.zeros((100, 1)))
    with pytest.raises(UserError, match="at least 32 periods"):
        O.cscv_pbo(np.zeros((20, 3)), n_splits=16)


def test_deflated_sharpe_matches_the_papers_numerical_example():
    """Bailey & López de Prado (2014): annual SR 2.5 over 1250 days, 100 trials, V[SR] = 0.5/yr,
    skew -3, kurtosis 10 -> E[max SR] = 0.1132 per day, DSR = 0.9004."""
    sr0 = O.expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=2e-4)
    assert O.probabilistic_sharpe(2.5 / np.sqrt(250), sr0, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=1e-3)


def test_expected_max_sharpe_agrees_with_monte_carlo():
    rng = np.random.default_rng(4)
    for n in (10, 100, 1000):
        mc = rng.standard_normal((4000, n)).max(axis=1).mean()
        assert O.expected_max_sharpe(1.0, n) == pytest.approx(mc, rel=0.05)


def test_more_trials_deflate_more():
    rng = np.random.default_rng(5)
    pick = rng.normal(0.001, 0.01, 1000)
    trials = rng.normal(0.0, 0.03, 50)
    d = [O.deflated_sharpe(pick, trials, n, 365).dsr for n in (2, 10, 100, 1000)]
    assert d == sorted(d, reverse=True) and d[0] > d[-1]


def test_daily_returns_use_the_last_bar_of_each_day():
    idx = pd.date_range("2024-01-01", periods=96 * 3, freq="15min", tz="UTC")
    w = np.concatenate([np.full(96, 1.0), np.full(96, 2.0), np.full(96, 1.0)])
    w[95] = 1.5  # last bar of day 1
    r = O.daily_returns(idx, w)
    np.testing.assert_allclose(r.to_numpy(), [np.log(2 / 1.5), np.log(1 / 2)])
