"""Optuna study plumbing: samplers, storages, and the batched ask/tell loop.

* Samplers: ``random`` (default) draws trial N's parameters from ``(seed, N)`` alone, so a
  run reproduces with ``--seed`` whatever the batch size, thread count, interruption or
  number of machines, and workers sharing a study never draw the same candidate twice;
  ``tpe`` (multivariate, constant liar for parallel batches) and ``cmaes`` (for a focused
  second stage) are Optuna's own and reproduce only in memory with ``--threads 1``.
* Storage: in memory by default (no persistence cost on the hot path). ``--storage`` takes an
  SQLAlchemy URL (``sqlite:///file.db``, ``postgresql://...``) or a path to an Optuna journal
  file; the study is then resumed by re-running the same command and joined by the same
  command on other machines (Optuna's distributed mode). The study remembers its seed and a
  fingerprint of data, windows, space and penalties and refuses a mismatching command.
* The loop keeps ``2 x threads`` chunks in flight, tells results as chunks finish, stops at
  the requested number of completed trials (exact, also with several workers), on early stop,
  or on Ctrl-C / SIGTERM (running chunks are finished and told; a second Ctrl-C aborts them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import signal
import sqlite3
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ..errors import UserError
from .pool import Evaluator
from .space import Space, suggest

SAMPLERS = ("random", "tpe", "cmaes")
ACTIVE = (TrialState.COMPLETE, TrialState.RUNNING)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class TrialSeededRandomSampler(optuna.samplers.BaseSampler):
    """Uniform random sampling where trial N's values depend only on (seed, N, name)."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        rng = np.random.default_rng([self.seed, trial.number, zlib.crc32(param_name.encode())])
        d = param_distribution
        if isinstance(d, CategoricalDistribution):
            return d.choices[int(rng.integers(len(d.choices)))]
        if isinstance(d, IntDistribution):
            if d.log:  # uniform in log space over [low - 0.5, high + 0.5], rounded (as Optuna does)
                v = np.exp(rng.uniform(np.log(d.low - 0.5), np.log(d.high + 0.5)))
                return int(min(d.high, max(d.low, round(v))))
            return d.low + d.step * int(rng.integers((d.high - d.low) // d.step + 1))
        if isinstance(d, FloatDistribution):
            if d.log:
                return float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))))
            if d.step is not None:
                return float(min(d.high, d.low + d.step * int(rng.integers(round((d.high - d.low) / d.step) + 1))))
            return float(rng.uniform(d.low, d.high))
        raise TypeError(f"unsupported distribution {d!r}")  # pragma: no cover


def make_sampler(name: str, seed: int, persistent: bool) -> optuna.samplers.BaseSampler:
    if name == "random":
        return TrialSeededRandomSampler(seed)
    # several processes on one storage must not replay one seed; such runs are not reproducible anyway
    s = seed if not persistent else (seed + secrets.randbelow(2**31)) % 2**32
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=s, multivariate=True, constant_liar=True, n_startup_trials=20)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=s, n_startup_trials=0, warn_independent_sampling=False)
    raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
def _sqlite_wal(dbapi_conn: Any, record: Any) -> None:
    """SQLite studies: write-ahead log and NORMAL sync, so a commit is not an fsync (many
    processes on one host may still share the file)."""
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """None = in memory; an SQLAlchemy URL (sqlite:///, postgresql://, mysql://); else a journal file."""
    if url is None:
        return None
    try:
        if "://" in url:
            return _rdb_storage(url)
        path = Path(url)
        if path.is_dir():
            raise UserError(f"--storage {url}: is a directory; give a journal file path or a database URL")
        if not path.parent.exists():
            raise UserError(f"--storage {url}: folder {path.parent} does not exist")
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    except UserError:
        raise
    except ImportError as exc:
        raise UserError(f"--storage {redact(url)}: database driver missing ({exc}); for PostgreSQL "
                        "pip install psycopg2-binary") from None
    except Exception as exc:  # noqa: BLE001 - any storage failure is the user's URL/database
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"--storage {redact(url)}: cannot open storage ({first})") from None


def _rdb_storage(url: str, attempts: int = 6) -> optuna.storages.BaseStorage:
    """Open a database storage; retry while another worker is creating the schema right now."""
    for i in range(attempts):
        try:
            return optuna.storages.get_storage(url)
        except sqlalchemy.exc.SQLAlchemyError:
            if i == attempts - 1:
                raise
            time.sleep(0.2 * (i + 1) + secrets.randbelow(100) / 1000)
    raise AssertionError("unreachable")


def redact(url: str | None) -> str | None:
    """A storage URL without its password (for logs, CSV and emitted configs)."""
    if url is None or "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    user = cred.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in cred else url


@dataclass
class StudyHandle:
    study: optuna.Study
    seed: int
    persistent: bool
    name: str


def open_study(storage_url: str | None, name: str | None, sampler: str, seed: int | None,
               fingerprint: dict[str, Any]) -> StudyHandle:
    """Create or resume/join the study; the stored seed and fingerprint win (mismatch = error)."""
    storage = open_storage(storage_url)
    seed = secrets.randbelow(2**31) if seed is None and storage is None else seed
    if storage is None:
        study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, int(seed or 0), False))  # type: ignore[arg-type]
        return StudyHandle(study, int(seed or 0), False, "(in memory)")
    name = name or "ethbtc-optimizer"
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"--storage {redact(storage_url)}: cannot open study {name!r} ({str(exc).splitlines()[0]})") from None
    attrs = study.user_attrs
    if "fingerprint" not in attrs:
        study.set_user_attr("seed", int(seed) if seed is not None else secrets.randbelow(2**31))
        study.set_user_attr("fingerprint", digest)
        study.set_user_attr("setup", fingerprint)
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    if attrs["fingerprint"] != digest:
        raise UserError(f"study {name!r} in {redact(storage_url)} was created for other data, windows, search space "
                        "or penalties; use the same command to resume/join, or another --study-name")
    if seed is not None and int(seed) != attrs["seed"]:
        raise UserError(f"study {name!r} uses seed {attrs['seed']}; drop --seed or pass --seed {attrs['seed']} to resume/join")
    stored_seed = int(attrs["seed"])
    study.sampler = make_sampler(sampler, stored_seed, True)
    return StudyHandle(study, stored_seed, True, name)


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
        print("\ninterrupt: finishing the running trials, then writing results (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

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
        trial.set_user_attr("row", {"params": res["params"], "metrics": res["metrics"], "worker": worker_tag})
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
