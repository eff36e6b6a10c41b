"""Research workflow internals behind optimizer_cli.py, wf_pick.py and multi_interval_opt.py.

- ``space``         -- search spaces: defaults, ``--search-space`` JSON, focusing, Optuna suggestions
- ``scoring``       -- robust score per trial and the top-quantile selection rule
- ``pool``          -- evaluating trials on several processes that inherit the prepared data
- ``study``         -- Optuna samplers (trial-seeded random, TPE, CMA-ES), storages, open/resume/join
- ``optuna_search`` -- the batched ask/tell loop: exact trial budget, early stop, Ctrl-C
- ``runner``        -- one optimisation run (windows -> study -> scored trials); ``cli_common`` flags
- ``trials``        -- trial rows -> CSV/Excel frames, emitted configs with provenance
- ``families``      -- wf_pick's parameter families: bucketing, cost filters, ranking
- ``walkforward``   -- rolling train/test folds, per-fold re-optimisation, stitched OOS equity
- ``overfit``       -- probability of backtest overfitting (CSCV) and the deflated Sharpe ratio
- ``intervals``     -- OHLCV resampling and the bar-count scaling rule across intervals
"""

SAMPLERS = ("random", "tpe", "cmaes")  # here, not in ``study``, so --help need not import Optuna
