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


def test_split_sharpe_is_mean_over_sample_sd_from_the_block_sums():
    """CSCV ranks candidates by each half's Sharpe, rebuilt from per-block sums: mean / sd with
    ddof 1 (a scale on the sd would change which candidate wins when the sds differ)."""
    x = np.array([[0.01, 0.03], [0.03, -0.01], [0.02, 0.05]])  # 3 periods x 2 candidates
    got = O._sharpe_from_sums(x.sum(axis=0)[None, :], (x**2).sum(axis=0)[None, :], np.array([3.0]))
    want = x.mean(axis=0) / x.std(axis=0, ddof=1)
    assert got[0] == pytest.approx(want, rel=1e-12)


def test_sampled_combinations_are_distinct():
    """CSCV with more splits than ``max_combinations`` allows samples combinations WITHOUT
    replacement: 69 of C(8,4) = 70 leave out exactly one, so their logits are the full run's
    logits less one (a sample with replacement repeats some and misses several)."""
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.01, (160, 6))
    full = O.cscv_pbo(r, n_splits=8)
    part = O.cscv_pbo(r, n_splits=8, max_combinations=69, seed=3)
    assert full.n_combinations == 70 and part.n_combinations == 69
    key = lambda v: round(float(v), 9)  # noqa: E731 -- same combination, same sums, same logit
    left = sorted(map(key, full.logits))
    for v in map(key, part.logits):
        left.remove(v)  # ValueError: a logit drawn twice (or one the full run does not have)
    assert len(left) == 1


def test_expected_max_sharpe_starts_at_two_trials():
    """E[max SR] is 0 for one trial (no choice was made) and the formula from two on:
    (1 - g) z(1 - 1/N) + g z(1 - 1/(N e)) times the trials' Sharpe sd."""
    from statistics import NormalDist

    g, z = 0.5772156649015329, NormalDist().inv_cdf
    assert O.expected_max_sharpe(4.0, 1) == 0.0
    assert O.expected_max_sharpe(4.0, 2) == pytest.approx(2 * ((1 - g) * z(0.5) + g * z(1 - 1 / (2 * np.e))),
                                                          rel=1e-12)
    assert O.expected_max_sharpe(4.0, 2) > 0


def test_deflated_sharpe_accepts_exactly_three_periods():
    """Three return periods are the minimum the DSR needs (sd with ddof 1 and the moments); two are refused."""
    res = O.deflated_sharpe(np.array([0.01, -0.02, 0.04]), np.array([0.0, 0.1, -0.1]), 3, 365.0)
    assert res.n_periods == 3 and np.isfinite(res.sharpe)
    with pytest.raises(UserError, match="at least 3"):
        O.deflated_sharpe(np.array([0.01, -0.02]), np.array([0.0, 0.1, -0.1]), 3, 365.0)
