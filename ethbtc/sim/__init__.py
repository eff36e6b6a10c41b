"""Paper exchange: a local Binance Spot REST simulator replaying historical candles.

``binance-connector`` pointed at ``base_url`` cannot tell it from Binance for the subset the
bot uses (``tests/sim/test_sim_conformance.py`` checks it through ccxt against Binance's docs).
Modules: ``market`` (replay clock, one time line, synthetic book, klines, trade tape; the intrabar
path and resting-order rule are :mod:`ethbtc.fillmodel`, shared with the backtest kernel), ``engine``
(orders, balances, fills, ledger), ``fees``, ``rules`` (filters, exchangeInfo), ``rest``
(endpoint shapes), ``auth`` (signature/recvWindow), ``limits`` (request weight, order counts),
``faults``, ``server`` (HTTP + /sim control), ``build`` (options), ``__main__`` (CLI).

    with serve_sim(candles_df, balances={"BTC": "1"}, api_key="k", api_secret="s") as sim:
        client = Spot(api_key="k", api_secret="s", base_url=sim.base_url)
        sim.advance(1)
"""

from .build import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimConfig, build_engine
from .engine import Engine, Fill, Order
from .faults import FaultConfig
from .rules import SymbolRules
from .server import SimServer, serve_sim

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "Engine", "FaultConfig", "Fill", "Order", "SimConfig",
           "SimServer", "SymbolRules", "build_engine", "serve_sim"]
