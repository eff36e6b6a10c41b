#!/usr/bin/env python3
"""Oracle check for speed work: the same config and data give the same outputs before and after.

Runs a fixed set of backtests, indicator computations and optimiser trial evaluations with the
code of two source trees (e.g. ``main`` and this branch), each in its own interpreter, and
compares every per-bar column, trade, summary figure and trial metric:

* 5 years of generated 15m bars (``ethbtc.data.sample.generate(175200, 15, seed=2024, gaps=0)``)
  with ``configs/prod_live.json`` and 6 random strategy configs (``ethbtc.search.sample``), each
  with the default ``intrabar`` fill model and again with ``next_open`` (SPEC R22), and the
  production config with ``taker_fallback``;
* the real Binance files in ``../shared/data`` (ETHBTC 1h 2017-2023 with BNBBTC fees, ETHBTC
  15m 2020 freqtrade JSON with BNBBTC), skipped with a note when the folder is absent;
* 300 optimiser trials (``ethbtc.research.pool``) on train/test windows of both data sets,
  metrics at full precision, and ``optimizer_cli.py --seed 1`` trial CSVs (text equal).

Numbers must agree to 1e-12 (relative, or absolute below 1); text, integers and NaN exactly.

    .venv/bin/python bench/oracle.py --baseline ../main        # this tree vs the main worktree
    .venv/bin/python bench/oracle.py --baseline ../main --quick  # fewer trials (CI-sized)
"""

from __future__ import annotations

import argparse
import math
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-12


# --- snapshot (runs inside the tree under test) ----------------------------------------------
def snapshot(tree: Path, out: Path, quick: bool) -> None:
    sys.path.insert(0, str(tree))  # import ethbtc of ``tree``
    import numpy as np

    from ethbtc.backtest import run_backtest
    from ethbtc.config import build_config, load_config
    from ethbtc.data.candles import load_candles
    from ethbtc.data.sample import generate, write_csv
    from ethbtc.indicators import compute
    from ethbtc.research import pool
    from ethbtc.research.runner import Job, prepare_windows
    from ethbtc.research.scoring import Penalties
    from ethbtc.research.space import default_space
    from ethbtc.search import sample

    snap: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp())
    sample_csv = write_csv(generate(175_200, 15, seed=2024, gaps=0), tmp / "ETHBTC_15m_5y.csv")
    shared = tree.parent / "shared" / "data"
    sets = [("5y-sample", sample_csv, None, 15, ("2022-01-01", "2025-06-30"), ("2025-07-01", "2026-12-31"))]
    if shared.is_dir():
        sets += [("real-1h", shared / "ETHBTC_1h_2017-07_2023-06.csv", shared / "BNBBTC_1h_2017-07_2023-06.csv", 60,
                  ("2018-01-01", "2021-12-31"), ("2022-01-01", "2023-06-30")),
                 ("real-15m", shared / "ETHBTC_15m_2020-02_2020-10.freqtrade.json",
                  shared / "BNBBTC_15m_2020-02_2020-10.freqtrade.json", 15, ("2020-03-01", "2020-07-31"),
                  ("2020-08-01", "2020-10-31"))]
    rng = np.random.default_rng(11)
    drawn = [sample(rng) for _ in range(6)]
    for name, path, bnb_path, minutes, train, test in sets:
        candles = load_candles(path)
        bnb = load_candles(bnb_path) if bnb_path else None
        interval = {15: "15m", 60: "1h"}[minutes]
        prod = load_config(tree / "configs" / "prod_live.json", {"bar_interval_minutes": minutes, "interval": interval})
        cfgs = [prod] + [build_config(prod.flat() | d) for d in drawn]
        cfgs += [build_config(c.flat() | {"fill_model": "next_open"}) for c in cfgs]  # both R22 fill models
        cfgs.append(build_config(prod.flat() | {"taker_fallback": True}))  # the intrabar taker fallback (R32)
        for i, cfg in enumerate(cfgs):
            res = run_backtest(cfg, candles, bnb)
            key = f"{name}/config{i}"
            snap[f"{key}/bars"] = res.bars
            snap[f"{key}/trades"] = res.trades
            snap[f"{key}/summary"] = res.summary
            snap[f"{key}/indicators"] = compute(candles.df, cfg.strategy, minutes).frame(candles.df.index)
        job = Job(prod, candles, bnb, {"train": train, "test": test}, default_space(), Penalties(), 1)
        ctx = pool.EvalContext(prod.flat(), prepare_windows(job))
        trials = [sample(rng) for _ in range(60 if quick else 300)]
        if hasattr(pool, "evaluate_chunk"):
            got = []
            for j in range(0, len(trials), 16):
                got += pool.evaluate_chunk(ctx, trials[j:j + 16])
        else:
            got = [pool.evaluate_params(ctx, t) for t in trials]
        snap[f"{name}/trials"] = got
        with tempfile.TemporaryDirectory() as d:
            csv = Path(d) / "trials.csv"
            cmd = [sys.executable, "optimizer_cli.py", "--data", str(path), "--train-start", train[0],
                   "--train-end", train[1], "--test-start", test[0], "--test-end", test[1],
                   "--n-random", "50" if quick else "200", "--seed", "1", "--out", str(csv), "--no-progress",
                   "--config", str(tree / "configs" / "prod_live.json")]
            if bnb_path:
                cmd += ["--bnb-data", str(bnb_path)]
            if minutes != 15:  # the config says 15m; a flag-free way to search 1h data: a flat config
                cfg_path = Path(d) / "cfg.json"
                cfg_path.write_text(prod.to_json())
                cmd[cmd.index("--config") + 1] = str(cfg_path)
            r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
            snap[f"{name}/optimizer_cli.csv"] = csv.read_text() if r.returncode == 0 else f"FAILED: {r.stderr[-500:]}"
    out.write_bytes(pickle.dumps(snap))


