"""Pytest fixtures for tests that talk to the paper exchange (``ethbtc.sim``) over real HTTP.

Registered for the whole suite through ``pytest_plugins`` in ``tests/conftest.py``:

- ``sim_candles``: 400 bars of 15m ETHBTC-like candles (seeded walk near 0.05, prices on tick).
- ``sim``: a running :class:`~ethbtc.sim.SimServer` on those candles, manual clock at bar 200,
  balances 1 BTC / 0 ETH / 0 BNB, key ``SIM_KEY`` / secret ``SIM_SECRET``; closed after the test.
- ``sim_client``: ``binance.spot.Spot`` pointed at ``sim`` (timeout 5 s).
- ``flat``: ``flat(**serve_sim_options) -> (SimServer, Spot)`` on :data:`FLAT` (every bar opens
  and closes at 0.05, trades 0.0499 .. 0.0501; book at a bar's open bid 0.05000 / ask 0.05001),
  market at bar 5: exact prices for order and fee tests.
- ``sim_factory``: ``sim_factory(candles=None, **serve_sim_options) -> SimServer`` for custom
  setups (fees, BNB mode, partial fills, faults...); all are closed after the test. Request-weight
  limits are off unless a test passes ``limits=``: under the manual clock the weight windows run
  on the wall clock, so a test that steps hundreds of bars in seconds would only make the
  executor's pre-429 pause wait for minutes (tests of the limits pass their own LimitConfig).

Helpers: :func:`make_candles`, :func:`bars` (hand-written OHLC rows), :func:`spot_client`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from binance.spot import Spot

from ethbtc.sim import SimServer, serve_sim
from ethbtc.sim.limits import LimitConfig

SIM_KEY = "test-sim-key"
SIM_SECRET = "test-sim-secret"
DEFAULT_BALANCES = {"BTC": "1", "ETH": "0", "BNB": "0"}
NO_LIMITS = LimitConfig(weight_limit=0)  # see sim_factory


def make_candles(n: int = 400, *, seed: int = 3, price: float = 0.05, bar_vol: float = 0.003,
                 minutes: int = 15, start: str = "2021-03-01") -> pd.DataFrame:
    """Seeded random-walk candles shaped like ``load_candles(...).df``, prices on the 0.00001 grid."""
    rng = np.random.default_rng(seed)
    close = np.round(price * np.exp(np.cumsum(rng.normal(0.0, bar_vol, n))), 5)
    open_ = np.concatenate([[round(price, 5)], close[:-1]])
    wick = np.round(np.abs(rng.normal(0.0, bar_vol * price, (2, n))), 5) + 0.00001
    rows = np.column_stack([open_, np.maximum(open_, close) + wick[0], np.minimum(open_, close) - wick[1], close])
    return bars(rows, start=start, minutes=minutes, volume=rng.uniform(50, 500, n))


def bars(rows: Sequence[Sequence[float]] | np.ndarray, *, start: str = "2021-03-01", minutes: int = 15,
         volume: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """A candle frame from (open, high, low, close) rows, one bar every ``minutes``."""
    arr = np.asarray(rows, dtype=np.float64)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(arr), freq=f"{minutes}min", name="open_time")
    vol = np.full(len(arr), 100.0) if volume is None else np.asarray(volume, dtype=np.float64)
    return pd.DataFrame({"open": arr[:, 0], "high": arr[:, 1], "low": arr[:, 2], "close": arr[:, 3],
                         "volume": vol}, index=index)


def spot_client(sim: SimServer, timeout: float = 5, key: str = SIM_KEY, secret: str = SIM_SECRET) -> Spot:
    return Spot(api_key=key, api_secret=secret, base_url=sim.base_url, timeout=timeout)


@pytest.fixture
def sim_candles() -> pd.DataFrame:
    return make_candles()


@pytest.fixture
def sim_factory(sim_candles: pd.DataFrame) -> Iterator[Callable[..., SimServer]]:
    with contextlib.ExitStack() as stack:
        def start(candles: pd.DataFrame | None = None, **options: Any) -> SimServer:
            options.setdefault("balances", dict(DEFAULT_BALANCES))
            options.setdefault("api_key", SIM_KEY)
            options.setdefault("api_secret", SIM_SECRET)
            options.setdefault("start", 200)
            options.setdefault("limits", NO_LIMITS)
            return stack.enter_context(serve_sim(sim_candles if candles is None else candles, **options))
        yield start


@pytest.fixture
def sim(sim_factory: Callable[..., SimServer]) -> SimServer:
    return sim_factory()


@pytest.fixture
def sim_client(sim: SimServer) -> Spot:
    return spot_client(sim)


# Every bar opens and closes at 0.05 and trades 0.0499 .. 0.0501; at a bar's open the book is
# bid 0.05000 / ask 0.05001.
FLAT = bars([(0.05, 0.0501, 0.0499, 0.05)] * 30)


@pytest.fixture
def flat(sim_factory: Callable[..., SimServer]) -> Callable[..., tuple[SimServer, Spot]]:
    def start(**options: Any) -> tuple[SimServer, Spot]:
        options.setdefault("start", 5)
        sim = sim_factory(FLAT, **options)
        return sim, spot_client(sim)
    return start
