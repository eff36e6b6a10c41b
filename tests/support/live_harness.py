"""Helpers for the live-executor tests: the engine wired to a running paper exchange (``ethbtc.sim``).

Everything goes over real HTTP through ``binance-connector``. In-process tests drive the
simulator in manual mode bar by bar (:mod:`ethbtc.live.replay`: the engine's waits advance the
market); subprocess tests run ``live_executor.py`` itself (:func:`executor_cmd`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ethbtc.config import Config, build_config, load_config
from ethbtc.live.engine import Engine
from ethbtc.live.replay import drive, next_bar, sim_engine
from ethbtc.sim import SimServer, SymbolRules
from tests.support.sim_fixtures import SIM_KEY, SIM_SECRET

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = SIM_KEY, SIM_SECRET  # what the sim fixtures accept
# ETHBTC's filters in 2020 (the real-data replay period): tick 1e-6, step 0.001, min notional 0.0001 BTC
RULES_2020 = SymbolRules(tick_size=Decimal("0.000001"), min_price=Decimal("0.000001"), step_size=Decimal("0.001"),
                         min_qty=Decimal("0.001"), min_notional=Decimal("0.0001"))
REAL_15M = "ETHBTC_15m_2020-02_2020-10.freqtrade.json"
__all__ = ["drive", "next_bar"]


# A config that trades often on the simulator's random-walk candles (make_candles): short windows, no
# cooldown or gate, half steps -- roughly one bar in three trades. Execution knobs sized for fast replays.
ACTIVE: dict[str, Any] = {
    "trend_kind": "sma", "trend_lookback": 12, "flip_band_entry": 0.004, "flip_band_exit": 0.001, "vol_window": 12,
    "cooldown_minutes": 0, "step_allocation": 0.5, "max_position": 1.0, "rebalance_threshold_w": 0.02,
    "bar_interval_minutes": 15, "basis_btc": 1.0, "min_trade_btc": 0.001, "maker_fee": 0.001, "taker_fee": 0.001,
    "slippage_bps": 0.0, "pay_fees_in_bnb": False, "ttl_sec": 60.0, "poll_sec": 5.0, "taker_fallback": True,
}


def active_config(**overrides: Any) -> Config:
    return build_config(ACTIVE, overrides)


def write_params(folder: Path, **overrides: Any) -> Path:
    path = folder / "params.json"
    path.write_text(json.dumps(ACTIVE | overrides))
    return path


def parity_config(**overrides: Any) -> Config:
    """The production config with a 7-day gate (shorter warm-up) and a fee model both sides share."""
    base = {"gate_window_days": 7, "pay_fees_in_bnb": False, "slippage_bps": 0.0, "maker_fee": 0.001,
            "taker_fee": 0.001, "basis_btc": 1.0, "ttl_sec": 600.0, "taker_fallback": True,
            "tick_size": float(RULES_2020.tick_size)}  # R22 v3: the backtest's book is the replay's
    return load_config(ROOT / "configs" / "prod_live.json", base | overrides)


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A scratch folder on tmpfs when there is one (fsync there costs nothing; durability is not under test)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return tempfile.TemporaryDirectory(prefix="ethbtc-live-", dir=base)


@pytest.fixture
def fast_dir() -> Iterator[Path]:
    with scratch_dir() as d:
        yield Path(d)


def make_engine(sim: SimServer, cfg: Config, folder: Path, **kw: Any) -> Engine:
    kw.setdefault("key", KEY)
    kw.setdefault("secret", SECRET)
    return sim_engine(sim, cfg, folder, **kw)


def executor_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "live_executor.py"), *args]


def executor_env(sim: SimServer | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BINANCE_", "ETHBTC_FAILPOINTS")) and k not in ("MODE", "SYMBOL", "STATE_FILE")}
    env.update(BINANCE_KEY=KEY, BINANCE_SECRET=SECRET, DOTENV_PATH=os.devnull, PYTHONUNBUFFERED="1")
    if sim is not None:
        env["BINANCE_BASE_URL"] = sim.base_url
    env.update(extra)
    return env
