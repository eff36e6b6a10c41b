"""Shared fixtures. Real Binance candles live in ../shared/data (never copied into the repo);
tests that need them skip with a clear message when that folder is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ETHBTC_SHARED_DATA", ROOT.parent / "shared" / "data"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.sim_fixtures"]  # paper-exchange fixtures: sim, sim_client, sim_factory


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ETHBTC_1h_2017-07_2023-06.csv").exists():
        pytest.skip(f"real Binance data not found at {SHARED_DATA} (../shared/data absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
