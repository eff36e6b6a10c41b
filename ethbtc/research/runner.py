"""One optimisation run: prepare the windows, open the study, evaluate trials, score them.

Shared by optimizer_cli.py (one train/test split), multi_interval_opt.py (one run per
interval) and wf_pick.py --walk-forward (one run per fold).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..backtest import prepare_bnb
from ..config import Config
from ..data.candles import Candles
from ..errors import DataError
from ..search import Window, evaluate_batch
from ..strategy import finite_bnb_wallet
from . import scoring
from .optuna_search import EarlyStop, SearchOutcome, run_search
from .pool import EvalContext, Evaluator, resolve_threads
from .space import Space, describe
from .study import StudyHandle, open_study, redact
from .trials import order_rows, study_frame

MIN_BARS = 10


@dataclass
class Job:
    base: Config
    candles: Candles
    bnb: Candles | None
    spans: dict[str, tuple[str | None, str | None]]  # e.g. {"train": (start, end), "test": (...)}
    space: Space
    penalties: scoring.Penalties
    n_trials: int
    seed: int | None = None
    sampler: str = "random"
    threads: int = 0
    chunk_size: int = 16
    top_quantile: float = 0.2
    storage: str | None = None
    study_name: str | None = None
    early: EarlyStop | None = None
    progress: bool = True
    fail_stale_minutes: float | None = None
    to_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    label: dict[str, Any] = field(default_factory=dict)  # extra fingerprint/provenance (data path ...)
    allow_idle: bool = False  # may the pick be a trial without a turn in its test window (holds BTC)?


@dataclass
class JobResult:
    frame: pd.DataFrame  # scored trials, best robust score first
    best: pd.Series | None  # the selected row
    outcome: SearchOutcome
    handle: StudyHandle
    bar_minutes: int
    warnings: list[str] = field(default_factory=list)  # penalty terms that decide the pick alone

    @property
    def chosen_on(self) -> list[list[str]]:
        """The [first bar, last bar] spans the pick was chosen on (train and test windows)."""
        return chosen_on_spans(self.frame)

    @property
    def idle(self) -> bool:
        """No completed trial trades in its test window (so there is no pick, or an allowed idle one)."""
        return not self.frame.empty and not bool(scoring.trading(self.frame).any())

    @property
    def interrupted(self) -> bool:
        return self.outcome.reason in ("interrupted", "aborted")


def chosen_on_spans(frame: pd.DataFrame) -> list[list[str]]:
    """Distinct [start, end] bar spans recorded in trial rows (``train_start`` ... ``test_end``)."""
    spans: list[list[str]] = []
    for name in ("train", "test"):
        a, b = f"{name}_start", f"{name}_end"
        if a in frame.columns and b in frame.columns:
            for x, y in frame[[a, b]].dropna().drop_duplicates().itertuples(index=False):
                if [str(x), str(y)] not in spans:
                    spans.append([str(x), str(y)])
    return spans


def prepare_windows(job: Job) -> dict[str, Window]:
    use_bnb = job.bnb is not None and job.base.fees.pay_fees_in_bnb
    finite_bnb_wallet(job.base, has_prices=job.bnb is not None)  # fail before any worker starts (R23)
    out: dict[str, Window] = {}
    for name, (start, end) in job.spans.items():
        c = job.candles.window(start, end)
        if len(c.df) < MIN_BARS:
            raise DataError(f"the {name} window {start or ''}..{end or ''} holds only {len(c.df)} bars")
        out[name] = Window.of(c, prepare_bnb(c, job.bnb) if use_bnb else None)
    return out


def _warm_up(ctx: EvalContext, base: Config) -> None:
    """Load the compiled batch evaluation once in this process, so forked workers inherit it."""
    first = next(iter(ctx.windows.values())).candles
    evaluate_batch([base], Window.of(Candles(first.df.iloc[:MIN_BARS], first.interval_minutes, first.report)))


def run_job(job: Job) -> JobResult:
    windows = prepare_windows(job)
    bar_minutes = job.candles.interval_minutes
    base_flat = job.base.flat()
    ctx = EvalContext(base_flat, windows, job.to_config)
    basis = job.base.risk.basis_btc
    fingerprint = {
        **job.label, "bar_minutes": bar_minutes, "spans": job.spans, "space": describe(job.space),
        "penalties": job.penalties.as_dict(), "base": base_flat, "sampler": job.sampler,
        "windows": {k: [str(w.candles.df.index[0]), str(w.candles.df.index[-1]), len(w.candles.df)]
                    for k, w in windows.items()},
    }
    threads = resolve_threads(job.threads)
    _warm_up(ctx, job.base)
    with Evaluator(ctx, threads) as evaluator:
        handle = open_study(job.storage, job.study_name, job.sampler, job.seed, fingerprint)
        tag = f"{socket.gethostname()}:{os.getpid()}" if handle.persistent else ""
        if handle.persistent:
            print(f"study {handle.name!r} in {redact(job.storage)} (seed {handle.seed})", file=sys.stderr)
        outcome = run_search(handle, job.space, base_flat, evaluator, job.n_trials,
                             lambda m: scoring.score_metrics(m, basis, job.penalties), job.chunk_size,
                             job.early, job.progress, tag, job.fail_stale_minutes)
    frame = study_frame(handle.study, bar_minutes, basis, job.base.execution.fill_model)
    for name, w in windows.items():  # which bars each figure comes from (wf_pick and backtest labels)
        frame[f"{name}_start"], frame[f"{name}_end"] = str(w.candles.df.index[0]), str(w.candles.df.index[-1])
    best = None
    warnings: list[str] = []
    if not frame.empty:
        frame = order_rows(scoring.add_scores(frame, job.penalties))
        pool = scoring.candidates(frame, job.allow_idle)
        frame["in_top_quantile"] = False
        if not pool.empty:
            frame.loc[pool.index, "in_top_quantile"] = scoring.top_quantile_mask(pool["test_final_btc"],
                                                                                   job.top_quantile)
        label = scoring.select_best(frame, job.top_quantile, job.allow_idle)
        frame["selected"] = frame.index == label
        best = None if label is None else frame.loc[label]
        warnings = scoring.dominance_warnings(frame, job.penalties, job.top_quantile)
    return JobResult(frame, best, outcome, handle, bar_minutes, warnings)

