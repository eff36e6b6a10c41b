"""Shared internals of the ETH/BTC accumulation toolkit.

Where things live (each module states its purpose in its first lines):

- ``errors``      -- the user-facing error types (one-line message, exit code 2)
- ``cli``         -- the wrapper every script's ``main`` runs under
- ``timeframes``  -- interval strings, epoch units (s/ms/us), UTC helpers
- ``fileio``      -- atomic writes (temp + fsync + rename)
- ``config``      -- the one JSON config schema and loader (SPEC section 6)
- ``data``        -- the one candle loader and data-quality report (SPEC R1-R5)
- ``klines``      -- Binance kline tables as text: normalise, align, de-duplicate, gap report
- ``vision``, ``vision_download``, ``httpfetch`` -- the Binance Vision archive: layout, verified
                     zips, parallel download with retries (behind ``download_vision.py``)
- ``sample``      -- the deterministic sample candles (``python -m ethbtc.sample``); ``demo`` -- ``make demo``
- ``indicators``  -- vectorised indicators (SPEC R6-R10)
- ``kernel``      -- the numba-compiled per-bar decision step (SPEC R11-R26)
- ``fillmodel``   -- the intrabar path and resting-order fill rule shared by kernel and ``sim`` (SPEC R22 v3)
- ``strategy``    -- ``EthBtcStrategy``: indicators + step, used by backtest and live
- ``backtest``    -- the backtest runner, results and summary metrics (SPEC R27-R29)
- ``reports``     -- console table, CSV, JSON and Excel outputs
- ``htmlreport``  -- self-contained HTML reports (bokeh): backtest panels, search and pick pages
- ``levels``      -- buy/sell levels in price terms and distances in bps (metrics, console)
- ``metrics``     -- ``BotMetrics``: the bot's Prometheus metrics (docs/monitoring.md)
- ``health``      -- ``HealthState``: loop liveness behind /health
- ``metrics_server`` -- /metrics + /health HTTP server thread; ``healthcheck`` -- Docker probe
- ``logs``        -- logging setup for every script: --log-json, -v/-vv, secret redaction
- ``search``      -- default search space and fast train/test evaluation (cached indicators, lean metrics)
- ``research``    -- optimizer_cli / wf_pick / multi_interval_opt internals (see its docstring)
- ``endpoints``   -- which Binance environment a base URL is (mainnet/testnet/local; SPEC R33)
- ``entrypoint``  -- the Docker image's entry point (executor by default, any script by name)
- ``live``        -- the live executor behind ``live_executor.py`` (SPEC R30-R34)
- ``sim``         -- the paper exchange (local Binance Spot simulator)
"""

__version__ = "0.1.0"
