"""Robust score of a trial and the selection rule shared by the optimisers.

Every term is a share of the account (BTC figures divided by ``basis_btc``), so the lambdas
do not depend on the account size and are comparable with the test result itself (a test
final of 1.08 means +8 % in BTC)::

    robust = test_final - lambda_turns * (test_turns / turns_scale)
             - gap_penalty * max(0, train_final - test_final)
             - lambda_fees * test_fees - lambda_turnover * test_turnover / TURNOVER_UNIT

Units: ``test_fees`` is fees / basis (0.01 = 1 % of the account paid in fees);
``test_turnover`` is traded notional / basis, counted per ``TURNOVER_UNIT`` (100) account-sized
trades -- a strategy that swaps the whole account back and forth 8 times in the window has
turnover 16, so ``--lambda-turnover 1`` costs it 0.16 x ... / 100 = 0.16 % (an early version
charged the raw 16, which outweighed every return difference and made the pick a trial that
never trades). Costs (turns, fees, turnover) are those of the test window. ``score`` is the
plain ``test_final`` (relative).

Selection: a trial without a turn in its test window holds BTC; it is no strategy and is
never picked while any trial trades. Among the trading trials, keep the
ceil(top_quantile x n) with the best ``test_final_btc`` (ties kept), take the best robust
score; ties go to fewer test turns, then the lower trial number. When no trial trades there
is no pick unless the caller allows an idle one (``--allow-no-trade``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy/pandas are imported where used (the flag defaults here feed --help)
    import pandas as pd

from ..errors import UserError

TURNOVER_UNIT = 100.0  # turnover is counted in hundreds of account-sized trades (see module docstring)
DOMINANCE = 10.0  # a penalty term typically this many times the spread of the top results decides alone
SPREAD_NOISE = 1e-12  # a spread of relative test results below this is float rounding: equal results


@dataclass(frozen=True)
class Penalties:
    lambda_turns: float = 0.01
    turns_scale: float = 10.0
    gap_penalty: float = 0.25
    lambda_fees: float = 0.5
    lambda_turnover: float = 0.0

    def __post_init__(self) -> None:
        if self.turns_scale <= 0:
            raise UserError(f"--turns-scale must be positive, got {self.turns_scale}")
        for name, v in asdict(self).items():
            if not math.isfinite(v) or v < 0:
                raise UserError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def penalty_terms(train_final: Any, test_final: Any, test_turns: Any, test_fees: Any, test_turnover: Any,
                  basis: Any, pen: Penalties) -> dict[str, Any]:
    """The four penalties the robust score subtracts from the relative test final (same units)."""
    import numpy as np

    tr, te = np.divide(train_final, basis), np.divide(test_final, basis)
    return {"turns": pen.lambda_turns * (np.asarray(test_turns, dtype=float) / pen.turns_scale),
            "train/test gap": pen.gap_penalty * np.maximum(0.0, tr - te),
            "fees": pen.lambda_fees * np.divide(test_fees, basis),
            "turnover": pen.lambda_turnover * np.divide(test_turnover, basis) / TURNOVER_UNIT}


def robust_score(train_final: Any, test_final: Any, test_turns: Any, test_fees: Any, test_turnover: Any,
                 basis: Any, pen: Penalties) -> Any:
    """Robust score (scalars or arrays); BTC inputs are absolute and divided by ``basis`` here."""
    import numpy as np

    t = penalty_terms(train_final, test_final, test_turns, test_fees, test_turnover, basis, pen)
    return np.divide(test_final, basis) - t["turns"] - t["train/test gap"] - t["fees"] - t["turnover"]


def penalty_frame(df: pd.DataFrame, pen: Penalties) -> pd.DataFrame:
    """One column per penalty term for scored trial rows (the report's penalty picture)."""
    import numpy as np
    import pandas as pd

    t = penalty_terms(df["train_final_btc"], df["test_final_btc"], df["test_turns"], df["test_fees_btc"],
                      df["test_turnover_btc"], df["basis_btc"], pen)
    return pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in t.items()}, index=df.index)


def score_metrics(metrics: dict[str, float], basis: float, pen: Penalties) -> float:
    """Robust score of one trial's metrics dict (``train_final_btc``, ``test_*`` keys)."""
    return float(robust_score(metrics["train_final_btc"], metrics["test_final_btc"], metrics["test_turns"],
                              metrics["test_fees_btc"], metrics["test_turnover_btc"], basis, pen))


