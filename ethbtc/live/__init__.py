"""The live executor (SPEC R30-R34): dry (paper), testnet and live trading of one symbol.

Modules, from the exchange inwards:

- ``errors``: typed exchange errors mapped to the live blocker reasons of SPEC R26.
- ``filters``: the symbol's trading filters (tick, step, minimum quantity and notional) and rounding.
- ``exchange``: the ONE adapter around ``binance.spot.Spot``: timeouts, retries, clock offset,
  exactly-once order placement by client id.
- ``paper``: the dry-mode account (paper wallet, simulated fills; no order is ever sent).
- ``modes``: endpoint/mode safety (R33).
- ``klines``: closed candles only, history paged in for the longest indicator.
- ``state`` / ``lock``: the persisted state file (R34) and the single-instance lock.
- ``ledger``: the append-only trade ledger and the per-bar decision journal.
- ``orders``: one bar's order execution (R32) and crash reconciliation (R31).
- ``engine``: the bar loop (wake, fetch closed klines, decide with EthBtcStrategy, act once, catch up).
- ``monitor`` / ``console``: metrics, /health, level bar; heartbeat and summary lines.
- ``failpoints``: crash points for the kill -9 tests (inert unless ETHBTC_FAILPOINTS is set).
- ``replay``: rehearsal against the paper exchange and the parity report vs the backtest.
- ``args``: the ``live_executor.py`` flags (light: ``--help`` loads no engine module).
- ``app``: the ``live_executor.py`` command line: wiring of the engine, exit codes.
"""
