"""Overfitting diagnostics: probability of backtest overfitting (PBO) via combinatorially
symmetric cross-validation (CSCV), and the deflated Sharpe ratio (DSR).

Both after Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting"
(2015) and Bailey & López de Prado, "The Deflated Sharpe Ratio" (2014).

CSCV: the T x N matrix of per-period returns of N candidate configurations is cut into S
contiguous blocks. For every way of choosing S/2 blocks as in-sample (IS), the candidate
with the best IS Sharpe ratio is located in the out-of-sample (OOS) ranking of the other
half: relative rank w = rank/(N+1), logit = ln(w/(1-w)). PBO is the share of splits whose
logit is <= 0, i.e. where the IS winner lands in the bottom half OOS. PBO near 0: the
selection generalises; near 0.5 or above: picking the best backtest is no better than
picking at random.

DSR: the probability that the pick's true Sharpe ratio exceeds the maximum Sharpe expected
from N independent trials of pure noise with the observed variance of trial Sharpe ratios,
allowing for the skewness and kurtosis of the pick's returns and the sample length.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..config import Config
from ..data.candles import Candles
from ..errors import UserError
from ..search import Window, wealth_path

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


@dataclass
class PboResult:
    pbo: float
    logits: np.ndarray
    n_splits: int
    n_combinations: int
    n_candidates: int
    n_periods: int
    prob_oos_loss: float  # share of splits where the IS winner has a negative OOS Sharpe
    median_logit: float


def _block_stats(returns: np.ndarray, n_splits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blocks = np.array_split(np.arange(returns.shape[0]), n_splits)
    s1 = np.stack([returns[b].sum(axis=0) for b in blocks])  # S x N
    s2 = np.stack([(returns[b] ** 2).sum(axis=0) for b in blocks])
    cnt = np.array([len(b) for b in blocks], dtype=float)
    return s1, s2, cnt


def _sharpe_from_sums(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    n = n[:, None]
    mean = s1 / n
    var = np.maximum(s2 - s1 * mean, 0.0) / np.maximum(n - 1, 1)
    sd = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 0, mean / sd, 0.0)
    return out


def cscv_pbo(returns: np.ndarray, n_splits: int = 16, max_combinations: int = 20_000, seed: int = 0) -> PboResult:
    """PBO of choosing the best-Sharpe column of ``returns`` (T periods x N candidates)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[1] < 2:
        raise UserError("PBO needs at least two candidate configurations")
    if n_splits < 2 or n_splits % 2:
        raise UserError(f"--pbo-splits must be an even number >= 2, got {n_splits}")
    if r.shape[0] < 2 * n_splits:
        raise UserError(f"PBO needs at least {2 * n_splits} periods for {n_splits} splits, got {r.shape[0]}")
    r = np.nan_to_num(r)
    s1, s2, cnt = _block_stats(r, n_splits)
    combos = list(itertools.combinations(range(n_splits), n_splits // 2))
    if len(combos) > max_combinations:
        pick = np.random.default_rng(seed).choice(len(combos), max_combinations, replace=False)
        combos = [combos[i] for i in sorted(pick)]
    mask = np.zeros((len(combos), n_splits))
    for i, c in enumerate(combos):
        mask[i, list(c)] = 1.0
    is_sr = _sharpe_from_sums(mask @ s1, mask @ s2, mask @ cnt)
    oos = 1.0 - mask
    oos_sr = _sharpe_from_sums(oos @ s1, oos @ s2, oos @ cnt)
    best = is_sr.argmax(axis=1)
    n_cand = r.shape[1]
    chosen = oos_sr[np.arange(len(combos)), best]
    rank = (oos_sr < chosen[:, None]).sum(axis=1) + 0.5 * ((oos_sr == chosen[:, None]).sum(axis=1) - 1) + 1
    w = rank / (n_cand + 1)
    logits = np.log(w / (1 - w))
    return PboResult(
        pbo=float((logits <= 0).mean()), logits=logits, n_splits=n_splits, n_combinations=len(combos),
        n_candidates=n_cand, n_periods=r.shape[0], prob_oos_loss=float((chosen < 0).mean()),
        median_logit=float(np.median(logits)),
    )


@dataclass
class DsrResult:
    sharpe: float  # per period
    sharpe_annual: float
    sr0: float  # expected maximum Sharpe of n_trials noise trials (per period)
    dsr: float  # probability the true Sharpe exceeds sr0
    skew: float
    kurtosis: float  # not excess (normal = 3)
    n_periods: int
    n_trials: int


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """E[max SR] of ``n_trials`` independent zero-mean trials with variance ``sr_variance``."""
    if n_trials < 2:
        return 0.0
    return math.sqrt(max(sr_variance, 0.0)) * (
        (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials) + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n_trials * math.e)))


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray, n_trials: int, periods_per_year: float) -> DsrResult:
    """DSR of the pick's per-period ``returns`` given the per-period Sharpe ratios of the trials."""
    x = np.asarray(returns, dtype=float)
    x = x[np.isfinite(x)]
    t = len(x)
    if t < 3:
        raise UserError("deflated Sharpe needs at least 3 return periods")
    sd = x.std(ddof=1)
    sr = float(x.mean() / sd) if sd > 0 else 0.0
    z = (x - x.mean()) / (x.std(ddof=0) or 1.0)
    skew, kurt = float((z**3).mean()), float((z**4).mean())
    ts = np.asarray(trial_sharpes, dtype=float)
    ts = ts[np.isfinite(ts)]
    var = float(ts.var(ddof=1)) if len(ts) > 1 else 0.0
    sr0 = expected_max_sharpe(var, n_trials)
    dsr = probabilistic_sharpe(sr, sr0, t, skew, kurt)
    return DsrResult(sr, sr * math.sqrt(periods_per_year), sr0, dsr, skew, kurt, t, n_trials)


def probabilistic_sharpe(sr: float, sr_benchmark: float, t: int, skew: float, kurt: float) -> float:
    """P(true Sharpe > benchmark) for an observed per-period Sharpe over ``t`` periods (PSR);
    with the benchmark set to the expected maximum of the trials this is the DSR."""
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if denom <= 0 or t < 2:
        return float("nan")
    return float(_N.cdf((sr - sr_benchmark) * math.sqrt(t - 1) / math.sqrt(denom)))


def daily_returns(index: pd.DatetimeIndex, wealth: np.ndarray) -> pd.Series:
    """Log returns of the last wealth of each UTC day (days without bars are skipped)."""
    s = pd.Series(wealth, index=index)
    daily = s.groupby(index.floor("D")).last()
    return np.log(daily).diff().dropna()


def daily_return_matrix(configs: list[Config], candles: Candles, bnb_px: np.ndarray | None = None) -> pd.DataFrame:
    """Daily log returns (rows: UTC days) of each configuration run over ``candles``."""
    window = Window.of(candles, bnb_px, cache_mb=64)
    cols = {i: daily_returns(candles.df.index, wealth_path(cfg, window)) for i, cfg in enumerate(configs)}
    return pd.DataFrame(cols)
