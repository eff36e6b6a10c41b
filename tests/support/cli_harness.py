"""Run the project's scripts the way a user does, and judge how they fail.

``run_script`` starts a script in a subprocess (optionally under a file-size limit, or as a
server that is stopped with SIGTERM once it prints a ready line); ``run_inprocess`` calls its
``main`` under :func:`ethbtc.cli.run_main` for cheap wide coverage. Both return a :class:`Run`.
``error_line`` asserts the failure contract of the developers' guide: exit code 2, no
traceback, exactly one ``error: ...`` line (``warning:`` lines before it are fine).
``output_problems`` lists output files a failed run left behind or changed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "previous complete output\n"

# exec the command under RLIMIT_FSIZE: writes past the limit fail with EFBIG, like a full disk
# (Python ignores SIGXFSZ, and an ignored signal stays ignored across exec)
_FSIZE_WRAPPER = ("import os, resource, sys; n = int(sys.argv[1]); "
                  "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
                  "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")

# never let a developer's real keys, .env or mirror settings leak into a test run
_SCRUB = ("BINANCE_KEY", "BINANCE_SECRET", "BINANCE_BASE_URL", "VISION_BASE_URL", "SIM_API_KEY",
          "SIM_API_SECRET")


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"argv={self.argv}\nrc={self.returncode}\nstdout={self.stdout[-800:]!r}\nstderr={self.stderr[-2000:]!r}"


def script_argv(cmd: Sequence[str]) -> list[str]:
    """('ethbtc_accum_bot.py', 'backtest') -> [path/to/ethbtc_accum_bot.py, 'backtest']; '-m x' as is."""
    first, *rest = cmd
    return [str(ROOT / first) if first.endswith(".py") else first, *rest]


def clean_env(extra: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONPATH"] = str(ROOT)
    env["DOTENV_PATH"] = str((cwd or ROOT) / "no-such.env")
    env.update(extra or {})
    return env


def run_script(cmd: Sequence[str], argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
               timeout: float = 180, fsize_limit: int | None = None, ready: str | None = None) -> Run:
    """Run ``python <cmd> <argv>`` in ``cwd``. ``ready``: a server; SIGTERM it after it prints that."""
    full = [*script_argv(cmd), *argv]
    if fsize_limit is not None:
        full = ["-c", _FSIZE_WRAPPER, str(fsize_limit), *full]
    args = [sys.executable, *full]
    environment = clean_env(env, cwd)
    if ready is None:
        res = subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
        return Run(list(argv), res.returncode, res.stdout, res.stderr)
    proc = subprocess.Popen(args, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed: list[str] = []
    head: list[str] = []

    def kill() -> None:
        stopped = bool(head) and ready in head[-1]  # the loop below sends SIGTERM right after that line
        killed.append(f"\n[harness: still running {timeout:g} s after start"
                      f"{' (SIGTERM sent after the ready line)' if stopped else ''}; killed]")
        proc.kill()

    killer = threading.Timer(timeout, kill)
    killer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends at EOF when the process exits early (an error)
            head.append(line)
            if ready in line:
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=timeout)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Run(list(argv), proc.returncode, "".join(head) + out, err + "".join(killed))


def run_inprocess(module: str, argv: Sequence[str], *, cwd: Path) -> Run:
    """``run_main(module.main, argv)`` with captured output; an escaping exception becomes rc 1
    plus its traceback on stderr, exactly what the interpreter would print."""
    from ethbtc.cli import run_main

    main: Callable[[Sequence[str] | None], int | None] = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = run_main(main, list(argv))
            except SystemExit as exc:  # argparse --help / error
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - recorded as the interpreter would show it
                traceback.print_exc(file=err)
                rc = 1
    finally:
        os.chdir(old)
    return Run(list(argv), rc, out.getvalue(), err.getvalue())


def error_line(run: Run) -> str:
    """The single ``error: ...`` line of a failed run; asserts the whole failure contract:
    exit code 2, no traceback, stderr ends with the only ``error: `` line (warnings and
    progress lines may come before it)."""
    assert "Traceback" not in run.stderr, run.describe()
    assert run.returncode == 2, run.describe()
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines, run.describe()
    assert lines[-1].startswith("error: "), run.describe()
    assert not any(line.startswith("error") for line in lines[:-1]), run.describe()
    return lines[-1]


def seed_outputs(paths: Sequence[Path]) -> None:
    """Give the first output an earlier complete version (must survive a failure); leave the rest absent."""
    for i, path in enumerate(paths):
        if i == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(SENTINEL)


def output_problems(folder: Path, seeded: Sequence[Path], allowed: Sequence[str] = ()) -> list[str]:
    """What a failed run wrongly left in ``folder``: changed earlier outputs, new outputs, temp files.

    ``allowed``: glob patterns (relative to ``folder``) of files a failed run may leave, e.g. a
    verified download cache.
    """
    problems = [f"earlier output changed: {p}" for p in seeded if not p.is_file() or p.read_text() != SENTINEL]
    keep = {p.resolve() for p in seeded} | {p.resolve() for pat in allowed for p in folder.glob(pat)}
    if folder.exists():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.resolve() not in keep:
                problems.append(f"left behind: {path.relative_to(folder)} ({path.stat().st_size} bytes)")
    return problems
