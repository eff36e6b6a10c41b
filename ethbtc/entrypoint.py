"""Container entry point: ``python -m ethbtc.entrypoint [command] [flags...]`` (the image's ENTRYPOINT).

- no command, or flags only: the live executor (``live_executor.py <flags>``);
- a short command: ``live``, ``backtest`` / ``optimize`` / ``selftest`` (ethbtc_accum_bot.py),
  ``sim`` (paper exchange), ``sample`` (sample candles), ``healthcheck``, ``alerting`` (render the
  Alertmanager config from .env);
- any toolkit script by name, with or without ``.py`` (``download_vision.py``, ``wf_pick``...);
- anything else found on PATH (``python``, ``sh``) runs unchanged; ``help`` lists the commands.

The chosen program replaces this process (exec), so it receives SIGTERM from ``docker stop``.
Before the executor starts, its state folder is checked: inside the container it must be on the
``/data`` volume (else state is lost on every re-create) and writable by the container's user.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXECUTOR = "live_executor.py"
DATA_DIR = Path("/data")

COMMANDS: dict[str, tuple[str, ...]] = {
    "live": (EXECUTOR,),
    "backtest": ("ethbtc_accum_bot.py", "backtest"),
    "optimize": ("ethbtc_accum_bot.py", "optimize"),
    "selftest": ("ethbtc_accum_bot.py", "selftest"),
    "sim": ("-m", "ethbtc.sim"),
    "sample": ("-m", "ethbtc.data.sample"),
    "healthcheck": ("-m", "ethbtc.monitoring.healthcheck"),
    "alerting": ("-m", "ethbtc.monitoring.alerting"),
}
_MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)


class EntryError(Exception):
    """A command that cannot run; printed as one ``error:`` line, exit code 2."""


def scripts(root: Path | None = None) -> list[str]:
    """Runnable toolkit scripts: top-level ``*.py`` files with a ``__main__`` guard."""
    root = root or ROOT
    return sorted(p.name for p in root.glob("*.py") if _MAIN_GUARD.search(p.read_text(encoding="utf-8")))


def resolve(argv: Sequence[str], root: Path | None = None) -> list[str]:
    """The full argv to exec for the container arguments ``argv`` (scripts looked up in ``root``)."""
    root = root or ROOT
    args = list(argv)
    if not args or args[0].startswith("-"):
        args = ["live", *args]
    name, rest = args[0], args[1:]
    if name in COMMANDS:
        target = COMMANDS[name]
    else:
        script = name if name.endswith(".py") else f"{name}.py"
        if (root / script).is_file() and script in scripts(root):
            target = (script,)
        elif shutil.which(name):
            return [name, *rest]
        else:
            raise EntryError(f"unknown command {name!r}; run the image with 'help' to list commands")
    if target[0] != "-m":
        if not (root / target[0]).is_file():
            raise EntryError(f"{target[0]} is not part of this image (rebuild it from a current checkout)")
        target = (str(root / target[0]), *target[1:])
    return [sys.executable, *target, *rest]


def state_path(rest: Sequence[str]) -> Path:
    """The executor's state file: ``--state`` flag, else ``STATE_FILE``, else run_state/state.json."""
    for i, arg in enumerate(rest):
        if arg == "--state" and i + 1 < len(rest):
            return Path(rest[i + 1])
        if arg.startswith("--state="):
            return Path(arg.split("=", 1)[1])
    return Path(os.environ.get("STATE_FILE") or "run_state/state.json")


def check_state_dir(path: Path, in_container: bool) -> None:
    """Refuse a state location that would be lost (outside /data) or cannot be written."""
    path = path if path.is_absolute() else Path.cwd() / path
    if in_container and DATA_DIR not in path.parents:
        raise EntryError(f"state file {path} is outside the {DATA_DIR} volume, so it would be lost when the "
                         f"container is re-created; use STATE_FILE={DATA_DIR}/state.json")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        uid, gid = os.getuid(), os.getgid()
        raise EntryError(f"state folder {folder} is not writable by uid {uid} (gid {gid}); on the host run "
                         f"'sudo chown -R {uid}:{gid} run_state', or set BOT_UID/BOT_GID in .env to the "
                         "owner of run_state ('id -u' / 'id -g')")


def usage() -> str:
    names = ", ".join(COMMANDS)
    return (f"usage: [command] [flags...]   (no command: {EXECUTOR} with the given flags)\n"
            f"commands: {names}\nscripts: {', '.join(scripts())}\n"
            "anything else on PATH (python, sh) runs unchanged; '<command> --help' shows its flags")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["help"], ["commands"]):
        print(usage())
        return 0
    try:
        cmd = resolve(args)
        if cmd[1:2] == [str(ROOT / EXECUTOR)] and not {"-h", "--help"} & set(cmd):
            check_state_dir(state_path(cmd[2:]), bool(os.environ.get("ETHBTC_CONTAINER")))
    except EntryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
