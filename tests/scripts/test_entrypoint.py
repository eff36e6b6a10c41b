"""The container entry point (ethbtc/entrypoint.py): command dispatch and the state-volume check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ethbtc import entrypoint
from ethbtc.entrypoint import EntryError, check_state_dir, resolve, state_path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def test_flags_only_run_the_executor(tmp_path: Path) -> None:
    (tmp_path / "live_executor.py").write_text("if __name__ == '__main__':\n    pass\n")
    exe = str(tmp_path / "live_executor.py")
    assert resolve([], tmp_path) == [PY, exe]
    assert resolve(["--params", "c.json", "--once"], tmp_path) == [PY, exe, "--params", "c.json", "--once"]
    assert resolve(["live", "-v"], tmp_path) == [PY, exe, "-v"]


def test_short_commands_scripts_by_name_and_path_programs() -> None:
    bot = str(ROOT / "ethbtc_accum_bot.py")
    assert resolve(["backtest", "--data", "x.csv"]) == [PY, bot, "backtest", "--data", "x.csv"]
    assert resolve(["selftest"]) == [PY, bot, "selftest"]
    assert resolve(["sim", "--port", "1"]) == [PY, "-m", "ethbtc.sim", "--port", "1"]
    dv = str(ROOT / "download_vision.py")
    assert resolve(["download_vision.py", "--help"]) == resolve(["download_vision", "--help"]) == [PY, dv, "--help"]
    assert resolve(["sh", "-c", "true"]) == ["sh", "-c", "true"]


def test_unknown_commands_and_missing_scripts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EntryError, match="unknown command 'bakctest'"):
        resolve(["bakctest"])
    (tmp_path / "helper.py").write_text("X = 1\n")  # importable module, not a script
    with pytest.raises(EntryError, match="unknown command"):
        resolve(["helper.py"], tmp_path)
    with pytest.raises(EntryError, match="live_executor.py is not part of this image"):
        resolve(["--once"], tmp_path)


def test_scripts_are_the_top_level_programs() -> None:
    found = entrypoint.scripts(ROOT)
    assert {"ethbtc_accum_bot.py", "download_vision.py"} <= set(found)
    assert all((ROOT / s).is_file() for s in found)


def test_state_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_FILE", "/data/env.json")
    assert state_path(["--state", "/data/a.json"]) == Path("/data/a.json")
    assert state_path(["--state=/data/b.json", "-v"]) == Path("/data/b.json")
    assert state_path(["-v"]) == Path("/data/env.json")
    monkeypatch.delenv("STATE_FILE")
    assert state_path([]) == Path("run_state/state.json")


def test_state_outside_the_volume_is_refused_in_a_container(tmp_path: Path) -> None:
    with pytest.raises(EntryError, match="outside the /data volume"):
        check_state_dir(tmp_path / "state.json", in_container=True)
    with pytest.raises(EntryError, match="outside the /data volume"):
        check_state_dir(Path("run_state/state.json"), in_container=True)  # relative to /app
    check_state_dir(tmp_path / "new" / "state.json", in_container=False)  # bare metal: fine


def test_unwritable_state_folder_names_the_fix(tmp_path: Path) -> None:
    """Run the real entry point as an unprivileged user against a folder it cannot write."""
    python, kwargs = PY, {}
    if os.geteuid() == 0:  # root writes anywhere: become `nobody` with an interpreter it can reach
        python = shutil.which("python3", path="/usr/local/bin:/usr/bin") or ""
        if not python or Path(python).resolve().is_relative_to("/root"):
            pytest.skip("running as root and no system python3 for an unprivileged user")
        tmp_path = Path(tempfile.mkdtemp(prefix="ethbtc-entry-", dir="/tmp"))
        tmp_path.chmod(0o755)
        kwargs["user"] = 65534
    try:
        folder = tmp_path / "run_state"
        folder.mkdir(mode=0o555)
        folder.chmod(0o555)
        (tmp_path / "live_executor.py").write_text("if __name__ == '__main__':\n    print('started')\n")
        code = ("import sys; from pathlib import Path; from ethbtc import entrypoint as e; "
                f"e.ROOT = Path({str(tmp_path)!r}); sys.exit(e.main(sys.argv[1:]))")
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "STATE_FILE": str(folder / "state.json")}
        run = [python, "-c", code, "--params", "x.json"]
        res = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, **kwargs)
        assert res.returncode == 2 and "started" not in res.stdout, res.stderr
        assert res.stderr.startswith("error: state folder") and "chown" in res.stderr and "BOT_UID" in res.stderr
        folder.chmod(0o777)
        res = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, **kwargs)
        assert (res.returncode, res.stdout.strip()) == (0, "started"), res.stderr
    finally:
        if kwargs:
            shutil.rmtree(tmp_path, ignore_errors=True)


def test_help_lists_commands_and_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    assert entrypoint.main(["help"]) == 0
    out = capsys.readouterr().out
    assert "backtest" in out and "download_vision.py" in out


def test_unknown_command_exits_2_with_one_line() -> None:
    res = subprocess.run([PY, "-m", "ethbtc.entrypoint", "frobnicate"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and res.stderr.startswith("error: unknown command")
