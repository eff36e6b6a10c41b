"""Polite HTTP GET for public archives: bounded retries, backoff with jitter, Retry-After.

One :class:`Fetcher` (a ``requests.Session`` underneath, safe to share between threads for
GETs) downloads whole bodies. It retries 5xx/429 replies, timeouts, connection resets and
truncated bodies with exponential backoff plus jitter, honours ``Retry-After``, treats 404
as "not published" (``None``) and turns everything else into a one-line
:class:`NetworkError` that names the URL.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter

from ..errors import UserError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
USER_AGENT = "ethbtc-toolkit/vision-downloader"


# Refused/reset connections, timeouts (connect, or a body that stalls), truncated bodies.
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class NetworkError(UserError):
    """A URL could not be fetched (no network, refused, timed out, or an HTTP error)."""


class Fetcher:
    """GET with ``retries`` extra attempts; delays ``backoff * 2**n`` plus up to 50 % jitter."""

    def __init__(
        self,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    def get(self, url: str) -> bytes | None:
        """Return the body of ``url``, or ``None`` when the server says 404 (not published)."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self._session.get(url, timeout=self.timeout)
                status = resp.status_code
                if status == 404:
                    return None
                if status < 400:
                    return resp.content
                if status not in RETRY_STATUSES or last:
                    raise NetworkError(f"GET {url} failed: HTTP {status} {resp.reason}")
                self._sleep(self._delay(attempt, resp.headers.get("Retry-After")))
            except _TRANSIENT as exc:
                if last:
                    raise NetworkError(f"cannot fetch {url}: {_reason(exc)}") from None
                self._sleep(self._delay(attempt, None))
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        advised = parse_retry_after(retry_after)
        if advised is not None:
            return min(advised, MAX_RETRY_AFTER)
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return base + random.uniform(0.0, base / 2)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "Connection reset", "Network is unreachable", "Read timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
