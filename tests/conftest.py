"""Shared fixtures. Real Binance candles live in ../shared/data (never copied into the repo);
tests that need them skip with a clear message when that folder is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ETHBTC_SHARED_DATA", ROOT.parent / "shared" / "data"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.support.sim_fixtures"]  # paper-exchange fixtures: sim, sim_client, sim_factory

# Hypothesis profiles. `ci` (default): derandomized, so every run draws the same examples and a
# failure reproduces; `soak` (make soak, HYPOTHESIS_PROFILE=soak): many more random examples, with
# failures saved in .hypothesis-fuzz/ and replayed first on the next soak run.
settings.register_profile("ci", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=5000, deadline=None,
                          database=DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis-fuzz")),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`soak` tests run only when asked for (`make soak` = `pytest -m soak`)."""
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="soak test: run with make soak (pytest -m soak)")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ETHBTC_1h_2017-07_2023-06.csv").exists():
        pytest.skip(f"real Binance data not found at {SHARED_DATA} (../shared/data absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
