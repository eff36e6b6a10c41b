"""Trial tables and emitted configs.

A trial row has every strategy parameter in its own column (not a stringified dict), the
data's ``bar_interval_minutes`` and ``basis_btc``, the train and test metrics, ``score`` and
``robust_score``. :func:`emit_config` writes the one nested config JSON (``Config.to_json``)
that ``ethbtc_accum_bot.py backtest --config`` and the live executor load unchanged, with
provenance in ``meta``. Both record ``spec_version`` (the SPEC rules the kernel implemented):
results of different versions are not comparable (:func:`spec_version_warning`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from ..config import Config, StrategyParams, build_config
from ..data.timeframes import binance_interval
from ..errors import UserError
from ..fileio import atomic_path, atomic_write_text
from ..kernel import SPEC_VERSION
from .pool import METRICS

PARAM_COLUMNS = [k for k in StrategyParams.model_fields if k != "bar_interval_minutes"]


def metric_columns(windows: tuple[str, ...] = ("train", "test")) -> list[str]:
    return [f"{w}_{m}" for w in windows for m in METRICS]


def study_frame(study: optuna.Study, bar_minutes: int, basis_btc: float, fill_model: str = "intrabar") -> pd.DataFrame:
    """One row per completed trial of ``study`` (from every process that worked on it)."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        row = t.user_attrs.get("row")
        if row is None:
            continue
        rows.append({"trial": t.number, **row["params"], "bar_interval_minutes": bar_minutes,
                     "basis_btc": basis_btc, **row["metrics"], "worker": row.get("worker", ""),
                     "spec_version": row.get("spec_version", 1), "fill_model": fill_model})
    cols = ["trial", *PARAM_COLUMNS, "bar_interval_minutes", "basis_btc", *metric_columns(), "worker", "spec_version",
            "fill_model"]
    return pd.DataFrame(rows, columns=cols).sort_values("trial", kind="stable").reset_index(drop=True)


def order_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Best robust score first; ties: fewer test turns, lower trial number."""
    return df.sort_values(["robust_score", "test_turns", "trial"], ascending=[False, True, True],
                          kind="stable").reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")


def write_excel(path: str | Path, sheets: dict[str, pd.DataFrame]) -> None:
    """One sheet per frame, written atomically."""
    with atomic_path(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            for name, frame in sheets.items():
                frame.to_excel(xw, sheet_name=name[:31], index=False)


def row_params(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """Strategy parameters of a trial row as config values (numpy scalars made plain)."""
    out: dict[str, Any] = {}
    for k in PARAM_COLUMNS:
        if k in row and not (isinstance(row[k], float) and pd.isna(row[k])):
            v = row[k]
            out[k] = v.item() if hasattr(v, "item") else v
    return out


def emit_config(path: str | Path, base: Config, params: dict[str, Any], bar_minutes: int,
                meta: dict[str, Any]) -> Config:
    """Write base config + params + data interval as a complete nested config; returns it."""
    try:
        interval: str | None = binance_interval(int(bar_minutes))
    except UserError:  # not a Binance interval: leave execution.interval unset
        interval = None
    flat = base.flat() | params | {"bar_interval_minutes": int(bar_minutes), "interval": interval}
    cfg = build_config(flat)
    full_meta = {**meta, "spec_version": SPEC_VERSION,
                 "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if base.meta:
        full_meta["parent"] = base.meta
    cfg = cfg.model_copy(update={"meta": full_meta})
    atomic_write_text(path, cfg.to_json())
    return cfg


def spec_version_warning(versions: list[int], what: str) -> str | None:
    """One line when ``versions`` (of runs files or configs; 1 = recorded before the field existed)
    mix SPEC versions or differ from the kernel's, else None."""
    seen = sorted(set(versions))
    if not seen or seen == [SPEC_VERSION]:
        return None
    if len(seen) > 1:
        return (f"warning: {what} mix SPEC versions {', '.join(f'v{v}' for v in seen)}: their figures are not "
                f"comparable (v2 changed R19 stepping and R23 BNB fees, v3 R22's fill model); re-run the older ones")
    return (f"warning: {what} were made under SPEC v{seen[0]}, this code implements v{SPEC_VERSION}: their "
            f"figures differ from what a backtest gives now; re-run them")
