"""Logging: secrets never reach the output (messages, URLs, extras, tracebacks, JSON), --log-json
gives one parseable object per line with the bar, -v/-vv set the levels."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator

import pytest

from ethbtc.monitoring.logs import REDACTOR, add_log_args, bar_context, redact, register_secret, setup_logging

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # made-up 64-char key
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.StringIO, logging.Logger]]:
    monkeypatch.setenv("BINANCE_SECRET", SECRET)
    stream = io.StringIO()
    handler = setup_logging(0, json_lines=False, stream=stream, secrets=[KEY])
    yield stream, logging.getLogger("ethbtc.test")
    logging.getLogger().removeHandler(handler)
    REDACTOR.clear()


def test_secrets_and_signatures_are_redacted_everywhere(capture: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = capture
    url = "https://api.binance.com/api/v3/order?symbol=ETHBTC&timestamp=1&signature=9f86d081884c7d659a2feaa0c55ad015"
    log.info("POST %s headers=%s", url, {"X-MBX-APIKEY": KEY})
    log.warning("retry", extra={"url": url, "auth": {"key": KEY, "nested": [SECRET]}})
    log.info("config api_secret=%s apiKey: %s BINANCE_SECRET=%s", "plainvalue1", "plainvalue2", SECRET)
    try:
        raise ConnectionError(f"failed {url} with key {KEY}")
    except ConnectionError:
        log.exception("request failed")
    out = stream.getvalue()
    for leaked in (KEY, SECRET, "9f86d081884c7d659a2feaa0c55ad015", "plainvalue1", "plainvalue2"):
        assert leaked not in out
    assert out.count("signature=***") == 3  # message, extra field, traceback
    assert "Traceback" in out and "ConnectionError: failed" in out
    assert "symbol=ETHBTC" in out  # only the secret parts go


def test_json_lines_parse_and_carry_bar_and_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = setup_logging(0, json_lines=True, stream=stream, secrets=[KEY])
    try:
        log = logging.getLogger("ethbtc.live")
        with bar_context(1714564800000):
            log.info("decided", extra={"reason": "hold", "target_w": float("nan"), "key_used": KEY})
        log.info("outside", extra={"bar": "2024-05-01T12:15:00Z"})
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            log.error("boom", exc_info=True)
    finally:
        logging.getLogger().removeHandler(handler)
        REDACTOR.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert first["event"] == "decided" and first["level"] == "info" and first["logger"] == "ethbtc.live"
    assert first["bar"] == "2024-05-01T12:00:00Z" and first["reason"] == "hold"
    assert first["target_w"] is None and first["key_used"] == "***"
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert lines[1]["bar"] == "2024-05-01T12:15:00Z"
    assert "ZeroDivisionError" in lines[2]["exc"] and lines[2]["bar"] is None


def test_human_format_is_default_with_bar_and_fields() -> None:
    stream = io.StringIO()
    handler = setup_logging(0, stream=stream)
    try:
        with bar_context(1714564800):
            logging.getLogger("ethbtc.live").info("decided", extra={"reason": "gate"})
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    assert "INFO  ethbtc.live: [bar 2024-05-01T12:00:00Z] decided reason=gate" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.parametrize(("flags", "ours", "http"), [
    ([], logging.INFO, logging.WARNING),
    (["-v"], logging.DEBUG, logging.WARNING),
    (["-vv"], logging.DEBUG, logging.DEBUG),
])
def test_verbosity_levels(flags: list[str], ours: int, http: int) -> None:
    parser = argparse.ArgumentParser()
    add_log_args(parser)
    args = parser.parse_args([*flags, "--log-json"])
    assert args.log_json
    handler = setup_logging(args.verbose, args.log_json, stream=io.StringIO())
    try:
        assert logging.getLogger().level == ours
        assert logging.getLogger("urllib3").getEffectiveLevel() == http
        assert sum(getattr(h, "_ethbtc_handler", False) for h in logging.getLogger().handlers) == 1
    finally:
        logging.getLogger().removeHandler(handler)


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "ETHBTC close=0.05123 target_w=0.8 reason=min_trade bar=2024-05-01T12:00:00Z"
    assert redact(text) == text
    register_secret("ab", None, "")  # too short / empty values are ignored, not blanking text
    try:
        assert redact("about a table") == "about a table"
    finally:
        REDACTOR.clear()
