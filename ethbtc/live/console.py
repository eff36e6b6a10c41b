"""What the operator sees: one heartbeat line per bar and the session summary line."""

from __future__ import annotations

import math

from .engine import BarReport
from .state import LiveState, utc_iso


def _f(x: float, spec: str) -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def heartbeat(r: BarReport, quote: str = "BTC") -> str:
    """price, ratio, bands, target vs current weight, blocker reason, PnL in BTC."""
    d = r.decision
    pct = r.pnl / (r.wealth - r.pnl) * 100 if r.wealth - r.pnl > 0 else 0.0
    gate = "open" if d.gate_open else "closed"
    line = (f"bar {utc_iso(d.bar_open_ms)} close={d.close:.8g} ratio={_f(d.ratio, '+.4f')} "
            f"entry<-{_f(d.entry_band, '.4f')} exit>-{_f(d.exit_band, '.4f')} gate={gate} signal={d.signal} "
            f"target={d.target_w:.3f} w={d.w_cur:.3f} desired={d.desired_w:.3f} reason={r.final_reason} "
            f"W={r.wealth:.8f} {quote} PnL={r.pnl:+.8f} {quote} ({pct:+.2f}%)")
    if r.catchup:
        line += " [catch-up, no orders]"
    ex = r.execution
    if ex is not None and ex.side:
        line += f" | {ex.side} ordered {ex.qty_ordered} filled {ex.qty_filled}"
        if ex.notes:
            line += f" ({'; '.join(ex.notes)})"
    return line


def summary(state: LiveState, wealth: float, trades: int, bars: int, quote: str = "BTC") -> str:
    pnl = wealth - state.session_start_w
    pct = pnl / state.session_start_w * 100 if state.session_start_w > 0 else 0.0
    return (f"session ({state.mode}, {state.symbol}): {bars} bars acted on this run, {state.bars_decided} decided in all, "
            f"{trades} fills in the ledger; W {state.session_start_w:.8f} -> {wealth:.8f} {quote}, "
            f"PnL {pnl:+.8f} {quote} ({pct:+.2f}%)")
