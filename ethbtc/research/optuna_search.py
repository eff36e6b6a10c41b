"""The batched ask/tell loop over an Optuna study.

Keeps ``2 x threads`` chunks of trials in flight on the evaluator, tells results as chunks
finish, and stops at the requested number of completed trials (exact, also with several
workers on one storage), on early stop, or on Ctrl-C / SIGTERM: running chunks are finished
and told, so the results written afterwards include them; a second Ctrl-C aborts them (told
FAIL, so no trial is left RUNNING).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ..errors import UserError
from ..kernel import SPEC_VERSION
from .pool import Evaluator
from .space import Space, suggest
from .study import StudyHandle

ACTIVE = (TrialState.COMPLETE, TrialState.RUNNING)


class StopFlag:
    """First SIGINT/SIGTERM: finish running chunks then stop; second: abort (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.reason == "interrupted":
            raise KeyboardInterrupt
        self.reason = "interrupted"
        # straight to the file descriptor: print() here would re-enter sys.stderr's buffer if the
        # signal lands while the main thread writes the progress bar ("reentrant call" error)
        with contextlib.suppress(AttributeError, OSError, ValueError):  # stderr without a descriptor
            os.write(sys.stderr.fileno(), b"\ninterrupt: finishing the running trials, then writing results "
                                          b"(Ctrl-C again to abort)\n")

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass
class EarlyStop:
    patience: int
    min_improve: float
    best: float = -np.inf
    since: int = 0

    def update(self, value: float) -> bool:
        """Feed one completed trial's value; True when patience is exhausted."""
        if value > self.best + self.min_improve or not np.isfinite(self.best):
            self.best, self.since = value, 0
        else:
            self.since += 1
        return self.since >= self.patience


@dataclass
class Budget:
    """How many more trials to start so the study ends with exactly ``target`` completed ones."""

    handle: StudyHandle
    target: int
    asked: int = 0

    def room(self, want: int) -> int:
        if not self.handle.persistent:
            return max(0, min(want, self.target - self.asked))
        active = len(self.handle.study.get_trials(deepcopy=False, states=ACTIVE))
        return max(0, min(want, self.target - active))

    def admit(self, trials: list[optuna.Trial]) -> list[optuna.Trial]:
        """Keep the trials among the first ``target`` active ones; others are told FAIL.

        Trial numbers are assigned in creation order by the storage, so every process
        agrees which trials are inside the budget even when several ask at once."""
        self.asked += len(trials)
        if not self.handle.persistent:
            return trials
        numbers = sorted(t.number for t in self.handle.study.get_trials(deepcopy=False, states=ACTIVE))
        allowed = set(numbers[: self.target])
        kept = [t for t in trials if t.number in allowed]
        for t in trials:
            if t.number not in allowed:
                t.set_user_attr("skipped", "over budget (another worker filled the study)")
                self.handle.study.tell(t, state=TrialState.FAIL)
        return kept


@dataclass
class SearchOutcome:
    reason: str  # "done" | "early_stop" | "interrupted" | "aborted"
    completed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    last_value: float = float("nan")


def run_search(handle: StudyHandle, space: Space, base: dict[str, Any], evaluator: Evaluator, n_trials: int,
               score: Callable[[dict[str, Any]], float], chunk_size: int, early: EarlyStop | None = None,
               progress: bool = True, worker_tag: str = "", fail_stale_minutes: float | None = None) -> SearchOutcome:
    """Run trials until the study holds ``n_trials`` completed ones (or a stop); see module doc."""
    from tqdm import tqdm

    study = handle.study
    if handle.persistent and fail_stale_minutes is not None:
        _fail_stale(study, fail_stale_minutes)
    budget = Budget(handle, n_trials)
    done_before = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out = SearchOutcome("done")
    best = study.best_value if done_before else -np.inf
    if early is not None and done_before:
        early.best = best
    inflight: dict[Future[list[dict[str, Any]]], list[optuna.Trial]] = {}
    pending: list[optuna.Trial] = []
    max_inflight = 2 * max(1, evaluator.threads)
    print(f"search: {n_trials} completed trials wanted, {done_before} already in the study; "
          f"{evaluator.threads} worker process(es), chunks of {chunk_size}", file=sys.stderr, flush=True)
    bar = tqdm(total=n_trials, initial=min(done_before, n_trials), desc="optimize", unit="trial",
               disable=not (progress and sys.stderr.isatty()), dynamic_ncols=True, file=sys.stderr)
    with StopFlag() as stop:
        try:
            while True:
                while stop.reason is None and len(inflight) < max_inflight:
                    k = budget.room(chunk_size)
                    if k == 0:
                        break
                    asking = [study.ask() for _ in range(k)]
                    pending = asking  # told FAIL by the handlers below if we are stopped right here
                    params = {t.number: suggest(t, space, base) for t in asking}
                    pending = budget.admit(asking)
                    if pending:
                        inflight[evaluator.submit([params[t.number] for t in pending])] = pending
                    pending = []
                if not inflight:
                    break
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in finished:
                    results = fut.result()
                    for trial, res in zip(inflight.pop(fut), results, strict=True):
                        _tell(study, trial, res, score, worker_tag, out)
                        if "error" not in res:
                            bar.update(1)
                            best = max(best, out.last_value)
                            if early is not None and early.update(out.last_value):
                                stop.set("early_stop")
                    if np.isfinite(best):
                        bar.set_postfix(best=f"{best:.4f}", refresh=False)
                if out.failed > 50 and out.completed == 0:
                    raise UserError(f"every trial fails to build a valid config, e.g.: {out.errors[0]}")
        except KeyboardInterrupt:
            stop.reason = "aborted"
            _fail_all(study, pending, inflight)
            evaluator.close(cancel=True)
        except BaseException:
            _fail_all(study, pending, inflight)
            raise
        finally:
            bar.close()
    out.reason = stop.reason or "done"
    if out.reason == "done" and handle.persistent:
        _wait_for_others(study)
    return out


def _fail_stale(study: optuna.Study, minutes: float) -> None:
    """Trials left RUNNING by a worker that died (kill -9, power loss) count against the target
    forever; ``--fail-stale-minutes`` marks those running longer than that FAIL (a trial takes
    seconds). Optuna stores local naive start times: only use it when workers share a clock/zone."""
    now = dt.datetime.now()
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
             if t.datetime_start is not None and now - t.datetime_start > dt.timedelta(minutes=minutes)]
    for t in stale:
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):  # finished meanwhile
            pass
    if stale:
        print(f"note: {len(stale)} trial(s) left running by a dead worker were marked failed", file=sys.stderr)


