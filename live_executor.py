#!/usr/bin/env python3
"""Live executor: trade the ETH/BTC strategy on Binance Spot (dry -> testnet -> live), SPEC R30-R34.

    python live_executor.py --params configs/prod_live.json --mode dry
    python live_executor.py --params configs/prod_live.json --mode testnet   # keys in .env

The engine lives in ``ethbtc/live/``; this script is only its command line (see --help).
"""

import sys
from collections.abc import Sequence

from ethbtc.cli import run_main
from ethbtc.live.args import build_parser, load_env


def main(argv: Sequence[str] | None = None) -> int:
    load_env()
    build_parser().parse_args(argv)  # --help and bad flags answered before the engine's imports
    from ethbtc.live.app import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(run_main(main))
