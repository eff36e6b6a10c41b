"""The candle pipeline: everything between Binance's public archive and a checked table of bars.
``vision`` knows the archive's layout and verifies its zips, ``vision_download`` fetches months
and days in parallel with retries over ``httpfetch`` (behind ``download_vision.py``), ``klines``
normalises, aligns and de-duplicates kline tables as text and reports their gaps, ``candles`` is
the one loader and data-quality report that backtest, research and live read bars through (SPEC
R1-R5), ``timeframes`` holds the interval strings, epoch units and UTC helpers every layer uses,
and ``sample`` writes the deterministic sample candles (``python -m ethbtc.data.sample``). It
imports only the foundations (``errors``, ``fileio``, ``cli``, ``endpoints``): nothing here knows
about strategies, orders or metrics.
"""
