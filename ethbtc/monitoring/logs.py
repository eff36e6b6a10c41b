"""Logging for every script: human lines by default, ``--log-json`` for log shippers, secrets redacted.

Use in a script::

    add_log_args(parser)                       # -v/-vv and --log-json
    args = parser.parse_args(argv)
    setup_logging_from_args(args, secrets=[api_key, api_secret])
    log = logging.getLogger(__name__)
    with bar_context(bar_open_time):           # every line inside carries "bar"
        log.info("decided", extra={"reason": "hold", "target_w": 0.0})

Levels: default INFO (third-party libraries WARNING), ``-v`` DEBUG for our code, ``-vv`` DEBUG
for everything (including the HTTP libraries). Redaction runs on every handler we install:
registered secret values, ``signature=...``, API-key headers and ``key=value`` pairs naming a
key, secret, password or token are replaced by ``***`` in messages, extra fields and
tracebacks. ``BINANCE_KEY``/``BINANCE_SECRET`` from the environment are registered by default.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import datetime as dt
import json
import logging
import math
import os
import re
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..data.timeframes import epoch_seconds

MASK = "***"
SECRET_ENV_VARS = ("BINANCE_KEY", "BINANCE_SECRET", "BINANCE_API_KEY", "BINANCE_API_SECRET")
MIN_SECRET_LEN = 4  # shorter values would blank out ordinary words; real keys are 64 chars
NOISY_LOGGERS = ("urllib3", "requests", "binance", "asyncio")

# name (sep) value, e.g. signature=ab12, "apiKey": "xyz", X-MBX-APIKEY: xyz, BINANCE_SECRET=...
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[\w.-]*(?:signature|api[_-]?key|secret[_-]?key|private[_-]?key|apikey|secret|password|passwd|token))"
    r"(?P<sep>['\"]?\s*(?:=|%3d|:)\s*['\"]?)"
    r"(?P<value>[^\s&'\",;}\])]+)"
)

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "bar"}
_BAR: contextvars.ContextVar[object | None] = contextvars.ContextVar("ethbtc_log_bar", default=None)


class Redactor:
    """Replaces registered secret values and secret-looking ``key=value`` pairs with ``***``."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._literal: re.Pattern[str] | None = None

    def add(self, *values: str | None) -> None:
        with self._lock:
            for v in values:
                if v and len(v.strip()) >= MIN_SECRET_LEN:
                    v = v.strip()
                    self._secrets.update({v, urllib.parse.quote(v, safe=""), urllib.parse.quote_plus(v)})
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._literal = None

    def redact(self, text: str) -> str:
        literal = self._literal
        if literal is not None:
            text = literal.sub(MASK, text)
        return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)


REDACTOR = Redactor()


def register_secret(*values: str | None) -> None:
    """Never log these values (call at start-up, before anything may log them)."""
    REDACTOR.add(*values)


def redact(text: str) -> str:
    """Text with every registered secret and signature removed (also for /health, reports)."""
    return REDACTOR.redact(text)


@contextlib.contextmanager
def bar_context(bar: object) -> Iterator[None]:
    """Every log record emitted inside carries ``bar`` (e.g. the bar's open time)."""
    token = _BAR.set(bar)
    try:
        yield
    finally:
        _BAR.reset(token)


def _bar_text(bar: object) -> str | None:
    if bar is None:
        return None
    if isinstance(bar, dt.datetime):
        when = bar if bar.tzinfo else bar.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(bar, int | float) and math.isfinite(bar):
        return _bar_text(dt.datetime.fromtimestamp(epoch_seconds(bar), dt.UTC))
    return str(bar)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


def _scrub(value: Any, json_safe: bool = False) -> Any:
    """Redact strings inside extras; with ``json_safe`` also turn NaN/inf into None."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, float):
        return None if json_safe and not math.isfinite(value) else value
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _scrub(v, json_safe) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrub(v, json_safe) for v in value]
    if isinstance(value, dt.datetime):
        return _bar_text(value)
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Handler filter: redacts message, args, extra fields, exception and stack text in place,
    and stamps ``record.bar`` from :func:`bar_context` when the call did not pass one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the rest of the line
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        if _exc_text(record):
            record.exc_text = redact(record.exc_text or "")
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in _extras(record).items():
            setattr(record, key, _scrub(value))
        if getattr(record, "bar", None) is None:
            record.bar = _BAR.get()
        return True


def _exc_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    return record.exc_text or None


def _timestamp(record: logging.LogRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class HumanFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO  ethbtc.live [bar 2024-05-01T11:45:00Z] message k=v``"""

    def format(self, record: logging.LogRecord) -> str:
        bar = _bar_text(getattr(record, "bar", None))
        parts = [_timestamp(record), f"{record.levelname:<5}", f"{record.name}:"]
        if bar:
            parts.append(f"[bar {bar}]")
        parts.append(record.getMessage())
        parts += [f"{k}={v}" for k, v in _extras(record).items()]
        line = " ".join(parts)
        if _exc_text(record):
            line += "\n" + (record.exc_text or "")
        if record.stack_info:
            line += "\n" + record.stack_info
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, event, bar, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "bar": _bar_text(getattr(record, "bar", None)),
        }
        for key, value in _extras(record).items():
            doc.setdefault(key, _scrub(value, json_safe=True))
        if _exc_text(record):
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return redact(json.dumps(doc, default=str, ensure_ascii=False, allow_nan=False))


def add_log_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output: -v debug for the bot, -vv also for HTTP libraries")
    parser.add_argument("--log-json", action="store_true",
                        help="log one JSON object per line (for log shippers) instead of text")


def setup_logging(
    verbosity: int = 0,
    json_lines: bool = False,
    stream: IO[str] | None = None,
    secrets: Iterable[str | None] = (),
    secret_env: Iterable[str] = SECRET_ENV_VARS,
) -> logging.Handler:
    """Install the one root handler (replacing a previous one from here) and register secrets."""
    register_secret(*secrets, *(os.environ.get(name) for name in secret_env))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ethbtc_handler", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._ethbtc_handler = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json_lines else HumanFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    logging.captureWarnings(True)
    return handler


def setup_logging_from_args(args: argparse.Namespace, secrets: Iterable[str | None] = (),
                            stream: IO[str] | None = None) -> logging.Handler:
    return setup_logging(getattr(args, "verbose", 0), getattr(args, "log_json", False), stream, secrets)
