"""Request authentication of the paper exchange, as Binance does it for SIGNED endpoints.

1. ``X-MBX-APIKEY`` must be the configured key, else -2015 (HTTP 401).
2. ``timestamp`` and ``signature`` must be present (-1102).
3. ``signature`` = hex HMAC-SHA256(secret, totalParams), where totalParams is the raw query
   string without the signature parameter, followed by the raw request body (-1022).
4. ``recvWindow`` (default 5000, at most 60000, else -1131): the request is accepted when
   ``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow`` (-1021).
"""

from __future__ import annotations

import hashlib
import hmac

from . import apierrors
from .apierrors import ApiError


def _without_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def signed_payload(raw_query: str, raw_body: str) -> str:
    """totalParams: query string then body, each without the ``signature`` parameter."""
    return _without_signature(raw_query) + _without_signature(raw_body)


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_api_key(header_key: str | None, api_key: str) -> None:
    if not header_key or not hmac.compare_digest(header_key, api_key):
        raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def check_signed(params: dict[str, str], raw_query: str, raw_body: str, secret: str, server_ms: int) -> None:
    """Raise the Binance error for a bad timestamp, signature or recvWindow."""
    ts_text = params.get("timestamp", "")
    if not ts_text.isdigit():
        raise apierrors.mandatory("timestamp")
    if not params.get("signature"):
        raise apierrors.mandatory("signature")
    if not hmac.compare_digest(sign(secret, signed_payload(raw_query, raw_body)), params["signature"]):
        raise ApiError(-1022, "Signature for this request is not valid.")
    window_text = params.get("recvWindow", "5000")
    try:
        window = float(window_text)
    except ValueError:
        raise apierrors.illegal("recvWindow", "^[0-9]{1,20}$") from None
    if window > 60000 or window <= 0:
        raise ApiError(-1131, "recvWindow must be less than 60000.")
    ts = int(ts_text)
    if ts >= server_ms + 1000:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - ts > window:
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
