"""Every toolkit command in the shell blocks of the README and the docs/ pages parses with that
program's own parser, so the manual cannot drift from the flags (issue 8: "--help of every script ... matches the
README"). Commands of programs not in this checkout yet are skipped by name."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.support.compose_model import ROOT, parse_python_command

PYTHON = re.compile(r"^(?:\.venv/bin/)?python3?$")


def readme_commands() -> list[list[str]]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # the manual as pages (issue 19)
    text = "\n".join(p.read_text() for p in pages)
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\$[a-z_]+", "1", line.replace("$DATA", "data.csv"))  # shell variables
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
                words.pop(0)
            if "..." in words:
                continue  # an elided example ("optimizer_cli.py ... --sampler cmaes")
            if len(words) > 1 and PYTHON.match(words[0]):
                if words[1] == "-m" and not words[2].startswith("ethbtc"):
                    continue  # python -m http.server, pytest...
                commands.append(words[1:])
    return commands


COMMANDS = readme_commands()


def test_readme_has_the_workflow_commands() -> None:
    programs = {c[1] if c[0] == "-m" else c[0] for c in COMMANDS}
    assert {"download_vision.py", "ethbtc_accum_bot.py", "live_executor.py", "ethbtc.sim", "ethbtc.data.sample"} <= programs


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_readme_command_parses(words: list[str]) -> None:
    if words[0] != "-m" and not (ROOT / words[0]).is_file():
        pytest.skip(f"{words[0]} is not in this checkout yet")
    try:
        program, ns = parse_python_command(words)
    except SystemExit as exc:  # --help prints and exits 0; a bad flag exits 2
        assert exc.code == 0, f"README command does not parse: {' '.join(words)}"
        return
    for value in vars(ns).values():
        if isinstance(value, str) and value.startswith("configs/"):
            assert Path(ROOT / value).is_file(), f"{program}: {value} missing"
