#!/usr/bin/env python3
"""Live executor: trade the ETH/BTC strategy on Binance Spot (dry -> testnet -> live), SPEC R30-R34.

    python live_executor.py --params configs/prod_live.json --mode dry
    python live_executor.py --params configs/prod_live.json --mode testnet   # keys in .env

The engine lives in ``ethbtc/live/``; this script is only its command line (see --help).
"""

import sys

from ethbtc.cli import run_main
from ethbtc.live.app import main

if __name__ == "__main__":
    sys.exit(run_main(main))
