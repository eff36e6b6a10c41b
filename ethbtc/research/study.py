"""Optuna studies: samplers, storages, and opening (creating, resuming or joining) a study.

* ``random`` (default) draws trial N's parameters from ``(seed, N)`` alone, so a run
  reproduces with ``--seed`` whatever the batch size, thread count, interruption or number of
  machines, and workers sharing a study never draw the same candidate twice; ``tpe``
  (multivariate, constant liar for parallel batches) and ``cmaes`` (for a focused second
  stage) are Optuna's own and reproduce only in memory with ``--threads 1``.
* Storage: in memory by default (no persistence cost on the hot path). ``--storage`` takes an
  SQLAlchemy URL (``sqlite:///file.db``, ``postgresql://...``) or a path to an Optuna journal
  file; the study is then resumed by re-running the same command and joined by the same
  command on other machines (Optuna's distributed mode). The study remembers its seed and a
  fingerprint of data, windows, space and penalties and refuses a mismatching command.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from ..errors import UserError
from . import SAMPLERS

__all__ = ["SAMPLERS", "StudyHandle", "make_sampler", "open_storage", "open_study", "redact"]

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
                        "pip install 'psycopg[binary]' and use postgresql+psycopg://...") from None
    except Exception as exc:  # noqa: BLE001 - any storage failure is the user's URL/database
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"--storage {redact(url)}: cannot open storage ({first})") from None


def _rdb_storage(url: str, attempts: int = 6) -> optuna.storages.BaseStorage:
    """Open a database storage; retry while another worker is creating the schema right now.
    SQLAlchemy is imported here, not at start-up (an in-memory study never needs it)."""
    import sqlalchemy

    if not sqlalchemy.event.contains(sqlalchemy.engine.Engine, "connect", _sqlite_wal):
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _sqlite_wal)
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
