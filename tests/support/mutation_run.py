"""Mutation testing of the money-critical modules (issue 22): ``make mutation``.

Runs cosmic-ray over each module in ``MODULES`` against the fast tests of its own area, in a
scratch copy of the working tree (``out/mutation/work``: a crash mid-run can never leave a
mutant in the repository), then writes ``out/mutation/report.md`` and ``report.json``: per
module the mutants generated, killed, survived and marked equivalent, the score
killed / (generated - equivalent), and every survivor with its line and diff.

Equivalent mutants (no test can tell them apart from the original) are listed with a one-line
reason in ``tests/support/mutation_equivalent.toml``, matched by module, operator and the stripped
source line (and, for a line as common as ``break``, the line before it: ``after``), so the
list survives edits elsewhere in the file.

The operator set is cosmic-ray's, trimmed to one natural replacement per operator (``+``<->``-``,
``*``<->``/``, boundary shifts ``<``<->``<=``, ``>``<->``>=``, ``==``<->``!=``, ``is``<->``is not``),
plus ``not`` added/removed, ``and``<->``or``, True<->False, numbers +-1, break<->continue and
zero-iteration loops. Exotic swaps (``+`` -> ``<<`` ...) are excluded: they are almost always
killed by any test that runs the line and only multiply the run time.

Usage: ``python -m tests.support.mutation_run [--modules kernel,overfit] [--report-only]``. Not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "mutation"
EQUIVALENT = ROOT / "tests" / "support" / "mutation_equivalent.toml"
SHARED_DATA = Path(os.environ.get("ETHBTC_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()


@dataclass(frozen=True)
class Target:
    path: str
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()
    jit: bool = True  # False: NUMBA_DISABLE_JIT=1 (no recompile per mutant; the kernel runs as Python)
    timeout: float = 120.0


_SLOW_ENGINE = "tests/live/test_live_engine.py::test_partial_fills_are_accounted_exactly_then_the_rest_goes_market"
MODULES: dict[str, Target] = {
    # kernel: test_fillmodel and test_rule_edges_kernel cover its intrabar fill branch (SPEC v3)
    "kernel": Target("ethbtc/kernel.py", ("tests/core/test_rule_edges.py", "tests/core/test_rule_edges_kernel.py",
                                          "tests/core/test_fillmodel.py", "tests/core/test_kernel.py", "tests/core/test_backtest.py"),
                     jit=False, timeout=60.0),
    "indicators": Target("ethbtc/indicators.py", ("tests/core/test_rule_edges_indicators.py", "tests/core/test_indicators.py",
                                                  "tests/core/test_rule_edges.py",
                                                  "tests/core/test_kernel.py"), jit=False, timeout=60.0),
    "config": Target("ethbtc/config.py", ("tests/core/test_rule_edges_config.py", "tests/core/test_config.py"), timeout=30.0),
    "orders": Target("ethbtc/live/orders.py", ("tests/live/test_rule_edges_orders.py", "tests/live/test_live_units.py",
                                               "tests/live/test_rule_edges_live.py",
                                               "tests/live/test_live_engine.py"), deselect=(_SLOW_ENGINE,), timeout=60.0),
    "engine": Target("ethbtc/live/engine.py", ("tests/live/test_rule_edges_engine.py", "tests/live/test_live_units.py",
                                               "tests/live/test_rule_edges_live.py", "tests/live/test_live_engine.py"),
                     deselect=(_SLOW_ENGINE,), timeout=60.0),
    "filters": Target("ethbtc/live/filters.py", ("tests/live/test_live_units.py", "tests/live/test_rule_edges_live.py")),
    # scoring: the research tests that call it directly (the whole of test_research_search and
    # test_wf_pick takes 30 s a mutant, nearly all of it in optimiser runs that do not score)
    "scoring": Target("ethbtc/research/scoring.py", ("tests/research/test_rule_edges_scoring.py",
                                                     *(f"tests/research/test_research_search.py::{t}" for t in (
                                                         "test_robust_score_formula_is_relative_to_basis",
                                                         "test_selection_takes_best_robust_score_within_top_quantile_"
                                                         "ties_fewer_turns",
                                                         "test_selection_never_picks_a_trial_without_test_turns_"
                                                         "while_one_trades",
                                                         "test_dominating_penalty_term_is_named_with_the_lambda_"
                                                         "that_balances_it")))),
    "overfit": Target("ethbtc/research/overfit.py", ("tests/research/test_overfit.py", "tests/core/test_rule_edges.py")),
}

_BIN = r"core/ReplaceBinaryOperator_"
_CMP = r"core/ReplaceComparisonOperator_"
EXCLUDE_OPERATORS = [
    _BIN + r"(?!Add_Sub$|Sub_Add$|Mul_Div$|Div_Mul$|FloorDiv_Div$|Mod_FloorDiv$|Pow_Mul$)",
    _CMP + r"(?!Lt_LtE$|LtE_Lt$|Gt_GtE$|GtE_Gt$|Eq_NotEq$|NotEq_Eq$|Is_IsNot$|IsNot_Is$)",
    r"core/ReplaceUnaryOperator_(?!USub_UAdd$|Delete_Not$)",
    r"core/ExceptionReplacer", r"core/RemoveDecorator", r"core/VariableReplacer", r"core/VariableInserter",
]
# NumberReplacer (every literal +-1) doubles the run time, mostly on slot numbers and defaults:
# opt in with --numbers.
NUMBERS = r"core/NumberReplacer"


def _copy_tree(dst: Path, tests_at: str | None = None) -> None:
    """The tracked and untracked (not ignored) files of the working tree, as they are now; with
    ``tests_at`` the tests folder as it is at that git revision (a "before" score)."""
    if dst.exists():
        shutil.rmtree(dst)
    files = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    if tests_at:
        shutil.rmtree(dst / "tests")
        tar = subprocess.run(["git", "archive", tests_at, "tests"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dst)], input=tar, check=True)


def _config(t: Target, numbers: bool = False) -> str:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *t.tests]
    cmd += [f"--deselect={d}" for d in t.deselect]
    ops = ", ".join(json.dumps(e) for e in EXCLUDE_OPERATORS + ([] if numbers else [NUMBERS]))
    return (f'[cosmic-ray]\nmodule-path = "{t.path}"\ntimeout = {t.timeout}\nexcluded-modules = []\n'
            f"test-command = {json.dumps(' '.join(cmd))}\n\n[cosmic-ray.distributor]\nname = \"local\"\n\n"
            f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{ops}]\n")


def _drop_survivors(db_path: Path) -> int:
    """Forget the survivors' results so ``exec`` tests them again (the killed stay killed: the
    suite only grows, so a mutant an earlier suite killed is killed by the larger one too)."""
    from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db
    from cosmic_ray.work_item import TestOutcome

    with use_db(str(db_path), WorkDB.Mode.open) as db, db._session_maker.begin() as session:
        q = session.query(WorkResultStorage).where(WorkResultStorage.test_outcome == TestOutcome.SURVIVED)
        return int(q.delete())


NOT_SAMPLED = "not in the sample (--sample)"


def _sample(db_path: Path, n: int, seed: int = 22) -> int:
    """Keep a seeded random ``n`` of the pending mutants; the others are recorded as skipped
    with ``NOT_SAMPLED`` (the report counts them apart). Returns how many were left out. The
    draw is over the mutants in source order (line, column, operator, occurrence), not over
    cosmic-ray's random job ids, so the same seed picks the same mutants after a new init."""
    import random

    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(db_path), WorkDB.Mode.open) as db:
        items = sorted(db.pending_work_items, key=lambda w: (w.mutations[0].start_pos, w.mutations[0].operator_name,
                                                             w.mutations[0].occurrence))
        ids = [item.job_id for item in items]
        if len(ids) <= n:
            return 0
        keep = set(random.Random(seed).sample(ids, n))
        drop = [i for i in ids if i not in keep]
        db.set_multiple_results(drop, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=NOT_SAMPLED))
        return len(drop)


