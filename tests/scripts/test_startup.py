"""Start-up: every script answers ``--help`` without loading pandas, numba or Optuna (issue 17).

The heavy libraries are imported by the commands that need them, after the arguments are
parsed, so ``--help`` (and a bad flag) answers at once. No wall-clock times are asserted: the
test checks which modules the interpreter loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numba", "optuna", "sqlalchemy", "pydantic", "openpyxl", "scipy", "requests", "binance")
SCRIPTS = ["ethbtc_accum_bot.py", "optimizer_cli.py", "wf_pick.py", "multi_interval_opt.py", "download_vision.py",
           "vision_fix_timestamps.py", "ascii_levelbar.py", "seed_testnet_order.py", "live_executor.py"]
PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
sys.path.insert(0, {root!r})
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}), file=sys.stderr)
"""


def _loaded(script: str, *args: str) -> dict:
    code = PROBE.format(root=str(ROOT), heavy=HEAVY)
    r = subprocess.run([sys.executable, "-c", code, str(ROOT / script), *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    return json.loads(r.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_loads_no_heavy_library(script):
    got = _loaded(script, "--help")
    assert got["code"] == 0 and got["heavy"] == [], got


@pytest.mark.parametrize("script", ["ethbtc_accum_bot.py", "optimizer_cli.py", "wf_pick.py", "live_executor.py"])
def test_a_bad_flag_is_answered_before_the_heavy_imports(script):
    got = _loaded(script, "--no-such-flag")
    assert got["code"] == 2 and got["heavy"] == [], got


def test_the_bot_still_re_exports_the_strategy():
    """SPEC R30: ``from ethbtc_accum_bot import EthBtcStrategy`` is the one decision path (lazily imported)."""
    r = subprocess.run([sys.executable, "-c", "from ethbtc_accum_bot import EthBtcStrategy, Decision; "
                        "import ethbtc.strategy as s; assert EthBtcStrategy is s.EthBtcStrategy and Decision is s.Decision"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
