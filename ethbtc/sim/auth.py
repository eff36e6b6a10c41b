"""Request authentication of the paper exchange, as Binance does it for SIGNED endpoints.

1. ``X-MBX-APIKEY`` must be the configured key, else -2015 (HTTP 401).
2. ``timestamp`` and ``signature`` must be present (-1102). ``timestamp`` is in milliseconds or,
   like Binance accepts it, in microseconds (a value of 16 digits or more).
3. ``signature`` = hex HMAC-SHA256(secret, totalParams), where totalParams is the raw query
   string without the signature parameter, followed by the raw request body (-1022). The hex
   digits are compared case-insensitively, as Binance does.
4. ``recvWindow`` (default 5000, at most 60000, up to three decimals for microseconds, else
   -1131): the request is accepted when ``timestamp < serverTime + 1000`` and
   ``serverTime - timestamp <= recvWindow`` (-1021).

The clock the timestamp is checked against (rest-api.md "Timing security"): the simulator has
one exchange clock, which in real-time replay is the wall clock. In accelerated or manual replay
that clock runs ahead of (or stands still behind) the wall clock, so a client that synced its
offset from ``/api/v3/time`` (``timestamp = local time + (serverTime - local time at sync)``)
could never keep Binance's rule against the moving exchange clock. The rule is therefore applied
against every clock a client can have synced to: the wall clock, and the wall clock plus each
offset (serverTime - wall clock) the exchange has shown in a reply (the last ``OFFSETS_KEPT``).
A request passes when its timestamp keeps the rule against one of them. In real-time replay
all shown offsets are ~0 and this is exactly Binance's check; fault skew moves every candidate.
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


OFFSETS_KEPT = 256
MICROSECONDS = 10**15  # a timestamp at or above this is in microseconds (ms would be year 33658)


def timestamp_ms(text: str) -> float:
    """The ``timestamp`` parameter in milliseconds (microsecond values are scaled down)."""
    ts = int(text)
    return ts / 1000 if ts >= MICROSECONDS else float(ts)


def check_signed(params: dict[str, str], raw_query: str, raw_body: str, secret: str,
                 server_clocks: int | list[int]) -> None:
    """Raise the Binance error for a bad timestamp, signature or recvWindow.

    ``server_clocks``: the server time(s) in ms a synced client may be keeping (see above).
    """
    ts_text = params.get("timestamp", "")
    if not ts_text.isdigit():
        raise apierrors.mandatory("timestamp")
    if not params.get("signature"):
        raise apierrors.mandatory("signature")
    if not hmac.compare_digest(sign(secret, signed_payload(raw_query, raw_body)), params["signature"].lower()):
        raise ApiError(-1022, "Signature for this request is not valid.")
    window_text = params.get("recvWindow", "5000")
    try:
        window = float(window_text)
    except ValueError:
        raise apierrors.illegal("recvWindow", "^[0-9]{1,20}$") from None
    if window > 60000 or window <= 0:
        raise ApiError(-1131, "recvWindow must be less than 60000.")
    ts = timestamp_ms(ts_text)
    clocks = [server_clocks] if isinstance(server_clocks, int) else server_clocks
    ahead = True
    for server_ms in clocks:
        if ts < server_ms + 1000:
            ahead = False
            if server_ms - ts <= window:
                return
    if ahead:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