def _wait_for_others(study: optuna.Study, quiet_s: float = 5.0) -> None:
    """Our share is done; let trials still running in other processes finish so the results we
    write cover the whole study. Stops once nothing has finished for ``quiet_s`` seconds (only
    trials of a dead worker are left then)."""
    last_change, seen = time.monotonic(), -1
    while time.monotonic() - last_change < quiet_s:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))
        if done != seen:
            last_change, seen = time.monotonic(), done
        time.sleep(0.25)


def _tell(study: optuna.Study, trial: optuna.Trial, res: dict[str, Any], score: Callable[[dict[str, Any]], float],
          worker_tag: str, out: SearchOutcome) -> None:
    if "error" in res:
        trial.set_user_attr("error", res["error"])
        study.tell(trial, state=TrialState.FAIL)
        out.failed += 1
        out.errors.append(res["error"])
        return
    value = score(res["metrics"])
    try:
        trial.set_user_attr("row", {"params": res["params"], "metrics": res["metrics"], "worker": worker_tag,
                                    "spec_version": SPEC_VERSION})
        study.tell(trial, value)
    except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError) as exc:
        out.errors.append(f"trial {trial.number} was finished elsewhere ({exc})")  # e.g. failed as stale
        out.failed += 1
        return
    out.completed += 1
    out.last_value = value


def _fail_all(study: optuna.Study, pending: list[optuna.Trial],
              inflight: dict[Future[list[dict[str, Any]]], list[optuna.Trial]]) -> None:
    """Tell every trial that will not get a result FAIL, so no RUNNING trial is left behind."""
    for t in [*pending, *(t for ts in inflight.values() for t in ts)]:
        try:
            study.tell(t, state=TrialState.FAIL)
        except (ValueError, RuntimeError):  # already finished
            pass
    inflight.clear()
