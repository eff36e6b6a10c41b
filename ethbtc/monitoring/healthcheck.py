"""Docker ``HEALTHCHECK`` probe: ``python -m ethbtc.monitoring.healthcheck`` exits 0 when the bot's
``/health`` answers 200 and 1 otherwise (503, refused, timeout), printing the status line.

Needs no curl/wget in the image. Default URL: ``http://127.0.0.1:$METRICS_PORT/health``
(port 9109 when unset); ``--url`` overrides.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from ..cli import ArgumentParser, http_url, run_main
from ..errors import UserError
from .metrics_server import DEFAULT_PORT


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """``(healthy, one-line summary)`` for the /health endpoint at ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            code, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"unhealthy: {url}: {reason}"
    try:
        status = json.loads(body).get("status", "?")
    except (ValueError, AttributeError):
        status = "?"
    return code == 200, f"{'healthy' if code == 200 else 'unhealthy'}: HTTP {code} status={status}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m ethbtc.monitoring.healthcheck", description=__doc__.split("\n\n")[0])
    port = os.environ.get("METRICS_PORT") or str(DEFAULT_PORT)
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}/health", help="health endpoint to probe")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    args = parser.parse_args(argv)
    if http_url(args.url) is None:
        raise UserError(f"--url {args.url!r}: expected http(s)://host[:port]/health")
    if args.timeout <= 0:
        raise UserError(f"--timeout must be > 0, got {args.timeout}")
    ok, line = probe(args.url, args.timeout)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
