"""``make reliability-report``: run the issue-9 reliability scenarios and print one table.

Scenarios reuse the tests' own runners (no second harness): the in-process fault replay
(tests/live/test_live_faults.py), the chaos crash replay with mixed faults + kill -9 + a tripping
breaker (tests/live/test_live_crash.py), the secret-hygiene run (tests/live/test_live_secrets.py) and the
RSS/fd soak (tests/live/test_live_soak.py). Short sizes by default (about two minutes); ``--long``
uses the ``make soak`` sizes (50,000-bar soak, 60 kill -9 restarts; an hour or more).
A scenario whose invariant check fails is counted as a violation and the exit code is 1.

    python -m tests.support.reliability_report [--long]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ethbtc.sim import SimServer, serve_sim
from tests.live.test_live_crash import chaos_crash
from tests.live.test_live_faults import check_invariants, run_chaos
from tests.live.test_live_secrets import hygiene_run
from tests.live.test_live_soak import check_soak, soak_run
from tests.support.live_harness import scratch_dir
from tests.support.sim_fixtures import DEFAULT_BALANCES, SIM_KEY, SIM_SECRET, make_candles

Row = dict[str, Any]


@contextlib.contextmanager
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    """The ``sim_factory`` fixture of tests/support/sim_fixtures.py, outside pytest."""
    with contextlib.ExitStack() as stack:
        def start(candles: Any = None, **options: Any) -> SimServer:
            options.setdefault("balances", dict(DEFAULT_BALANCES))
            options.setdefault("api_key", SIM_KEY)
            options.setdefault("api_secret", SIM_SECRET)
            options.setdefault("start", 200)
            return stack.enter_context(serve_sim(make_candles() if candles is None else candles, **options))
        yield start


def faults(factory: Callable[..., SimServer], folder: Path, long: bool) -> Row:
    bars, scale = (1500, 2.0) if long else (150, 1.0)
    out = run_chaos(factory, folder, bars, seed=23 if long else 11, scale=scale)
    stats = check_invariants(out["sim"], folder, bars, out["injected"])  # type: ignore[arg-type]
    return {"faults": stats["faults"], "restarts": 0, "bars": bars, "fills": stats["fills"]}


def chaos(factory: Callable[..., SimServer], folder: Path, long: bool) -> Row:
    out = chaos_crash(factory, folder, restarts=60 if long else 8, seed=43 if long else 41)
    kills = out["kills"]
    return {"faults": sum(out["injected"].values()), "restarts": kills["test"] + kills["failpoint"] + kills["gave_up"],
            "bars": out["stats"]["bars"], "fills": out["stats"]["fills"],
            "note": f"breaker tripped={out['breaker']['seen']} lost={out['breaker']['lost']}"}


def secrets(factory: Callable[..., SimServer], folder: Path, long: bool) -> Row:
    out = hygiene_run(factory, folder, bars=30 if long else 6)
    hits = out["hits"]
    assert hits == [], "\n".join(map(str, hits))
    return {"faults": "5xx/429 + bad sig/key", "restarts": len(out["codes"]) - 1, "bars": "-", "fills": "-",
            "note": f"{out['sources']} outputs + files scanned, 0 hits"}


def soak(factory: Callable[..., SimServer], folder: Path, long: bool) -> Row:
    stats = soak_run(factory, folder, bars=50_000 if long else 1500, bars_per_sec=80.0 if long else 60.0)
    check_soak(stats)
    return {"faults": 0, "restarts": 0, "bars": int(stats["bars"]), "fills": int(stats["fills"]),
            "rss": f"{stats['rss_start_mb']:.0f}->{stats['rss_end_mb']:.0f} MB, "
                   f"{stats['rss_slope_mb_per_1k']:+.3f} MB/1k bars, fd +{stats['fd_growth']:.0f}"}


SCENARIOS = {"fault replay (in-process)": faults, "chaos: mixed faults + kill -9": chaos,
             "secret hygiene": secrets, "soak: RSS/fd": soak}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reliability_report", description=__doc__.splitlines()[0])
    p.add_argument("--long", action="store_true", help="make soak sizes (50,000-bar soak, 60 kill -9 restarts)")
    p.add_argument("--only", action="append", choices=list(SCENARIOS), help="run just these scenarios")
    p.add_argument("--verbose", action="store_true", help="show the in-process executor's retry/fault warnings")
    args = p.parse_args(argv)
    if not args.verbose:  # hundreds of expected "retry 1/7" lines would bury the table
        logging.disable(logging.WARNING)
    rows: list[tuple[str, Row]] = []
    for name, run in SCENARIOS.items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        with scratch_dir() as d, sim_factory() as factory:
            try:
                row = run(factory, Path(d), args.long) | {"violations": 0}
            except AssertionError as exc:
                row = {"violations": 1, "note": str(exc).splitlines()[0][:80]}
        rows.append((name, row | {"secs": f"{time.monotonic() - t0:.0f}"}))
        print(f"... {name}: done", file=sys.stderr, flush=True)
    head = ("scenario", "faults injected", "restarts", "bars decided", "fills", "violations", "RSS growth", "secs",
            "notes")
    keys = ("faults", "restarts", "bars", "fills", "violations", "rss", "secs", "note")
    table = [head] + [(name, *(str(row.get(k, "-")) for k in keys)) for name, row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    return 1 if any(row["violations"] for _, row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