def _unsample(db_path: Path) -> int:
    """Return the mutants an earlier ``--sample`` left out to the pending ones (``--resume``)."""
    from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db

    with use_db(str(db_path), WorkDB.Mode.open) as db, db._session_maker.begin() as session:
        return int(session.query(WorkResultStorage).where(WorkResultStorage.output == NOT_SAMPLED).delete())


def run_module(name: str, work: Path, retest: bool = False, numbers: bool = False, sample: int = 0,
               resume: bool = False) -> float:
    t = MODULES[name]
    missing = [p for p in t.tests if not (work / p.split("::")[0]).exists()]
    t = Target(t.path, tuple(p for p in t.tests if p not in missing), t.deselect, t.jit, t.timeout)
    cfg = OUT / f"{name}.toml"
    db = OUT / f"{name}.sqlite"
    cfg.write_text(_config(t, numbers))
    if not (retest or resume):
        db.unlink(missing_ok=True)
    env = os.environ | {"ETHBTC_SHARED_DATA": str(SHARED_DATA), "PYTHONDONTWRITEBYTECODE": "1"}
    if not t.jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    cr = [str(Path(sys.executable).parent / "cosmic-ray")]
    started = time.monotonic()
    if retest:
        print(f"mutation: {name}: re-testing {_drop_survivors(db)} survivors", flush=True)
    elif resume:  # an interrupted or sampled session: its results stay, (a sample of) the rest run
        print(f"mutation: {name}: {_unsample(db)} mutants outside the earlier sample are pending again", flush=True)
        if sample:
            print(f"mutation: {name}: {_sample(db, sample)} pending mutants left out of a sample of {sample} more",
                  flush=True)
    else:
        subprocess.run([*cr, "init", str(cfg), str(db)], cwd=work, env=env, check=True)
        subprocess.run([sys.executable, "-m", "cosmic_ray.tools.filters.operators_filter", str(db), str(cfg)],
                       cwd=work, env=env, check=True)
        if sample:
            print(f"mutation: {name}: {_sample(db, sample)} mutants left out of a random sample of {sample}",
                  flush=True)
    base = subprocess.run([*cr, "baseline", str(cfg)], cwd=work, env=env)
    if base.returncode != 0:
        raise SystemExit(f"mutation: the tests of {name} fail on the unmutated code; fix them first")
    subprocess.run([*cr, "exec", str(cfg), str(db)], cwd=work, env=env, check=True)
    return time.monotonic() - started


