"""Mode safety (SPEC R33): which endpoint each mode may talk to, and the start-up key check.

``live`` only talks to Binance's mainnet hosts (a testnet or local simulator URL is refused),
``testnet`` refuses mainnet hosts and defaults to the public testnet, ``dry`` reads public
market data from anywhere and never needs keys. Keys are checked with a signed read at start,
so a wrong key stops the executor in seconds with the fix spelled out.
"""

from __future__ import annotations

from ..endpoints import TESTNET_URL, classify_base_url
from ..errors import UserError

MAINNET_URL = "https://api.binance.com"
DEFAULT_URL = {"live": MAINNET_URL, "testnet": TESTNET_URL, "dry": MAINNET_URL}


def resolve_base_url(mode: str, url: str | None) -> str:
    """The endpoint for ``mode`` (default when ``url`` is empty); UserError when they do not match."""
    url = (url or "").strip().rstrip("/") or DEFAULT_URL[mode]
    kind = classify_base_url(url)  # UserError for a malformed URL or one carrying credentials
    if mode == "live" and kind != "mainnet":
        what = {"testnet": "the Binance testnet", "local": "a local exchange simulator"}.get(kind, "not a Binance host")
        raise UserError(f"--mode live refuses BINANCE_BASE_URL {url} ({what}): live trading only talks to "
                        f"{MAINNET_URL}; use --mode testnet for the testnet or the simulator")
    if mode == "testnet" and kind == "mainnet":
        raise UserError(f"--mode testnet refuses the mainnet URL {url}: set BINANCE_BASE_URL={TESTNET_URL} "
                        "(or leave it empty), or use --mode live on purpose")
    return url
