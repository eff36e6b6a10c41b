"""Fault injection for the paper exchange: rehearse a bad day on purpose.

Shares are probabilities per eligible request (``/api`` and ``/sapi`` paths, optionally only
those starting with one of ``endpoints``), drawn from a seeded RNG so a test run repeats:

- ``error_5xx``: answer ``status_5xx`` (503) before doing anything (the connector raises
  ``ServerError``); with ``error_5xx_executes`` an order request is executed first, so the
  client cannot tell whether it went through (Binance documents 5xx as "status unknown").
- ``rate_limit_429`` / ``ban_418``: code -1003 with a ``Retry-After`` header (``ClientError``).
- ``delay``: sleep ``delay_seconds`` before handling (the request still executes: a client with
  a shorter timeout sees ``requests.exceptions.ReadTimeout``).
- ``drop_after_order``: execute a new order, then close the connection without an answer.
- ``time_skew_ms``: the server clock (/api/v3/time and the recvWindow check) is off by this.
- ``max_faults``: stop injecting after this many faults (``None``: no limit).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, field, fields


@dataclass
class FaultConfig:
    error_5xx: float = 0.0
    status_5xx: int = 503
    error_5xx_executes: bool = False
    rate_limit_429: float = 0.0
    ban_418: float = 0.0
    retry_after: int = 1
    delay: float = 0.0
    delay_seconds: float = 0.0
    drop_after_order: float = 0.0
    time_skew_ms: int = 0
    seed: int | None = None
    endpoints: list[str] = field(default_factory=list)
    max_faults: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FaultConfig:
        """Build from a JSON object; raises ValueError naming a bad key or value."""
        known = {f.name: f for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r} (known: {', '.join(known)})")
        cfg = cls(**data)  # type: ignore[arg-type]
        for name in ("error_5xx", "rate_limit_429", "ban_418", "delay", "drop_after_order"):
            share = getattr(cfg, name)
            if not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ValueError(f"fault share {name} must be a number in [0, 1], got {share!r}")
        if not isinstance(cfg.status_5xx, int) or not 500 <= cfg.status_5xx <= 599:
            raise ValueError(f"status_5xx must be an HTTP 5xx status, got {cfg.status_5xx!r}")
        if not isinstance(cfg.time_skew_ms, int):
            raise ValueError("time_skew_ms must be an integer number of milliseconds")
        if not isinstance(cfg.endpoints, list) or not all(isinstance(e, str) for e in cfg.endpoints):
            raise ValueError("endpoints must be a list of path prefixes")
        if not isinstance(cfg.delay_seconds, int | float) or not 0 <= cfg.delay_seconds < math.inf:
            raise ValueError("delay_seconds must be a finite number >= 0")  # nan/inf: sleep() raises
        if not isinstance(cfg.retry_after, int) or cfg.retry_after < 0:
            raise ValueError("retry_after must be a whole number of seconds >= 0")
        for name in ("seed", "max_faults"):
            value = getattr(cfg, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0 or null")
        if not isinstance(cfg.error_5xx_executes, bool):
            raise ValueError("error_5xx_executes must be true or false")
        return cfg


class FaultInjector:
    """Decides, per request, which fault (if any) to inject; thread-safe and reproducible."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self.counts = {}

    def state(self) -> dict[str, object]:
        with self._lock:
            return {"config": asdict(self.config), "injected": dict(self.counts)}

    def _eligible(self, path: str) -> bool:
        if not (path.startswith("/api/") or path.startswith("/sapi/")):
            return False
        eps = self.config.endpoints
        return not eps or any(path.startswith(e) for e in eps)

    def _budget_left(self) -> bool:
        limit = self.config.max_faults
        return limit is None or sum(self.counts.values()) < limit

    def _draw(self, kind: str, share: float) -> bool:
        if share <= 0 or not self._budget_left():
            return False
        if self._rng.random() < share:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return True
        return False

    def before(self, path: str) -> str | None:
        """Fault to apply before handling: 'ban_418', 'rate_limit_429', 'error_5xx', 'delay' or None."""
        with self._lock:
            if not self._eligible(path):
                return None
            c = self.config
            for kind, share in (("ban_418", c.ban_418), ("rate_limit_429", c.rate_limit_429),
                                ("error_5xx", c.error_5xx), ("delay", c.delay)):
                if self._draw(kind, share):
                    return kind
            return None

    def drop_after_order(self, path: str) -> bool:
        with self._lock:
            return self._eligible(path) and self._draw("drop_after_order", self.config.drop_after_order)

    @property
    def skew_ms(self) -> int:
        return self.config.time_skew_ms