def _equivalents() -> list[dict[str, str]]:
    if not EQUIVALENT.exists():
        return []
    return tomllib.loads(EQUIVALENT.read_text())["equivalent"]


def summarise(name: str, seconds: float | None) -> dict[str, object]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    t = MODULES[name]
    src = (ROOT / t.path).read_text().splitlines()
    eq = [e for e in _equivalents() if e["module"] == t.path]
    killed = survived = equivalent = pending = unsampled = 0
    survivors: list[dict[str, object]] = []
    with use_db(str(OUT / f"{name}.sqlite"), WorkDB.Mode.open) as db:
        done = {item.job_id for item, _ in db.completed_work_items}
        pending = sum(1 for item in db.work_items if item.job_id not in done)
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                unsampled += result.output == NOT_SAMPLED
                continue
            m = item.mutations[0]
            line_no = m.start_pos[0]
            line = src[line_no - 1].strip() if line_no <= len(src) else ""
            if result.test_outcome != TestOutcome.SURVIVED:
                killed += 1
                continue
            before = src[line_no - 2].strip() if line_no >= 2 else ""
            reason = next((e["reason"] for e in eq if e["operator"] == m.operator_name and e["line"] == line
                           and e.get("after", before) == before), None)
            if reason is not None:
                equivalent += 1
            else:
                survived += 1
            survivors.append({"line": line_no, "operator": m.operator_name, "source": line, "equivalent": reason,
                              "diff": "\n".join(x for x in (result.diff or "").splitlines()
                                                if x.startswith(("+", "-")) and not x.startswith(("+++", "---")))})
    generated = killed + survived + equivalent
    score = killed / (generated - equivalent) if generated > equivalent else float("nan")
    return {"module": t.path, "generated": generated, "killed": killed, "survived": survived,
            "equivalent": equivalent, "pending": pending, "not_sampled": unsampled, "score": round(score, 4), "seconds": seconds,
            "survivors": sorted(survivors, key=lambda s: (s["line"], s["operator"]))}


