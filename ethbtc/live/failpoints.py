"""Named crash points for the crash-safety tests; inert unless ``ETHBTC_FAILPOINTS`` is set.

``ETHBTC_FAILPOINTS="after_order_placed=0.3,after_state_saved=0.05;seed=7"`` makes the process
kill itself with SIGKILL (no cleanup, like a power cut) when it passes a named point, with the
given probability (``ETHBTC_FAILPOINTS_LOG=file`` records each crash's point first). The engine
marks the dangerous moments: between sending an order and recording it, between writing state
and writing the ledger, and so on.
"""

from __future__ import annotations

import os
import random
import signal

_points: dict[str, float] = {}
_rng = random.Random()


def _parse(spec: str) -> None:
    points, _, opts = spec.partition(";")
    for item in filter(None, (p.strip() for p in points.split(","))):
        name, _, prob = item.partition("=")
        _points[name.strip()] = float(prob or 1.0)
    for item in filter(None, (p.strip() for p in opts.split(","))):
        key, _, value = item.partition("=")
        if key.strip() == "seed":
            _rng.seed(int(value) ^ os.getpid())


_parse(os.environ.get("ETHBTC_FAILPOINTS", ""))


def hit(name: str) -> None:
    """Crash here (SIGKILL) when this point is armed and the dice say so."""
    prob = _points.get(name)
    if prob is not None and _rng.random() < prob:
        record = os.environ.get("ETHBTC_FAILPOINTS_LOG")
        if record:  # lets a test count where the crashes happened
            with open(record, "a", encoding="utf-8") as fh:
                fh.write(f"{name}\n")
        os.kill(os.getpid(), signal.SIGKILL)