# --- comparison ---------------------------------------------------------------------------------
def _num_diff(a: float, b: float) -> float:
    if (isinstance(a, float) and math.isnan(a)) and (isinstance(b, float) and math.isnan(b)):
        return 0.0
    if a == b:
        return 0.0
    return abs(a - b) / max(1.0, abs(a), abs(b))


def compare_values(a: Any, b: Any, where: str, bad: list[str]) -> float:
    """Worst relative difference between ``a`` and ``b``; mismatches of kind/text appended to ``bad``."""
    import numpy as np
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        if not isinstance(b, pd.DataFrame) or list(a.columns) != list(b.columns) or len(a) != len(b):
            bad.append(f"{where}: shape/columns differ")
            return math.inf
        if not a.index.equals(b.index):
            bad.append(f"{where}: index differs")
        worst = 0.0
        for col in a.columns:
            x, y = a[col].to_numpy(), b[col].to_numpy()
            if x.dtype.kind == "f" and y.dtype.kind == "f":
                both_nan = np.isnan(x) & np.isnan(y)
                d = np.where(both_nan, 0.0, np.abs(x - y) / np.maximum(1.0, np.maximum(np.abs(x), np.abs(y))))
                d = np.where(np.isnan(d), np.inf, d)
                worst = max(worst, float(d.max()) if len(d) else 0.0)
                if len(d) and d.max() > TOL:
                    bad.append(f"{where}[{col}]: max rel diff {d.max():.3g} at row {int(d.argmax())}")
            elif x.dtype != y.dtype or not (x == y).all():
                bad.append(f"{where}[{col}]: values differ ({x.dtype} vs {y.dtype})")
        return worst
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            bad.append(f"{where}: keys differ ({sorted(set(a) ^ set(b)) if isinstance(b, dict) else type(b)})")
            return math.inf
        return max([compare_values(a[k], b[k], f"{where}.{k}", bad) for k in a], default=0.0)
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            bad.append(f"{where}: lengths differ")
            return math.inf
        return max([compare_values(x, y, f"{where}[{i}]", bad) for i, (x, y) in enumerate(zip(a, b, strict=True))], default=0.0)
    if isinstance(a, str) and a.startswith("FAILED") or isinstance(b, str) and b.startswith("FAILED"):
        bad.append(f"{where}: a run failed ({a[:200]!r} / {b[:200]!r})")
        return math.inf
    if isinstance(a, bool) or isinstance(a, int) and not isinstance(a, float) or isinstance(a, str):
        if type(a) is not type(b) or a != b:
            bad.append(f"{where}: {a!r} != {b!r}")
        return 0.0
    if isinstance(a, float):
        if not isinstance(b, float):
            bad.append(f"{where}: type {type(a).__name__} vs {type(b).__name__}")
            return math.inf
        d = _num_diff(a, b)
        if d > TOL:
            bad.append(f"{where}: {a!r} vs {b!r} (rel diff {d:.3g})")
        return d
    if a != b:
        bad.append(f"{where}: {a!r} != {b!r}")
    return 0.0


def run_snapshot(tree: Path, out: Path, quick: bool) -> None:
    cmd = [sys.executable, __file__, "--snapshot", str(out), "--tree", str(tree)] + (["--quick"] if quick else [])
    r = subprocess.run(cmd, cwd=tree)
    if r.returncode != 0:
        sys.exit(f"snapshot of {tree} failed (exit {r.returncode})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="source tree of the reference (e.g. ../main)")
    ap.add_argument("--quick", action="store_true", help="60 trials per data set instead of 300")
    ap.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)  # internal: write one tree's outputs
    ap.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.snapshot:
        snapshot(args.tree.resolve(), args.snapshot, args.quick)
        return 0
    if not args.baseline:
        ap.error("--baseline TREE is required")
    base = Path(args.baseline).resolve()
    with tempfile.TemporaryDirectory() as d:
        a, b = Path(d) / "base.pkl", Path(d) / "new.pkl"
        run_snapshot(base, a, args.quick)
        run_snapshot(ROOT, b, args.quick)
        old, new = pickle.loads(a.read_bytes()), pickle.loads(b.read_bytes())
    bad: list[str] = []
    if set(old) != set(new):
        bad.append(f"items differ: {sorted(set(old) ^ set(new))}")
    groups: dict[str, float] = {}
    for key in sorted(set(old) & set(new)):
        worst = compare_values(old[key], new[key], key, bad)
        kind = key.split("/")[-1]
        group = f"{key.split('/')[0]} {kind}"
        groups[group] = max(groups.get(group, 0.0), worst)
    print(f"oracle: {base} (baseline) vs {ROOT}; {len(old)} items")
    for g, worst in groups.items():
        print(f"  {g:34s} worst relative difference {worst:.2e}  {'ok' if worst <= TOL else 'DIFFERENT'}")
    for line in bad[:20]:
        print(f"  MISMATCH {line}")
    print("oracle: " + ("SAME (all within 1e-12, text and integers exact)" if not bad else f"{len(bad)} mismatches"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