def write_report(rows: list[dict[str, object]]) -> None:
    (OUT / "report.json").write_text(json.dumps(rows, indent=1))
    out = ["# Mutation report (cosmic-ray; `make mutation`)", "",
           "| module | generated | killed | survived | equivalent | score | pending | not sampled | minutes |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    tot = {k: 0 for k in ("generated", "killed", "survived", "equivalent", "pending", "not_sampled")}
    for r in rows:
        for k in tot:
            tot[k] += int(r.get(k, 0))  # type: ignore[call-overload]
        mins = f"{r['seconds'] / 60:.1f}" if r["seconds"] else "-"  # type: ignore[operator]
        out.append(f"| {r['module']} | {r['generated']} | {r['killed']} | {r['survived']} | {r['equivalent']} "
                   f"| {r['score']:.1%} | {r['pending']} | {r.get('not_sampled', 0)} | {mins} |")
    den = tot["generated"] - tot["equivalent"]
    out.append(f"| **all** | {tot['generated']} | {tot['killed']} | {tot['survived']} | {tot['equivalent']} "
               f"| {tot['killed'] / den if den else float('nan'):.1%} | {tot['pending']} | {tot['not_sampled']} | |")
    out += ["", "score = killed / (generated - equivalent); generated counts the tested mutants only (with "
            "--sample, a seeded random subset; the rest are under 'not sampled'). Survivors:", ""]
    for r in rows:
        for s in r["survivors"]:  # type: ignore[attr-defined]
            tag = f"equivalent: {s['equivalent']}" if s["equivalent"] else "SURVIVED"
            diff = s["diff"].replace("\n", " / ")
            out.append(f"- `{r['module']}:{s['line']}` {s['operator'].removeprefix('core/')} ({tag}): `{diff}`")
    (OUT / "report.md").write_text("\n".join(out) + "\n")
    print("\n".join(out[:4 + len(rows) + 1]))
    print(f"report: {OUT / 'report.md'}")


def main(argv: list[str] | None = None) -> int:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", default=",".join(MODULES),
                    help=f"comma-separated subset of {','.join(MODULES)} (default: all)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the report from the sessions on disk")
    ap.add_argument("--retest-survivors", action="store_true",
                    help="keep the sessions on disk and test only their survivors again (after adding tests)")
    ap.add_argument("--resume", action="store_true",
                    help="continue interrupted sessions on disk (with --sample N: only N more of their pending mutants)")
    ap.add_argument("--numbers", action="store_true", help="also mutate number literals (about twice the time)")
    ap.add_argument("--sample", type=int, default=0, metavar="N",
                    help="test a seeded random N of each module's mutants (when a full run does not fit)")
    ap.add_argument("--tests-at", metavar="REV", help="use the tests of this git revision (e.g. main: the score before)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"session and report folder (default {OUT})")
    args = ap.parse_args(argv)
    OUT = args.out.resolve()
    names = [m.strip() for m in args.modules.replace(" ", ",").split(",") if m.strip()]
    unknown = [m for m in names if m not in MODULES]
    if unknown:
        print(f"mutation: unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    timing_file = OUT / "seconds.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    if not args.report_only:
        work = OUT / "work"
        _copy_tree(work, args.tests_at)
        for name in names:
            if (args.retest_survivors or args.resume) and not (OUT / f"{name}.sqlite").exists():
                print(f"mutation: no session for {name} in {OUT} to re-test; run it in full first", file=sys.stderr)
                return 2
            spent = run_module(name, work, retest=args.retest_survivors, numbers=args.numbers, sample=args.sample,
                               resume=args.resume)
            again = args.retest_survivors or args.resume
            timing[name] = spent if not again else timing.get(name, 0.0) + spent
            timing_file.write_text(json.dumps(timing))
    done = [m for m in MODULES if (OUT / f"{m}.sqlite").exists()]
    write_report([summarise(m, timing.get(m)) for m in done])
    return 0


if __name__ == "__main__":
    sys.exit(main())
