"""Read the packaging files the way Docker and Compose do, for tests that run without an engine.

- :func:`dockerfile` -- the parsed ``Dockerfile`` (dockerfile-parse);
- :func:`build_image_tree` -- the files the Dockerfile's COPY steps put under ``/app``, honouring
  ``.dockerignore``, copied into a folder (optionally running the pip step in between, in order);
- :func:`compose` / :func:`merged_services` -- compose files, and overlays merged like
  ``docker compose -f a -f b`` does for the keys this project uses;
- :func:`service_argv` -- a service's container arguments (``command`` or the image's ``CMD``);
- :func:`parse_with_own_parser` -- parse those arguments with the target script's own parser.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import importlib.util
import json
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from dockerfile_parse import DockerfileParser

from ethbtc import entrypoint

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ethbtc:local"
APP = "/app"


def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(ROOT / "Dockerfile"))


def instructions(kind: str) -> list[str]:
    return [i["value"] for i in dockerfile().structure if i["instruction"] == kind]


def exec_form(value: str) -> list[str]:
    """A CMD / ENTRYPOINT / HEALTHCHECK CMD value as an argv list (JSON exec form or shell words)."""
    value = value.strip()
    return json.loads(value) if value.startswith("[") else shlex.split(value)


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule for the patterns used here: a pattern excludes a path or anything below it;
    ``**/`` matches at any depth; a ``!`` pattern re-includes (last match wins)."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pat in patterns:
        negate, pat = pat.startswith("!"), pat.lstrip("!").strip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(part, pat[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(p, pat) for p in prefixes)
        if hit:
            result = not negate
    return result


def _copy_step(value: str, app: Path, patterns: list[str]) -> list[str]:
    *sources, dest = shlex.split(value)
    assert not any(s.startswith("--") for s in sources), f"COPY flags not modelled: {value}"
    copied: list[str] = []
    for src in sources:
        matches = sorted(ROOT.glob(src.rstrip("/"))) if any(c in src for c in "*?[") else [ROOT / src.rstrip("/")]
        assert matches and all(m.exists() for m in matches), f"COPY source missing from the repo: {src}"
        for m in matches:
            files = [m] if m.is_file() else [f for f in m.rglob("*") if f.is_file()]
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if ignored(rel, patterns):
                    continue
                inner = f.relative_to(m) if m.is_dir() else Path(f.name)
                target = app / dest / inner if (dest.endswith("/") or m.is_dir()) else app / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
                copied.append((target.relative_to(app)).as_posix())
    return copied


def build_image_tree(app: Path, on_run: Callable[[str, Path], None] | None = None) -> list[str]:
    """Replay WORKDIR/COPY (and, through ``on_run``, RUN) steps in order into ``app`` (= /app).

    Returns the paths copied. ``on_run(value, app)`` sees each RUN step after the WORKDIR is /app
    with exactly the files copied so far -- e.g. the pip step sees only requirements.txt.
    """
    patterns = dockerignore()
    workdir, copied = "/", []
    for ins in dockerfile().structure:
        kind, value = ins["instruction"], ins["value"]
        if kind == "WORKDIR":
            workdir = value.strip()
        elif kind == "COPY":
            assert workdir == APP, "COPY before WORKDIR /app is not modelled"
            copied += _copy_step(value, app, patterns)
        elif kind == "RUN" and on_run is not None and workdir == APP:
            on_run(value, app)
    return copied


def compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def _by_target(volumes: list[str]) -> dict[str, str]:
    return {v.split(":")[1]: v for v in volumes}


def merged_services(*names: str) -> dict[str, dict[str, Any]]:
    """``docker compose -f a -f b`` merge for services: mappings merge, ``volumes`` merge by
    container path, ``ports`` append, other values (command, user...) are replaced."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        for svc, spec in compose(name)["services"].items():
            cur = out.setdefault(svc, {})
            for key, value in spec.items():
                if key == "volumes" and key in cur:
                    cur[key] = list({**_by_target(cur[key]), **_by_target(value)}.values())
                elif key == "ports" and key in cur:
                    cur[key] = cur[key] + value
                elif isinstance(value, dict) and isinstance(cur.get(key), dict):
                    cur[key] = {**cur[key], **value}
                else:
                    cur[key] = value
    return out


def uses_project_image(spec: dict[str, Any]) -> bool:
    return "build" in spec or spec.get("image") == IMAGE


def service_argv(spec: dict[str, Any]) -> list[str]:
    """Arguments the entrypoint receives: the service's ``command``, else the image's CMD."""
    cmd = spec.get("command")
    if cmd is None:
        return exec_form(instructions("CMD")[-1])
    return list(cmd) if isinstance(cmd, list) else shlex.split(cmd)


def _load_script(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_pack_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_with_own_parser(argv: list[str]) -> tuple[str, Any]:
    """Resolve container ``argv`` like the entrypoint, then parse the flags with the target
    program's own parser. Returns (program, namespace); argparse errors raise SystemExit."""
    full = entrypoint.resolve(argv, ROOT)
    assert full[0] == sys.executable, f"{argv} does not resolve to a toolkit program: {full}"
    return parse_python_command(full[1:])


def parse_python_command(words: list[str]) -> tuple[str, Any]:
    """Parse ``script.py flags...`` or ``-m package.module flags...`` (the words after ``python``)
    with that program's own ``build_parser()`` (found beside its ``main``), else through ``main``."""
    if words[0] == "-m":
        program, rest = words[1], words[2:]
        module = importlib.import_module(program)
        if hasattr(module, "__path__"):  # a package runs its __main__ module
            module = importlib.import_module(f"{program}.__main__")
    else:
        path = Path(words[0]) if Path(words[0]).is_absolute() else ROOT / words[0]
        program, rest = path.name, words[1:]
        module = _load_script(path)
    home = sys.modules.get(getattr(getattr(module, "main", None), "__module__", ""), module)
    for owner in (module, home):  # a thin script re-exports main(); its parser lives beside main
        if hasattr(owner, "build_parser"):
            return program, owner.build_parser().parse_args(rest)
    return program, _parse_through_main(module, rest)


class _Parsed(BaseException):
    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


def _parse_through_main(module: Any, argv: list[str]) -> argparse.Namespace:
    """For programs that build their parser inside ``main``: run ``main(argv)`` and stop it right
    after its own ``parse_args`` succeeded (nothing else of the program runs)."""
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        raise _Parsed(real(self, args, namespace))

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop):
        try:
            module.main(argv)
        except _Parsed as done:
            return done.namespace
    raise AssertionError(f"{module.__name__}.main() returned without parsing its arguments")
