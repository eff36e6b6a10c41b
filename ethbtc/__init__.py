"""Shared internals of the ETH/BTC accumulation toolkit.

The package reads as the architecture. Imports only point down this list (the foundations at
the bottom, the wings that run things at the top); each module states its purpose in its first
lines, each wing's ``__init__`` is a one-paragraph map of it.

- ``live/``        -- the live executor behind ``live_executor.py`` (SPEC R30-R34)
- ``sim/``         -- the paper exchange (local Binance Spot simulator, ``python -m ethbtc.sim``)
- ``research/``    -- optimizer_cli / wf_pick / multi_interval_opt internals: search, walk-forward, overfitting
- ``demo``         -- ``make demo``; ``entrypoint`` -- the Docker image's entry point (executor by default, any script by name)
- the strategy core; its spine is backtest -> strategy -> indicators -> config -> kernel:
  - ``backtest``   -- the backtest runner, results and summary metrics (SPEC R27-R29)
  - ``reports``    -- console table, CSV, JSON and Excel outputs
  - ``htmlreport`` -- self-contained HTML reports (bokeh): backtest panels, search and pick pages
  - ``search``     -- default search space and fast train/test evaluation (cached indicators, lean metrics)
  - ``strategy``   -- ``EthBtcStrategy``: indicators + step, used by backtest and live
  - ``indicators`` -- vectorised indicators (SPEC R6-R10)
  - ``config``     -- the one JSON config schema and loader (SPEC section 6)
  - ``kernel``     -- the numba-compiled per-bar decision step (SPEC R11-R26)
  - ``fillmodel``  -- the intrabar path and resting-order fill rule shared by kernel and ``sim`` (SPEC R22 v3)
- ``monitoring/``  -- watching the bot: Prometheus metrics, /metrics + /health server, Docker health
                      probe, logging, price levels, Alertmanager config
- ``data/``        -- the candle pipeline: Binance Vision archive and download, kline tables,
                      timeframes, the candle loader (SPEC R1-R5), sample candles
- the foundations:
  - ``endpoints``  -- which Binance environment a base URL is (mainnet/testnet/local; SPEC R33)
  - ``cli``        -- the wrapper every script's ``main`` runs under
  - ``fileio``     -- atomic writes (temp + fsync + rename)
  - ``errors``     -- the user-facing error types (one-line message, exit code 2)
"""

__version__ = "0.1.0"
