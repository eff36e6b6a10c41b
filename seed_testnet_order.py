#!/usr/bin/env python3
"""Place one MARKET order on the Binance Spot testnet (or the local paper exchange) to set up a
portfolio scenario, then print its fills and the balances after. Refuses mainnet URLs.

Keys and URL come from the environment or a .env file (path in DOTENV_PATH, default ./.env):
BINANCE_KEY, BINANCE_SECRET, BINANCE_BASE_URL (default https://testnet.binance.vision).

    python seed_testnet_order.py --side BUY --qty 0.5          # buy 0.5 ETH
    python seed_testnet_order.py --side SELL --quote-qty 0.01  # sell ETH worth 0.01 BTC
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from ethbtc.cli import ArgumentParser, number, run_main
from ethbtc.endpoints import TESTNET_URL, classify_base_url
from ethbtc.errors import UserError


def _amount(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or value <= 0:
        raise ValueError(text)
    return format(value.normalize(), "f")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="seed_testnet_order.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--side", required=True, type=str.upper, choices=["BUY", "SELL"])
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--qty", type=_amount, help="base quantity (ETH for ETHBTC)")
    size.add_argument("--quote-qty", type=_amount, help="quote amount (BTC for ETHBTC)")
    p.add_argument("--symbol", default="ETHBTC")
    p.add_argument("--base-url", help="exchange URL (overrides BINANCE_BASE_URL)")
    p.add_argument("--timeout", type=number(float, 0, 3600, above=True), default=10.0, help="HTTP timeout in seconds, up to 3600 (10)")
    return p


def settings(args_url: str | None) -> tuple[str, str, str]:
    """(base_url, key, secret) from flags, environment and .env; refuses mainnet before any I/O."""
    from dotenv import load_dotenv

    dotenv = os.environ.get("DOTENV_PATH", ".env")
    try:
        load_dotenv(dotenv, override=False)
    except UnicodeDecodeError:
        raise UserError(f"{dotenv}: not a UTF-8 text file (DOTENV_PATH names the .env file)") from None
    base_url = (args_url or os.environ.get("BINANCE_BASE_URL") or TESTNET_URL).rstrip("/")
    kind = classify_base_url(base_url)
    if kind == "mainnet":
        raise UserError(f"refusing to trade on mainnet ({base_url}): this script is for the testnet "
                        "or the local paper exchange only")
    if kind == "unknown":
        raise UserError(f"refusing unknown exchange URL {base_url}: use {TESTNET_URL} or a local paper exchange")
    key, secret = os.environ.get("BINANCE_KEY", ""), os.environ.get("BINANCE_SECRET", "")
    if not key or not secret:
        raise UserError("BINANCE_KEY and BINANCE_SECRET must be set (environment or .env; DOTENV_PATH names the file)")
    return base_url, key, secret


# what a malformed exchange reply (not JSON, missing fields, wrong shapes) raises while we read it
_BAD_REPLY = (KeyError, IndexError, TypeError, ValueError, ArithmeticError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import requests  # the HTTP client loads after parsing (``--help`` stays instant)
    from binance.error import ClientError, ServerError
    from binance.spot import Spot

    base_url, key, secret = settings(args.base_url)
    client = Spot(api_key=key, api_secret=secret, base_url=base_url, timeout=args.timeout)
    size = {"quantity": args.qty} if args.qty else {"quoteOrderQty": args.quote_qty}
    sent = False
    try:
        info = client.exchange_info(symbol=args.symbol)["symbols"][0]
        base, quote = info["baseAsset"], info["quoteAsset"]
        sent = True
        order = client.new_order(args.symbol, args.side, "MARKET", newOrderRespType="FULL", **size)
        balances = client.account()["balances"]
        lines = report(order, balances, args.side, base, quote, base_url)
    except ClientError as exc:
        raise UserError(f"exchange rejected the request: {exc.error_code} {exc.error_message}") from None
    except ServerError as exc:
        raise UserError(f"exchange error HTTP {exc.status_code}; the order outcome is unknown, "
                        "check the account before retrying") from None
    except requests.RequestException as exc:
        raise UserError(f"cannot reach {base_url}: {type(exc).__name__}") from None
    except _BAD_REPLY as exc:
        outcome = "; the order outcome is unknown, check the account before retrying" if sent else ""
        raise UserError(f"unexpected reply from {base_url} ({type(exc).__name__}: {str(exc)[:80]}){outcome}") from None
    print("\n".join(lines))
    return 0


def report(order: dict, balances: list[dict], side: str, base: str, quote: str, base_url: str) -> list[str]:
    """The order, its fills and the balances after, as printed lines (built before any printing)."""
    executed, spent = Decimal(order["executedQty"]), Decimal(order["cummulativeQuoteQty"])
    avg = spent / executed if executed else Decimal(0)
    lines = [f"order {order['orderId']} {order['status']}: {side} {executed} {base} for {spent} {quote} "
             f"(avg price {avg:.8f}) on {base_url}"]
    for f in order.get("fills", []):
        lines.append(f"  fill {f['qty']} @ {f['price']}  commission {f['commission']} {f['commissionAsset']}")
    lines.append("balances after:")
    for b in balances:
        if b["asset"] in (base, quote, "BNB"):
            lines.append(f"  {b['asset']:<5} free {b['free']}  locked {b['locked']}")
    return lines


if __name__ == "__main__":
    sys.exit(run_main(main))
