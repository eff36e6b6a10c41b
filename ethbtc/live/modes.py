"""Mode safety (SPEC R33): which endpoint each mode may talk to, and the start-up key check.

``live`` only talks to Binance's mainnet hosts (a testnet or local simulator URL is refused),
``testnet`` refuses mainnet hosts and defaults to the public testnet, ``dry`` reads public
market data from anywhere and never needs keys. Keys are checked with a signed read at start,
so a wrong key stops the executor in seconds with the fix spelled out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import UserError

TESTNET_URL = "https://testnet.binance.vision"
MAINNET_URL = "https://api.binance.com"
DEFAULT_URL = {"live": MAINNET_URL, "testnet": TESTNET_URL, "dry": MAINNET_URL}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def classify(url: str) -> str:
    """'mainnet', 'testnet', 'local' (e.g. the project's simulator) or 'other'."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "testnet.binance.vision" or host.endswith(".testnet.binance.vision"):
        return "testnet"
    if host in LOCAL_HOSTS or host.startswith("127."):
        return "local"
    if host == "binance.com" or host.endswith(".binance.com") or host == "data-api.binance.vision":
        return "mainnet"
    return "other"


def resolve_base_url(mode: str, url: str | None) -> str:
    """The endpoint for ``mode`` (default when ``url`` is empty); UserError when they do not match."""
    url = (url or "").strip().rstrip("/") or DEFAULT_URL[mode]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"BINANCE_BASE_URL {url!r} is not an http(s) URL, e.g. {DEFAULT_URL[mode]}")
    kind = classify(url)
    if mode == "live" and kind != "mainnet":
        what = {"testnet": "the Binance testnet", "local": "a local exchange simulator"}.get(kind, "not a Binance host")
        raise UserError(f"--mode live refuses BINANCE_BASE_URL {url} ({what}): live trading only talks to "
                        f"{MAINNET_URL}; use --mode testnet for the testnet or the simulator")
    if mode == "testnet" and kind == "mainnet":
        raise UserError(f"--mode testnet refuses the mainnet URL {url}: set BINANCE_BASE_URL={TESTNET_URL} "
                        "(or leave it empty), or use --mode live on purpose")
    return url
