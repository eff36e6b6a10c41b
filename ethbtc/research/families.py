"""wf_pick's parameter families: group optimiser trials that describe the same strategy shape.

A family is (trend kind, lookback bucket, cooldown bucket, rounded entry/exit bands, rounded
step). Rows first pass per-run cost filters (fees and turnover at or below the given
quantile of their run), then families are ranked by

    mean(test_final) - penalty_turns * mean(test_turns) - penalty_fees * mean(test_fees)
    - penalty_turnover * mean(test_turnover) / 100

(BTC figures divided by basis_btc: fees 0.01 = 1 % of the account; turnover = traded notional /
basis counted per 100, the unit of the optimisers' robust score), keeping families seen in at
least ``min_occurs`` distinct runs (and, with ``require_var``, with at least two members). The
representative of a family is its member closest to the family's median parameters.

Rows with no turn in their test window hold BTC: they are dropped before the cost filters
whenever any row trades (:func:`drop_idle`). When the requested buckets are so fine that no
family recurs (e.g. bands rounded to 4 decimals on continuous random draws),
:func:`coarsen_until_recurring` widens every bucket step by step towards ``COARSE`` and says
which rules it used.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .scoring import TURNOVER_UNIT
from .trials import PARAM_COLUMNS, spec_version_warning

NEEDED = ["trend_kind", "trend_lookback", "cooldown_minutes", "flip_band_entry", "flip_band_exit",
          "step_allocation", "test_final_btc"]
COSTS = ["test_fees_btc", "test_turnover_btc"]
KEY_COLUMNS = ["fam_kind", "fam_lookback", "fam_cooldown", "fam_entry", "fam_exit", "fam_step"]


@dataclass(frozen=True)
class FamilyRules:
    lb_bucket: int = 24
    cd_bucket: float = 120.0
    band_round: float = 0.005
    step_round: float = 0.1

    def __post_init__(self) -> None:
        if self.lb_bucket < 1:
            raise UserError(f"--lb-bucket must be a positive number of bars, got {self.lb_bucket}")
        if self.cd_bucket <= 0:
            raise UserError(f"--cd-bucket must be positive minutes, got {self.cd_bucket}")
        for name, v in (("--band-round", self.band_round), ("--step-round", self.step_round)):
            if not 0 < v < 1:
                raise UserError(f"{name} is the rounding step (e.g. 0.005) and must be in (0, 1), got {v}")


@dataclass(frozen=True)
class FamilyPenalties:
    turns: float = 0.001
    fees: float = 1.0
    turnover: float = 0.0


def load_runs(paths: list[str]) -> pd.DataFrame:
    """Optimiser trial CSVs stacked, with a ``run`` column (the file's position and name)."""
    frames = []
    for i, path in enumerate(paths):
        p = Path(path)
        if not p.is_file():
            raise UserError(f"runs file not found: {p}")
        try:
            df = pd.read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UserError(f"{p}: unreadable CSV ({str(exc).splitlines()[0]})") from None
        missing = [c for c in NEEDED if c not in df.columns]
        if missing:
            raise UserError(f"{p}: not an optimizer trials CSV, missing column(s) {', '.join(missing)}")
        if df.empty:
            print(f"warning: {p} has no trials", file=sys.stderr)
        df = _checked(df, p)
        df["run"] = f"{i}:{p.name}"
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    if out.empty:
        raise UserError(f"no trials in {', '.join(paths)}")
    versions = pd.to_numeric(out["spec_version"], errors="coerce").fillna(1) if "spec_version" in out.columns else [1]
    note = spec_version_warning([int(v) for v in versions], "the runs files")
    if note:
        print(note, file=sys.stderr)
    if "basis_btc" not in out.columns:
        out["basis_btc"] = 1.0
    return out


def _checked(df: pd.DataFrame, p: Path) -> pd.DataFrame:
    """Numeric columns numeric and finite, trend kinds known: an edited or damaged CSV is an
    error naming its line, not a TypeError later or NaN silently ranked."""
    df = df.copy()
    for col in [c for c in NEEDED if c != "trend_kind"] + [c for c in COSTS if c in df.columns]:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = ~np.isfinite(num.to_numpy(dtype=float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"{p}: line {i + 2}: {col} {str(df[col].iloc[i])[:40]!r} is not a finite number")
        df[col] = num
    kinds = ~df["trend_kind"].isin(["sma", "roc"])
    if kinds.any():
        i = int(np.flatnonzero(kinds.to_numpy())[0])
        raise UserError(f"{p}: line {i + 2}: trend_kind {str(df['trend_kind'].iloc[i])[:40]!r} is not sma or roc")
    return df


def cost_filter(df: pd.DataFrame, q_fees: float, q_turnover: float, require_costs: bool) -> pd.DataFrame:
    """Per run, keep rows whose fees and turnover are at or below the given quantiles."""
    for name, q in (("--q-fees", q_fees), ("--q-turnover", q_turnover)):
        if not 0 < q <= 1:
            raise UserError(f"{name} must be in (0, 1], got {q}")
    missing = [c for c in COSTS if c not in df.columns]
    if missing:
        if require_costs:
            raise UserError(f"--require-costs: the runs lack column(s) {', '.join(missing)}")
        print(f"warning: runs lack {', '.join(missing)}; cost filters and penalties skipped", file=sys.stderr)
        return df.assign(**{c: 0.0 for c in missing})
    if require_costs:
        df = df.dropna(subset=COSTS)
    keep = pd.Series(True, index=df.index)
    for col, q in (("test_fees_btc", q_fees), ("test_turnover_btc", q_turnover)):
        if q < 1:
            cut = df.groupby("run")[col].transform(lambda s, q=q: s.quantile(q))
            keep &= df[col] <= cut
    return df[keep]


def add_family_keys(df: pd.DataFrame, rules: FamilyRules) -> pd.DataFrame:
    out = df.copy()
    lb = (out["trend_lookback"] // rules.lb_bucket * rules.lb_bucket).astype(int)
    cd = (out["cooldown_minutes"] // rules.cd_bucket * rules.cd_bucket)
    out["fam_kind"] = out["trend_kind"].astype(str)
    out["fam_lookback"] = lb
    out["fam_cooldown"] = cd
    out["fam_entry"] = (out["flip_band_entry"] / rules.band_round).round() * rules.band_round
    out["fam_exit"] = (out["flip_band_exit"] / rules.band_round).round() * rules.band_round
    out["fam_step"] = (out["step_allocation"] / rules.step_round).round() * rules.step_round
    out["family"] = [
        f"{k} lb{a}-{a + rules.lb_bucket - 1} cd{c:g}-{c + rules.cd_bucket:g}m entry{e:.4g} exit{x:.4g} step{s:.3g}"
        for k, a, c, e, x, s in zip(out["fam_kind"], lb, cd, out["fam_entry"], out["fam_exit"], out["fam_step"],
                                    strict=True)
    ]
    return out


def rank_families(df: pd.DataFrame, pen: FamilyPenalties, min_occurs: int = 1, require_var: bool = False) -> pd.DataFrame:
    """One row per family (needs family keys), best first; see module docstring."""
    if min_occurs < 1:
        raise UserError(f"--min-occurs must be at least 1, got {min_occurs}")
    d = df.assign(final_rel=df["test_final_btc"] / df["basis_btc"],
                  fees_rel=df["test_fees_btc"] / df["basis_btc"],
                  turnover_rel=df["test_turnover_btc"] / df["basis_btc"],
                  turns=df["test_turns"] if "test_turns" in df.columns else 0.0)
    g = d.groupby("family", sort=False)
    fam = pd.DataFrame({
        "members": g.size(), "runs": g["run"].nunique(),
        "mean_test_final": g["final_rel"].mean(), "std_test_final": g["final_rel"].std(ddof=1),
        "min_test_final": g["final_rel"].min(), "max_test_final": g["final_rel"].max(),
        "mean_turns": g["turns"].mean(), "mean_fees": g["fees_rel"].mean(), "mean_turnover": g["turnover_rel"].mean(),
    })
    fam["family_score"] = (fam["mean_test_final"] - pen.turns * fam["mean_turns"] - pen.fees * fam["mean_fees"]
                           - pen.turnover * fam["mean_turnover"] / TURNOVER_UNIT)
    fam = fam[fam["runs"] >= min_occurs]
    if require_var:
        fam = fam[fam["members"] >= 2]
    fam = fam.sort_values(["family_score", "runs", "std_test_final"], ascending=[False, False, True], kind="stable")
    return fam.reset_index()


def drop_idle(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows that trade in their test window (all rows if none does), and how many were dropped."""
    if "test_turns" not in df.columns:
        return df, 0
    t = pd.to_numeric(df["test_turns"], errors="coerce").fillna(0) > 0
    if not t.any():
        return df, 0
    return df[t], int((~t).sum())


def decimal_places(value: float, flag: str) -> tuple[float, str | None]:
    """The v1 meaning of an integer rounding flag: ``--band-round 4`` = 4 decimal places (0.0001).
    Returns the step and, when converted, the one-line note that says so."""
    if value >= 1 and float(value).is_integer() and value <= 12:
        step = 10.0 ** -int(value)
        return step, f"{flag} {int(value)} read as {int(value)} decimal places ({flag} {step:g}), the v1 meaning"
    return value, None


COARSE = FamilyRules(96, 720.0, 0.02, 0.25)  # the coarsest buckets auto-coarsening goes to (docs/research.md, the 200-trial quick start)
COARSEN_STEPS = 8


def coarsen_until_recurring(rows: pd.DataFrame, rules: FamilyRules, pen: FamilyPenalties, min_occurs: int,
                            require_var: bool, wanted: int = 10) -> tuple[FamilyRules, pd.DataFrame, pd.DataFrame]:
    """The first rules, from ``rules`` towards ``COARSE`` (geometric steps, never finer than asked),
    under which at least ``wanted`` families appear in ``min_occurs`` runs -- one family that
    recurs by chance is no choice -- else the coarsest that gives any: (rules, rows with family
    keys, ranked families). The ranked table is empty when even ``COARSE`` makes none recur."""
    target = FamilyRules(max(rules.lb_bucket, COARSE.lb_bucket), max(rules.cd_bucket, COARSE.cd_bucket),
                         max(rules.band_round, COARSE.band_round), max(rules.step_round, COARSE.step_round))
    first = None
    for i in range(COARSEN_STEPS + 1):
        t = i / COARSEN_STEPS
        r = FamilyRules(max(1, round(rules.lb_bucket ** (1 - t) * target.lb_bucket ** t)),
                        float(round(rules.cd_bucket ** (1 - t) * target.cd_bucket ** t)) if t else rules.cd_bucket,
                        float(f"{rules.band_round ** (1 - t) * target.band_round ** t:.2g}"),
                        float(f"{rules.step_round ** (1 - t) * target.step_round ** t:.2g}"))
        keyed = add_family_keys(rows, r)
        fams = rank_families(keyed, pen, min_occurs, require_var)
        if len(fams) >= wanted or (i == 0 and not fams.empty):
            return r, keyed, fams
        if first is None and not fams.empty:
            first = (r, keyed, fams)
    return (r, keyed, fams) if not fams.empty or first is None else first


def rules_flags(r: FamilyRules) -> str:
    return f"--lb-bucket {r.lb_bucket} --cd-bucket {r.cd_bucket:g} --band-round {r.band_round:g} --step-round {r.step_round:g}"


def representative(members: pd.DataFrame, scale_from: pd.DataFrame) -> pd.Series:
    """The member closest (scaled L1) to the members' median numeric parameters."""
    cols = [c for c in PARAM_COLUMNS if c in members.columns and pd.api.types.is_numeric_dtype(members[c])]
    x = members[cols].astype(float)
    spread = scale_from[cols].astype(float).std(ddof=0).replace(0.0, 1.0).fillna(1.0)
    dist = ((x - x.median()) / spread).abs().sum(axis=1)
    return members.loc[dist.idxmin()]


def rules_dict(rules: FamilyRules, pen: FamilyPenalties) -> dict[str, float]:
    return {**asdict(rules), **{f"penalty_{k}": v for k, v in asdict(pen).items()}}


SPARSE_FAMILIES = 0.8  # families per trial above which a recurring family may be chance


def pick_warnings(n_trials: int, n_families: int, chosen: pd.Series) -> list[str]:
    """What makes a pick untrustworthy, in words: a thinly supported family in a search whose
    families hardly repeat (its recurrence across runs may be chance), and a family that ended
    its test windows with less BTC than it started with."""
    out = []
    members, runs = int(chosen["members"]), int(chosen["runs"])
    if n_trials >= 20 and n_families > SPARSE_FAMILIES * n_trials and members < 2 * runs:
        out.append(f"the pick rests on {members} trial(s) from {runs} run(s) in a search whose families hardly "
                   f"repeat ({n_families} families from {n_trials} trials), so its recurrence may be chance: run "
                   "more trials (--n-random) or use coarser buckets, e.g. --lb-bucket 96 --cd-bucket 720 "
                   "--band-round 0.02 --step-round 0.25")
    if chosen["mean_test_final"] < 1.0:
        out.append(f"the picked family ended its test windows with less BTC than it started with (mean "
                   f"{chosen['mean_test_final']:.4f} x the start): holding BTC did better")
    return out


def family_members(df: pd.DataFrame, family: str) -> pd.DataFrame:
    m = df[df["family"] == family]
    if m.empty:
        raise UserError(f"family {family!r} has no members")
    return m


def check_single_interval(df: pd.DataFrame) -> int | None:
    if "bar_interval_minutes" not in df.columns:
        return None
    vals = df["bar_interval_minutes"].dropna().unique()
    if len(vals) > 1:
        raise UserError(f"the runs mix bar intervals {sorted(int(v) for v in vals)}; pick within one interval")
    return int(vals[0]) if len(vals) else None

