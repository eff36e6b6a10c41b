"""Issue 22 proof: the seven hand-made mutants that the suite let through, each applied ALONE to a
scratch copy of the working tree (``out/mutants22/work``; the repository is never touched), and
the fast tests of its area run against it. Prints which tests fail for each mutant.

Usage: ``python -m tests.support.mutants_issue22 [--tests-at main] [--only NAME]``. ``--tests-at REV``
runs the tests of that revision instead (``main``: the suite before issue 22, which lets them all
through). The kernel mutants run with ``NUMBA_DISABLE_JIT=1`` (no recompile per mutant) unless
``--jit``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.mutation_run import ROOT, SHARED_DATA, _copy_tree

OUT = ROOT / "out" / "mutants22"
KERNEL_TESTS = ("tests/core/test_rule_edges.py", "tests/core/test_kernel.py", "tests/core/test_backtest.py")
LIVE_TESTS = ("tests/live/test_rule_edges_live.py", "tests/live/test_live_units.py", "tests/live/test_live_engine.py")


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str
    path: str
    edits: tuple[tuple[str, str], ...]  # (original, replacement), each original found exactly once
    tests: tuple[str, ...]
    jit_free: bool = False  # may run with NUMBA_DISABLE_JIT=1


_L_SEND = ('                cid = client_id(symbol, bar_open_ms, side, "L", attempt)\n                record(cid)\n')
_L_CALL = '                    info = self.account.place_order(cid, side, "LIMIT_MAKER", qty, price)\n'
MUTANTS = (
    Mutant("entry_le", "R12", "ethbtc/kernel.py", (("if ratio < -entry:", "if ratio <= -entry:"),), KERNEL_TESTS, True),
    Mutant("maxdd_gt", "R24", "ethbtc/kernel.py",
           (("1.0 - total / state[S_PEAK] >= prm[P_MAXDD]", "1.0 - total / state[S_PEAK] > prm[P_MAXDD]"),),
           KERNEL_TESTS, True),
    Mutant("daily_lt", "R25", "ethbtc/kernel.py", (("if total <= floor:", "if total < floor:"),), KERNEL_TESTS, True),
    Mutant("day_of_close", "R9/R25", "ethbtc/strategy.py",
           (("(open_ms // MS_PER_DAY).astype(np.float64)",
             "((open_ms + bar_minutes * 60_000) // MS_PER_DAY).astype(np.float64)"),
            ("float(open_ms // MS_PER_DAY)", "float((open_ms + self.bar_minutes * 60_000) // MS_PER_DAY)")),
           KERNEL_TESTS, True),
    Mutant("day_of_close_backtest_only", "R9/R25", "ethbtc/strategy.py",
           (("(open_ms // MS_PER_DAY).astype(np.float64)",
             "((open_ms + bar_minutes * 60_000) // MS_PER_DAY).astype(np.float64)"),), KERNEL_TESTS, True),
    Mutant("day_of_close_live_only", "R9/R25/R30", "ethbtc/strategy.py",
           (("float(open_ms // MS_PER_DAY)", "float((open_ms + self.bar_minutes * 60_000) // MS_PER_DAY)"),),
           KERNEL_TESTS, True),
    Mutant("fee_reserve_1", "R32", "ethbtc/live/orders.py",
           (('FEE_RESERVE = Decimal("0.999")', 'FEE_RESERVE = Decimal("1")'),), LIVE_TESTS),
    Mutant("limit_id_not_recorded", "R31", "ethbtc/live/orders.py",
           ((_L_SEND, _L_SEND.replace("                record(cid)\n", "")),), LIVE_TESTS),
    Mutant("limit_id_recorded_after_send", "R31", "ethbtc/live/orders.py",
           ((_L_SEND, _L_SEND.replace("                record(cid)\n", "")),
            (_L_CALL, _L_CALL + "                    record(cid)\n")), LIVE_TESTS),
    Mutant("pbo_strict", "CSCV", "ethbtc/research/overfit.py",
           (("pbo=float((logits <= 0).mean())", "pbo=float((logits < 0).mean())"),),
           ("tests/core/test_rule_edges.py", "tests/research/test_overfit.py"), True),
)


def apply(work: Path, m: Mutant) -> str:
    target = work / m.path
    original = (ROOT / m.path).read_text()
    text = original
    for old, new in m.edits:
        if text.count(old) != 1:
            raise SystemExit(f"mutant {m.name}: {old!r} found {text.count(old)} times in {m.path} (code changed?)")
        text = text.replace(old, new)
    target.write_text(text)
    return original


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests-at", metavar="REV", help="run the tests of this git revision (e.g. main)")
    ap.add_argument("--only", help="comma-separated mutant names")
    ap.add_argument("--jit", action="store_true", help="keep numba compilation on for the kernel mutants")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]
    work = OUT / "work"
    _copy_tree(work, args.tests_at)
    env = os.environ | {"ETHBTC_SHARED_DATA": str(SHARED_DATA), "PYTHONDONTWRITEBYTECODE": "1"}
    caught = 0
    for m in chosen:
        original = apply(work, m)
        tests = [t for t in m.tests if (work / t).exists()]
        run_env = env | ({"NUMBA_DISABLE_JIT": "1"} if m.jit_free and not args.jit else {})
        try:
            res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests],
                                 cwd=work, env=run_env, capture_output=True, text=True)
        finally:
            (work / m.path).write_text(original)
        failed = sorted(set(re.findall(r"^FAILED (\S+?)(?: - .*)?$", res.stdout, flags=re.M)))
        caught += bool(failed)
        verdict = "KILLED by " + ", ".join(failed) if failed else ("SURVIVED" if res.returncode == 0 else
                                                                    f"pytest exit {res.returncode}")
        print(f"{m.name} ({m.rule}, {m.path}): {verdict}", flush=True)
    print(f"{caught}/{len(chosen)} mutants killed")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
