"""Which Binance environment a base URL points at: mainnet, the spot testnet, or a local server.

Used to refuse dangerous combinations (SPEC R33): tools meant for the testnet or the paper
exchange must never send orders to mainnet, and live mode must not run against a testnet.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from .cli import http_url
from .errors import UserError

Environment = Literal["mainnet", "testnet", "local", "unknown"]

TESTNET_URL = "https://testnet.binance.vision"
VISION_ARCHIVE_URL = "https://data.binance.vision"  # public kline archive (download_vision.py)
TESTNET_HOSTS = frozenset({"testnet.binance.vision"})
MAINNET_HOSTS = frozenset({
    "api.binance.com", "api1.binance.com", "api2.binance.com", "api3.binance.com", "api4.binance.com",
    "api-gcp.binance.com", "data-api.binance.vision", "api.binance.us",
})
MAINNET_DOMAINS = ("binance.com", "binance.us")


def classify_base_url(url: str) -> Environment:
    """'mainnet', 'testnet', 'local' (loopback: the paper exchange) or 'unknown'."""
    parts = http_url(url)
    if "@" in (parts.netloc if parts else url):  # never echo it: the part before '@' is a password
        raise UserError("exchange URL must not carry credentials (user:password@host): "
                        "API keys come from BINANCE_KEY and BINANCE_SECRET only")
    if parts is None:
        raise UserError(f"invalid exchange URL {url!r}: expected http(s)://host[:port], e.g. {TESTNET_URL}")
    host = parts.hostname.lower().rstrip(".")
    if host in TESTNET_HOSTS:
        return "testnet"
    if host in MAINNET_HOSTS or any(host == d or host.endswith("." + d) for d in MAINNET_DOMAINS):
        return "mainnet"
    if host == "localhost":
        return "local"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "local"
    except ValueError:
        pass
    return "unknown"
