"""Binance error replies of the paper exchange: ``{"code": -XXXX, "msg": "..."}`` + HTTP status.

The engine raises :class:`ApiError`; the HTTP layer turns it into the JSON body Binance
sends, so a ``binance-connector`` client sees ``ClientError(status, code, msg, ...)``.
Messages are Binance's own wording where Binance documents one.
"""

from __future__ import annotations


class ApiError(Exception):
    """A Binance-style error reply (``code`` is negative, ``status`` the HTTP status)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


def illegal(name: str, legal: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def filter_failure(filter_type: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {filter_type}")


def invalid_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
WOULD_TAKE = "Order would immediately match and take."
DUPLICATE_ORDER = "Duplicate order sent."


def rejected(msg: str) -> ApiError:
    return ApiError(-2010, msg)


def unknown_order_cancel() -> ApiError:
    return ApiError(-2011, "Unknown order sent.")


def unknown_order_query() -> ApiError:
    return ApiError(-2013, "Order does not exist.")
