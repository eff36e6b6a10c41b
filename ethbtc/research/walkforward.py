"""Walk-forward analysis: rolling folds, re-optimisation per fold, stitched out-of-sample equity.

Fold k trains on ``[start + k*step, + train_days)`` and is tested on the following
``test_days``. Inside the training period the optimiser fits on the first part and scores
(robust score) on the last ``val_frac`` -- the fold's test bars are never seen by the
search or the selection. The selected configuration then runs on the test period; its run
starts ``warmup`` bars earlier (past data only) so the indicators are defined on the first
test bar, and only the test bars count. Segments are chained into one OOS equity curve.
Each fold's top-k families "survive" that fold; the pick is the family surviving most folds
(ties: better mean in-sample rank), represented by its member closest to the median.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..backtest import prepare_bnb
from ..config import Config, build_config
from ..data.candles import Candles
from ..errors import UserError
from ..search import Window, wealth_path
from ..strategy import EthBtcStrategy
from .families import FamilyPenalties, FamilyRules, add_family_keys, rank_families
from .runner import Job, run_job
from .trials import row_params

MS = pd.Timedelta(milliseconds=1)


@dataclass(frozen=True)
class Fold:
    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # exclusive; equals test_start
    test_start: pd.Timestamp
    test_end: pd.Timestamp  # exclusive

    def fit_and_validation(self, val_frac: float) -> tuple[tuple[str, str], tuple[str, str]]:
        """Inclusive ISO spans of the fit and validation parts of the training period."""
        cut = self.train_start + (self.train_end - self.train_start) * (1 - val_frac)
        cut = cut.floor("min")
        return (iso(self.train_start), iso(cut - MS)), (iso(cut), iso(self.train_end - MS))


def iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def make_folds(first: pd.Timestamp, last_close: pd.Timestamp, train_days: float, test_days: float,
               step_days: float) -> list[Fold]:
    """Rolling folds inside [first, last_close); the last test window must fit entirely."""
    if train_days <= 0 or test_days <= 0 or step_days <= 0:
        raise UserError("--train-days, --test-days and --step-days must be positive")
    start = first.ceil("D") if first != first.floor("D") else first
    tr, te, st = pd.Timedelta(days=train_days), pd.Timedelta(days=test_days), pd.Timedelta(days=step_days)
    folds = []
    k = 0
    while start + k * st + tr + te <= last_close:
        a = start + k * st
        folds.append(Fold(k, a, a + tr, a + tr, a + tr + te))
        k += 1
    if not folds:
        span = (last_close - first) / pd.Timedelta(days=1)
        raise UserError(f"no walk-forward fold fits: the data spans {span:.0f} days but one fold needs "
                        f"{train_days:g} + {test_days:g} days")
    return folds


@dataclass
class FoldResult:
    fold: Fold
    best: pd.Series
    trials: pd.DataFrame  # with family keys
    survivors: pd.DataFrame  # top-k families of this fold
    oos: pd.Series  # wealth over the test bars, relative to the wealth before the first test bar
    oos_summary: dict[str, float]


def oos_segment(cfg: Config, candles: Candles, fold: Fold, bnb: Candles | None = None) -> pd.Series:
    """Wealth path of ``cfg`` over the fold's test bars, normalised to 1 before the first one."""
    warm = EthBtcStrategy(cfg, candles.interval_minutes).warmup_bars()
    df = candles.df
    i0 = int(df.index.searchsorted(fold.test_start))
    i1 = int(df.index.searchsorted(fold.test_end))
    if i1 - i0 < 1:
        raise UserError(f"fold {fold.index}: no bars in its test window")
    lo = max(0, i0 - warm)
    sub = Candles(df.iloc[lo:i1], candles.interval_minutes, candles.report)
    bnb_px = prepare_bnb(sub, bnb) if bnb is not None and cfg.fees.pay_fees_in_bnb else None
    w = wealth_path(cfg, Window.of(sub, bnb_px, cache_mb=8))
    j = i0 - lo
    start_w = w[j - 1] if j > 0 else cfg.risk.basis_btc
    return pd.Series(w[j:] / start_w, index=df.index[i0:i1])


@dataclass
class WalkForward:
    folds: list[FoldResult]
    families: pd.DataFrame  # survival table, best first
    pick_family: str
    equity: pd.Series  # stitched OOS equity (starts at 1)
    interrupted: bool = False  # Ctrl-C: only the first folds were run


