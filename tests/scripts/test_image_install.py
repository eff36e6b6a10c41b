"""The Dockerfile's install steps, exercised outside Docker (issue 8 proof).

A fresh venv stands in for the image's Python. The Dockerfile is replayed in order: its COPY
steps fill a folder standing in for /app (with .dockerignore applied), its pip RUN step runs in
the venv at the point it runs in the build (only requirements.txt present: the dependency layer
cannot depend on code), then the build-time selftest runs, then every ``--help`` path of the
entry point. The only deviation from the Dockerfile: pip's cache is kept, to stay fast in CI.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from ethbtc import entrypoint
from tests.support.compose_model import ROOT, build_image_tree, dockerfile, exec_form, instructions

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("image")
    app, env_dir = base / "app", base / "venv"
    app.mkdir()
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    env = {**os.environ, **dockerfile().envs, "PYTHONPATH": str(app), "STATE_FILE": str(base / "data" / "state.json"),
           "NUMBA_CACHE_DIR": str(base / "numba"), "METRICS_PORT": str(free_port()),
           "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for name in ("ETHBTC_CONTAINER", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    steps: list[str] = []

    def on_run(value: str, folder: Path) -> None:
        words = shlex.split(value)
        if words[:2] == ["pip", "install"]:
            present = sorted(p.name for p in folder.iterdir())
            assert present == ["requirements.txt"], f"pip runs with {present}: dependency layer depends on code"
            args = [w for w in words[2:] if w != "--no-cache-dir"]
            subprocess.run([python, "-m", "pip", "install", "--quiet", *args], cwd=folder, env=env, check=True,
                           timeout=900)
            steps.append("pip")
        elif "ethbtc.entrypoint" in words and "selftest" in words:
            res = subprocess.run([python, "-m", "ethbtc.entrypoint", "selftest"], cwd=folder, env=env,
                                 capture_output=True, text=True, timeout=600)
            assert res.returncode == 0 and "selftest: ok" in res.stdout, res.stdout + res.stderr
            steps.append("selftest")

    build_image_tree(app, on_run)
    assert steps == ["pip", "selftest"], f"Dockerfile RUN steps exercised: {steps}"
    return {"python": python, "app": app, "env": env}


def run_in_image(image: dict, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([image["python"], "-m", "ethbtc.entrypoint", *argv], cwd=image["app"],
                          env=image["env"], capture_output=True, text=True, timeout=300)


def help_paths() -> list[list[str]]:
    paths = [[name, "--help"] for name in entrypoint.COMMANDS if name != "live"]
    paths += [[script, "--help"] for script in entrypoint.scripts(ROOT)]
    if (ROOT / entrypoint.EXECUTOR).exists():
        paths += [["--help"], ["live", "--help"]]
    return paths


@pytest.mark.parametrize("argv", help_paths(), ids=lambda a: " ".join(a))
def test_entrypoint_help_paths_run_in_the_fresh_install(image: dict, argv: list[str]) -> None:
    res = run_in_image(image, *argv)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout.lower()


def test_entrypoint_lists_its_commands_in_the_fresh_install(image: dict) -> None:
    res = run_in_image(image, "help")
    assert res.returncode == 0 and "backtest" in res.stdout and "download_vision.py" in res.stdout


def test_healthcheck_command_reports_a_missing_bot_as_unhealthy(image: dict) -> None:
    """The HEALTHCHECK CMD, verbatim, in the fresh install: nothing listens on METRICS_PORT."""
    cmd = exec_form(instructions("HEALTHCHECK")[-1].split("CMD", 1)[1])
    assert cmd[0] == "python"
    res = subprocess.run([image["python"], *cmd[1:]], cwd=image["app"], env=image["env"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and f":{image['env']['METRICS_PORT']}/health" in res.stdout


def test_fresh_install_has_no_dev_tools(image: dict) -> None:
    """requirements.txt alone: the image must not need pytest & co. at run time."""
    res = subprocess.run([image["python"], "-c", "import pytest"], capture_output=True, timeout=60)
    assert res.returncode != 0
    assert sys.executable != image["python"]
