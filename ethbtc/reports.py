"""Outputs: console summary table, per-bar/trades CSV, JSON summary, Excel workbook.

Every file is written atomically (temp + rename) so an interrupted run never leaves a
partial report that looks valid.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .backtest import BacktestResult
from .fileio import atomic_path, atomic_write_text

EXCEL_MAX_POINTS = 20_000


def fmt_summary(s: dict[str, Any]) -> str:
    def pct(x: float) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:+.2f}%"

    def num(x: float, d: int = 2) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"

    rows = [
        ("window", f"{s['start'][:16]} .. {s['end'][:16]} ({s['bars']} bars of {s['interval_minutes']}m)"),
        ("final BTC", f"{s['final_btc']:.8f}  (return {pct(s['return_btc'])})"),
        ("BTC-HODL", f"{s['btc_hodl_btc']:.8f}"),
        ("ETH-HODL", f"{s['eth_hodl_btc']:.8f}  (strategy vs ETH-HODL {pct(s['vs_eth_hodl'])})"),
        ("max drawdown", pct(-s["max_drawdown"])),
        ("Sharpe / Sortino", f"{num(s['sharpe'])} / {num(s['sortino'])}"),
        ("turns / trades", f"{s['turns']} / {s['trades']}"),
        ("fees", f"{s['fees_btc']:.8f} BTC  ({s['fee_model']})" if "fee_model" in s else f"{s['fees_btc']:.8f} BTC"),
        ("turnover", f"{s['turnover_btc']:.6f} BTC"),
        ("time in ETH", f"{s['time_in_eth'] * 100:.1f}%  (avg weight {s['avg_eth_weight']:.3f})"),
        ("data gaps", f"{s['gaps']} ({s['missing_bars']} missing bars)"),
    ]
    if s.get("sample"):
        rows.insert(0, ("sample", str(s["sample"])))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def write_bars_csv(result: BacktestResult, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        result.bars.to_csv(tmp, float_format="%.10g")


def write_trades_csv(result: BacktestResult, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        result.trades.to_csv(tmp, index=False, float_format="%.10g")


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_json(summary: dict[str, Any], path: str | Path, extra: dict[str, Any] | None = None) -> None:
    data = {k: _clean(v) for k, v in summary.items()} | (extra or {})
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_excel(result: BacktestResult, path: str | Path) -> None:
    """Summary, Equity (with a native line chart vs both HODL lines) and Trades sheets."""
    from openpyxl import Workbook
    from openpyxl.chart import LineChart, Reference

    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    ws.append(["metric", "value"])
    for k, v in result.summary.items():
        ws.append([k, _clean(v)])
    ws.append([])
    ws.append(["parameter", "value"])
    for k, v in result.config.flat().items():
        ws.append([k, v])

    bars = result.bars
    step = max(1, math.ceil(len(bars) / EXCEL_MAX_POINTS))
    sample = bars.iloc[::step]
    if sample.index[-1] != bars.index[-1]:
        sample = pd.concat([sample, bars.iloc[[-1]]])
    start_w = result.summary["start_btc"]
    eth_qty = result.summary["eth_hodl_qty"]
    eq = wb.create_sheet("Equity")
    eq.append(["time", "wealth_btc", "btc_hodl", "eth_hodl", "w_cur", "target_w", "close"])
    for t, row in sample.iterrows():
        eq.append([t.tz_convert(None).to_pydatetime(), row.wealth_btc, start_w,
                   eth_qty * row.close, row.w_cur, row.target_w, row.close])
    if step > 1:
        eq["I1"] = f"every {step}th bar shown ({len(bars)} bars in the run)"
    chart = LineChart()
    chart.title = "Wealth in BTC vs HODL"
    chart.y_axis.title = "BTC"
    chart.x_axis.title = "time"
    chart.x_axis.number_format = "yyyy-mm-dd"
    data = Reference(eq, min_col=2, max_col=4, min_row=1, max_row=eq.max_row)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(eq, min_col=1, min_row=2, max_row=eq.max_row))
    chart.width, chart.height = 28, 12
    ws.add_chart(chart, "D2")

    tr = wb.create_sheet("Trades")
    cols = list(result.trades.columns)
    tr.append(cols)
    for rec in result.trades.itertuples(index=False):
        tr.append([v.tz_convert(None).to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in rec])
    with atomic_path(path) as tmp:
        wb.save(tmp)