def run_walk_forward(job: Job, folds: list[Fold], val_frac: float, rules: FamilyRules, fam_pen: FamilyPenalties,
                     top_k: int, min_members: int = 1) -> WalkForward:
    """``job`` supplies data, space, penalties and search settings; its spans are replaced per fold."""
    if not 0 < val_frac < 1:
        raise UserError(f"--val-frac must be in (0, 1), got {val_frac}")
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    results: list[FoldResult] = []
    for fold in folds:
        fit, val = fold.fit_and_validation(val_frac)
        print(f"fold {fold.index}: fit {fit[0][:10]}..{fit[1][:10]}  validate {val[0][:10]}..{val[1][:10]}  "
              f"test {iso(fold.test_start)[:10]}..{iso(fold.test_end - MS)[:10]}", file=sys.stderr, flush=True)
        # a fold where no trial trades on validation holds BTC in its test period: an honest
        # out-of-sample outcome, said in one line (the final pick is checked by wf_pick)
        res = run_job(replace(job, spans={"train": fit, "test": val}, storage=None, study_name=None,
                              allow_idle=True))
        if res.idle:
            print(f"fold {fold.index}: no trial trades on validation; the fold holds BTC", file=sys.stderr)
        if res.best is None:
            if res.interrupted and results:
                break
            raise UserError(f"fold {fold.index}: no completed trials" + (" (interrupted)" if res.interrupted else ""))
        trials = add_family_keys(res.frame.assign(run=f"fold{fold.index}"), rules)
        ranked = rank_families(trials, fam_pen, 1, min_members > 1)
        cfg = build_config(job.base.flat() | row_params(res.best))
        seg = oos_segment(cfg, job.candles, fold, job.bnb)
        results.append(FoldResult(fold, res.best, trials, ranked.head(top_k), seg, _seg_summary(seg, job.candles)))
        if res.interrupted:
            print(f"interrupted: walk-forward stops after fold {fold.index}", file=sys.stderr)
            break
    families = survival_table(results)
    return WalkForward(results, families, str(families.iloc[0]["family"]), stitch([r.oos for r in results]),
                       interrupted=len(results) < len(folds))


def _seg_summary(seg: pd.Series, candles: Candles) -> dict[str, float]:
    eth = float(candles.df["close"].loc[seg.index[-1]] / candles.df["open"].loc[seg.index[0]])
    return {"oos_return": float(seg.iloc[-1] - 1.0), "eth_hodl_return": eth - 1.0,
            "oos_max_drawdown": float((1 - seg / seg.cummax()).max())}


def survival_table(results: list[FoldResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        for rank, fam in enumerate(r.survivors.itertuples()):
            rows.append({"family": fam.family, "fold": r.fold.index, "rank": rank, "family_score": fam.family_score,
                         "members": fam.members})
    t = pd.DataFrame(rows)
    g = t.groupby("family")
    out = pd.DataFrame({"folds_survived": g["fold"].nunique(), "folds": g["fold"].apply(lambda s: " ".join(map(str, s))),
                        "mean_rank": g["rank"].mean(), "mean_family_score": g["family_score"].mean(),
                        "members": g["members"].sum()})
    out = out.sort_values(["folds_survived", "mean_rank", "mean_family_score"], ascending=[False, True, False])
    return out.reset_index()


def stitch(segments: list[pd.Series]) -> pd.Series:
    """Chain per-fold relative wealth paths into one equity curve starting at 1."""
    level = 1.0
    parts = []
    for s in segments:
        parts.append(s * level)
        level *= float(s.iloc[-1])
    eq = pd.concat(parts)
    return eq[~eq.index.duplicated(keep="first")]


def eth_hodl_stitched(wf: WalkForward, candles: Candles) -> pd.Series:
    """Holding ETH over the same test bars, chained fold by fold like :func:`stitch` (starts at 1
    before the first test bar: bought at each fold's first open)."""
    df = candles.df
    parts = []
    for r in wf.folds:
        idx = r.oos.index
        parts.append(pd.Series(df["close"].loc[idx].to_numpy() / float(df["open"].loc[idx[0]]), index=idx))
    return stitch(parts)


def all_members(wf: WalkForward) -> pd.DataFrame:
    return pd.concat([r.trials for r in wf.folds], ignore_index=True)


def oos_stats(wf: WalkForward) -> dict[str, float | str]:
    """Stitched OOS figures against holding BTC (1.0) and holding ETH over the same test bars."""
    eq = wf.equity
    eth = float(np.prod([1 + r.oos_summary["eth_hodl_return"] for r in wf.folds]))
    daily = np.log(eq.groupby(eq.index.floor("D")).last()).diff().dropna()
    sd = daily.std(ddof=1)
    return {"oos_final": float(eq.iloc[-1]), "oos_return": float(eq.iloc[-1] - 1), "eth_hodl_return": eth - 1,
            "oos_max_drawdown": float((1 - eq / eq.cummax()).max()),
            "oos_sharpe": float(daily.mean() / sd * np.sqrt(365)) if sd > 0 else float("nan"),
            "oos_start": str(eq.index[0]), "oos_end": str(eq.index[-1]), "folds": len(wf.folds)}
