"""Append-only CSV records of the executor: the trade ledger and the per-bar decision journal.

``trades_log.csv`` has one row per exchange fill, copied from the exchange's own trade
records (``myTrades``): time, bar, side, order type, order id, client id, trade id, quantity,
price, quote quantity, commission and its asset, maker flag. Rows are flushed and fsynced as
they are written; the exchange trade id is the key, so fills seen again after a restart are
never written twice. A torn last line (power cut mid-write) is cut off on open.

``decisions_log.csv`` has one row per decided bar (the live counterpart of the backtest's
per-bar output, SPEC R27): kernel reason, final reason after the exchange, weights, wealth.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import UserError
from .exchange import Fill
from .filters import fmt
from .state import utc_iso

log = logging.getLogger("ethbtc.live.ledger")

TRADE_COLUMNS = ("time", "bar_time", "side", "type", "order_id", "client_order_id", "trade_id", "qty", "price",
                 "quote_qty", "commission", "commission_asset", "is_maker", "time_ms", "bar_open_ms")
DECISION_COLUMNS = ("bar_time", "bar_open_ms", "close", "reason", "final_reason", "signal", "target_w",
                    "desired_w", "w_cur", "ratio", "entry_band", "exit_band", "gate_open", "btc", "eth",
                    "wealth_btc", "pnl_btc", "side", "qty_ordered", "qty_filled", "catchup", "decided_at")


class _AppendOnlyCsv:
    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - kept open for appends
        if new:
            self._write_line(self.columns)

    def _repair(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            header = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
            if header != ",".join(self.columns):
                raise UserError(f"{self.path}: not a file of this executor (header {header[:80]!r}); "
                                "pass another path or move it away")
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                log.warning("%s: dropping a torn last line left by a crash (%d bytes)", self.path, len(data) - cut)
                fh.truncate(cut)

    def _write_line(self, values: Iterable[Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        self._fh.write(buf.getvalue())
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def close(self) -> None:
        self._fh.close()


class TradeLedger(_AppendOnlyCsv):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, TRADE_COLUMNS)
        self.trade_ids: set[str] = set()
        self.qty_by_order: dict[int, Decimal] = {}
        for row in self.rows():
            self._index(row["trade_id"], int(row["order_id"]), Decimal(row["qty"]))

    def _index(self, trade_id: str, order_id: int, qty: Decimal) -> None:
        self.trade_ids.add(trade_id)
        self.qty_by_order[order_id] = self.qty_by_order.get(order_id, Decimal(0)) + qty

    def append(self, fill: Fill, bar_open_ms: int | None) -> bool:
        """Write one fill; False when its trade id is already in the ledger."""
        key = str(fill.trade_id)
        if key in self.trade_ids:
            return False
        self._write_line([utc_iso(fill.time), utc_iso(bar_open_ms) if bar_open_ms is not None else "", fill.side,
                          fill.order_type, fill.order_id, fill.client_id, fill.trade_id, fmt(fill.qty),
                          fmt(fill.price), fmt(fill.quote_qty), fmt(fill.commission), fill.commission_asset,
                          int(fill.is_maker), fill.time, bar_open_ms if bar_open_ms is not None else ""])
        self._index(key, fill.order_id, fill.qty)
        return True


class DecisionJournal(_AppendOnlyCsv):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, DECISION_COLUMNS)
        rows = self.rows()
        self.last_bar = int(rows[-1]["bar_open_ms"]) if rows else None

    def append(self, record: dict[str, Any]) -> None:
        """One decided bar (a bar re-decided after a crash repeats identical values)."""
        record = {**record, "decided_at": utc_iso()}
        self._write_line(["" if record.get(c) is None else record.get(c) for c in self.columns])
        self.last_bar = int(record["bar_open_ms"])