def add_scores(df: pd.DataFrame, pen: Penalties) -> pd.DataFrame:
    """Add ``score`` and ``robust_score`` columns (needs a ``basis_btc`` column)."""
    out = df.copy()
    out["score"] = out["test_final_btc"] / out["basis_btc"]
    out["robust_score"] = robust_score(out["train_final_btc"], out["test_final_btc"], out["test_turns"],
                                       out["test_fees_btc"], out["test_turnover_btc"], out["basis_btc"], pen)
    return out


def top_quantile_mask(test_final: pd.Series, top_quantile: float) -> pd.Series:
    """Rows among the ceil(top_quantile * n) best test finals (at least one; ties all kept)."""
    if not 0 < top_quantile <= 1:
        raise UserError(f"--top-quantile must be in (0, 1] (0.2 = best 20 %), got {top_quantile}")
    import numpy as np

    k = max(1, math.ceil(top_quantile * len(test_final) - 1e-9))
    cut = np.sort(test_final.to_numpy())[::-1][k - 1]
    return test_final >= cut


def trading(df: pd.DataFrame) -> pd.Series:
    """Rows with at least one turn in the test window (the others hold BTC throughout)."""
    return df["test_turns"] > 0


def candidates(df: pd.DataFrame, allow_idle: bool = False) -> pd.DataFrame:
    """The rows a pick may come from: the trading ones; all rows only when none trades and
    ``allow_idle``; an empty frame when none trades."""
    t = trading(df)
    if t.any():
        return df[t]
    return df if allow_idle else df.iloc[0:0]


def select_best(df: pd.DataFrame, top_quantile: float, allow_idle: bool = False) -> int | None:
    """Index label of the selected row (see module docstring); None when no trial trades in its
    test window (unless ``allow_idle``)."""
    if df.empty:
        raise UserError("no completed trials to select from")
    pool = candidates(df, allow_idle)
    if pool.empty:
        return None
    keep = pool[top_quantile_mask(pool["test_final_btc"], top_quantile)]
    order = keep.sort_values(["robust_score", "test_turns", "trial"], ascending=[False, True, True], kind="stable")
    return order.index[0]


def no_trade_message(n: int, what: str = "trial", flag: str = "--allow-no-trade") -> str:
    """The one line said when nothing trades in its test window."""
    return (f"no {what} trades in its test window (all {n} hold BTC: 0 turns), so there is no strategy to pick and "
            f"no config is written; widen the search space or the test window, lower the penalties, or pass "
            f"{flag} to write the best BTC-holding {what} anyway")


_LAMBDA_FLAG = {"turns": ("--lambda-turns", "lambda_turns"), "train/test gap": ("--gap-penalty", "gap_penalty"),
                "fees": ("--lambda-fees", "lambda_fees"), "turnover": ("--lambda-turnover", "lambda_turnover")}


def dominance_warnings(df: pd.DataFrame, pen: Penalties, top_quantile: float) -> list[str]:
    """One line per penalty term whose typical size (median over the top trading trials) is at
    least ``DOMINANCE`` times the spread (std) of those trials' test results: such a term decides
    the pick by itself instead of tipping the balance between comparably good trials."""
    import numpy as np

    pool = candidates(df)
    if len(pool) < 3:
        return []
    top = pool[top_quantile_mask(pool["test_final_btc"], top_quantile)]
    if len(top) < 3:
        top = pool
    spread = float((top["test_final_btc"] / top["basis_btc"]).std(ddof=0))
    if not np.isfinite(spread) or spread <= SPREAD_NOISE:  # std of six equal 1.1s is 2.2e-16, not 0
        return []
    out = []
    for term, values in penalty_frame(top, pen).items():
        typical = float(values.median())
        if typical >= DOMINANCE * spread:
            flag, attr = _LAMBDA_FLAG[str(term)]
            lam = getattr(pen, attr)
            out.append(f"penalty term {term} ({flag} {lam:g}) is typically {typical:.4g} among the top trials, "
                       f"{typical / spread:.0f}x the spread of their test results ({spread:.4g}): it decides the "
                       f"pick alone; {flag} {lam * spread / typical:.3g} would make it as large as that spread")
    return out
