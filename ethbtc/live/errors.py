"""Typed exchange errors, each carrying the SPEC R26 blocker reason it reports.

The adapter (:mod:`ethbtc.live.exchange`) turns ``binance-connector`` exceptions into these.
Errors the operator must fix (bad keys, wrong endpoint) are :class:`~ethbtc.errors.UserError`
subclasses so the script stops with one line and exit code 2.
"""

from __future__ import annotations

from ..errors import UserError


class ExchangeError(Exception):
    """An exchange request failed; ``reason`` is the blocker reported for the bar."""

    reason = "exchange_error"

    def __init__(self, message: str, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TransientError(ExchangeError):
    """5xx, timeout, connection error or rate limit that outlasted the retry budget."""


class OutcomeUnknown(TransientError):
    """A state-changing request may or may not have executed (no answer was received)."""


class OrderRejected(ExchangeError):
    """-2010 / -1013 and similar: the exchange refused the order; retrying blindly won't help."""

    reason = "order_rejected"


class WouldTake(OrderRejected):
    """-2010 'Order would immediately match and take.' (LIMIT_MAKER crossed the book)."""


class InsufficientBalance(OrderRejected):
    """-2010 'Account has insufficient balance for requested action.'"""

    reason = "insufficient_balance"


class MinNotional(OrderRejected):
    """-1013 'Filter failure: NOTIONAL' / 'MIN_NOTIONAL' (order too small)."""

    reason = "min_notional"


class DuplicateOrder(OrderRejected):
    """-2010 'Duplicate order sent.' (an open order already has this client id)."""


class UnknownOrder(ExchangeError):
    """-2013 'Order does not exist.' / -2011 'Unknown order sent.'"""


class AuthError(UserError):
    """Keys, signature or permissions rejected: the operator must fix the configuration."""
