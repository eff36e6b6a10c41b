"""The executor's state file (SPEC R34): what it must never forget across restarts.

JSON, written atomically (temp file, fsync, rename via :mod:`ethbtc.fileio`) after every
change that matters. It holds the session's start wealth (measured from the real balances
at the first connection, never a default), the last bar acted on, the signal/risk state of
the compiled kernel by slot name (signal, last flip, equity peak, drawdown latch, day start,
daily pause), the order intent of the bar in flight (written BEFORE an order is sent, so a
crash can always be reconciled) and, in dry mode, the paper wallet. A missing file means a
fresh start; an unreadable or corrupt one stops the executor with its path -- it is never
silently replaced.

Top-level names follow the v3 operations manual: ``session_start_W`` (start wealth),
``risk_maxdd_hit`` (a boolean mirror of the kernel's drawdown latch) and ``last_bar_close``.
Editing ``risk_maxdd_hit`` to ``false`` in the file while the executor is stopped is an
operator reset, like ``--reset-risk``: the latch and the daily pause clear, the peak restarts
from current wealth, and the state's event log records it. Version 1 files (``session_start_w``,
no top-level flag) are read and rewritten as version 2.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..errors import UserError
from ..fileio import atomic_write_text
from ..kernel import N_STATE, STATE_NAMES, new_state

VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: session_start_w, risk flag only inside ``kernel``


class StateError(UserError):
    """The state file cannot be used as it is; the message names the path and the fix."""


def utc_iso(ms: int | None = None) -> str:
    t = datetime.now(UTC) if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


class Pending(BaseModel):
    """The order intent of one bar: client ids are appended here before each is sent."""

    model_config = ConfigDict(extra="forbid")
    bar_open_ms: int
    side: Literal["BUY", "SELL"]
    qty: str
    orders: list[str] = []
    started: str = ""


class LiveState(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    version: int = VERSION
    mode: Literal["dry", "testnet", "live"]
    symbol: str
    interval: str
    created_at: str
    session_start_w: float = Field(validation_alias=AliasChoices("session_start_W", "session_start_w"),
                                   serialization_alias="session_start_W")
    risk_maxdd_hit: bool = False  # mirror of kernel["risk_maxdd_hit"]; false written by hand = operator reset
    session_start_time: str
    session_start_price: float | None = None  # close of the first decided bar (the ETH-HODL line)
    last_bar_open_ms: int | None = None
    last_bar_close: str | None = None
    kernel: dict[str, float | None]
    pending: Pending | None = None
    open_order_ids: list[str] = []
    bars_decided: int = 0
    orders_sent: int = 0
    fills: int = 0
    last_decision: dict[str, Any] | None = None
    paper: dict[str, Any] | None = None
    events: list[str] = []
    updated_at: str = ""
    _load_notes: list[str] = PrivateAttr(default_factory=list)  # what load() changed (for the log)

    # -- kernel state <-> named slots ---------------------------------------------------------
    def kernel_array(self) -> np.ndarray:
        arr = np.empty(N_STATE)
        for i, name in enumerate(STATE_NAMES):
            value = self.kernel.get(name, math.nan)
            arr[i] = math.nan if value is None else float(value)
        return arr

    def set_kernel(self, arr: np.ndarray) -> None:
        self.kernel = {name: (None if math.isnan(v) else float(v)) for name, v in zip(STATE_NAMES, arr, strict=True)}

    def sync_flags(self) -> None:
        """Top-level ``risk_maxdd_hit`` from the kernel's latch (before every save)."""
        self.risk_maxdd_hit = self.kernel.get("risk_maxdd_hit") == 1.0

    def note(self, event: str) -> None:
        """Keep a short audit trail of operator actions (risk resets, reconciliations)."""
        self.events = [*self.events[-19:], f"{utc_iso()} {event}"]


def fresh_state(mode: str, symbol: str, interval: str, start_w: float) -> LiveState:
    now = utc_iso()
    st = LiveState(mode=mode, symbol=symbol, interval=interval, created_at=now,  # type: ignore[arg-type]
                   session_start_w=start_w, session_start_time=now, kernel={})
    st.set_kernel(new_state())
    return st


class StateStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> LiveState | None:
        """The saved state, None when the file does not exist; StateError when unusable."""
        if not self.path.exists():
            return None
        hint = ("it is never replaced automatically: restore it from a backup or fix it; only if you "
                "accept losing session_start_W, the risk flags and the last acted bar, move it away and "
                "restart with --fresh-state")
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"state file {self.path} is unreadable ({exc.__class__.__name__}); {hint}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
            if data.get("version") not in READABLE_VERSIONS:
                raise ValueError(f"unknown version {data.get('version')!r}")
            flag = data.get("risk_maxdd_hit")
            if flag is not None and not isinstance(flag, bool):
                raise ValueError(f"risk_maxdd_hit must be true or false, got {json.dumps(flag)[:40]}")
            state = LiveState.model_validate(data)
            missing = [n for n in STATE_NAMES if n not in state.kernel]
            if missing:
                raise ValueError(f"kernel lacks {', '.join(missing)}")
        except RecursionError:
            raise StateError(f"state file {self.path} is corrupt (JSON nested too deeply); {hint}") from None
        except (ValueError, ValidationError) as exc:
            detail = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else (
                f"{'.'.join(map(str, exc.errors()[0]['loc']))}: {exc.errors()[0]['msg']}")
            raise StateError(f"state file {self.path} is corrupt ({detail}); {hint}") from None
        if flag is not None:
            apply_manual_flag(state, flag)
        state.version = VERSION
        return state

    def save(self, state: LiveState) -> None:
        state.updated_at = utc_iso()
        state.sync_flags()
        atomic_write_text(self.path, json.dumps(state.model_dump(by_alias=True), indent=1, allow_nan=False) + "\n")


def apply_manual_flag(state: LiveState, flag: bool) -> None:
    """The v3 manual's reset: a top-level ``risk_maxdd_hit`` that disagrees with the kernel's
    latch was edited by the operator. ``false`` clears the latch and the daily pause and restarts
    the peak from current wealth (as ``--reset-risk``); ``true`` latches the breaker."""
    latched = state.kernel.get("risk_maxdd_hit") == 1.0
    if flag == latched:
        return
    if flag:
        state.kernel["risk_maxdd_hit"] = 1.0
        event = "operator set the drawdown breaker: risk_maxdd_hit edited to true in the state file"
    else:
        state.kernel.update({"risk_maxdd_hit": 0.0, "daily_paused": 0.0, "peak_w": None})
        event = ("operator reset the risk breaker: risk_maxdd_hit edited to false in the state file "
                 "(daily pause cleared, peak restarts from current wealth)")
    state.risk_maxdd_hit = flag
    state.note(event)
    state._load_notes.append(event)
