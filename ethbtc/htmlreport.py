"""Self-contained HTML reports (bokeh, JavaScript embedded, opens offline) for the backtest,
the parameter search and the walk-forward pick.

* :func:`backtest_report` -- linked panels on one time axis: ETH/BTC close with the trend and
  the entry/exit price levels (SPEC R12/R13, :mod:`ethbtc.monitoring.levels`) and every fill; ETH weight
  (target w*, desired, held); wealth in BTC against BTC-HODL and ETH-HODL (log toggle) with
  the drawdown; the reason of every bar and the regime gate; the R29 summary labelled
  in-sample/out-of-sample, the effective config and the data's gap report.
* :func:`search_report` -- train vs test final of every trial, the robust score against each
  parameter, the pick highlighted, the penalty terms of the best trials.
* :func:`pick_report` -- families ranked with their spread, the stitched out-of-sample equity
  against HODL, the CSCV logit histogram with the PBO, and the deflated Sharpe ratio.

Long runs are decimated for display only (:func:`minmax_indices`: per pixel bucket the first
minimum and maximum are kept, so no spike disappears); trade markers are never decimated.
Why bokeh and not plotly: docs/research.md "HTML reports". The builders take plain frames, so this
module imports only the backtest layer below it (research code passes its tables in).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    Div,
    HoverTool,
    LayoutDOM,
    NumeralTickFormatter,
    Range1d,
    Span,
    Toggle,
)
from bokeh.plotting import figure
from bokeh.resources import INLINE

from .backtest import BacktestResult, drawdown
from .config import StrategyParams
from .data.candles import DataReport
from .fileio import atomic_write_text
from .monitoring.levels import price_levels

BUCKETS = 1600  # display buckets across the time axis (about one per pixel of a wide screen)
REASON_COLORS = {  # kernel.REASONS
    "warmup": "#bdbdbd", "hold": "#a6d96a", "threshold": "#ffffbf", "min_trade": "#fdae61",
    "cooldown": "#abd9e9", "gate": "#2c7bb6", "risk_maxdd": "#d7191c", "risk_daily": "#f46d43", "trade": "#1a9641",
}
WIDTH_MODE = "stretch_width"
TIME_TIP = ("time", "@x{%F %H:%M}")
CSS = """<style>
table.r{border-collapse:collapse;font-size:13px;margin:4px 18px 12px 0}
table.r td,table.r th{border:1px solid #ddd;padding:2px 8px;text-align:left}
table.r th{background:#f3f3f3}
.tag{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-weight:600}
.is{background:#c0392b}.oos{background:#1e8449}.unk{background:#7f8c8d}
.note{color:#555;font-size:12px}
</style>"""


# --- decimation ------------------------------------------------------------------------------
def minmax_indices(y: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """Sorted indices to draw ``y`` at ``buckets`` pixels: each bucket's first minimum and first
    maximum (NaN-only buckets keep one NaN, so a line still breaks there), plus both ends.
    Short series are returned whole."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n <= 2 * buckets:
        return np.arange(n)
    k = math.ceil(n / buckets)
    pad = buckets * k - n
    lo = np.concatenate([np.where(np.isnan(y), np.inf, y), np.full(pad, np.inf)]).reshape(buckets, k)
    hi = np.concatenate([np.where(np.isnan(y), -np.inf, y), np.full(pad, -np.inf)]).reshape(buckets, k)
    base = np.arange(buckets) * k
    idx = np.concatenate([[0, n - 1], base + lo.argmin(axis=1), base + hi.argmax(axis=1)])
    return np.unique(idx[idx < n])


def decimated(x: pd.DatetimeIndex | np.ndarray, y: np.ndarray, buckets: int = BUCKETS) -> dict[str, np.ndarray]:
    """``{"x": ..., "y": ...}`` of the min/max-decimated series (x as naive UTC datetimes)."""
    i = minmax_indices(y, buckets)
    return {"x": _naive(x)[i], "y": np.asarray(y, dtype=float)[i]}


def _naive(x: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    if isinstance(x, pd.DatetimeIndex):
        return (x.tz_convert(None) if x.tz is not None else x).to_numpy()
    return np.asarray(x)


def category_blocks(x: pd.DatetimeIndex, values: np.ndarray, bar: pd.Timedelta, order: Sequence[str],
                    buckets: int = BUCKETS) -> pd.DataFrame:
    """Rectangles showing which value each bar had: rows (left, right, value, bars, bottom, top).

    Up to ``2 * buckets`` bars, or when there are at most ``buckets`` runs: one full-height
    rectangle per run of equal values. Otherwise the bars are cut into ``buckets`` equal slices
    and each slice is a stack of its values' shares (``order`` bottom up), so a value that
    holds a single bar of a slice still shows; equal neighbouring slices are merged."""
    t = _naive(x)
    v = np.asarray(values).astype(str)
    n = len(v)
    cols = ["left", "right", "value", "bars", "bottom", "top"]
    if n == 0:
        return pd.DataFrame(columns=cols)
    end_time = t[-1] + bar.to_timedelta64()
    if n <= 2 * buckets or np.count_nonzero(v[1:] != v[:-1]) + 1 <= buckets:
        starts = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
        ends = np.concatenate([starts[1:], [n]])
        right = np.concatenate([t[starts[1:]], [end_time]])
        out = pd.DataFrame({"left": t[starts], "right": right, "value": v[starts], "bars": ends - starts,
                            "bottom": 0.0, "top": 1.0})
        out.attrs["stacked"] = False
        return out
    edges = np.linspace(0, n, buckets + 1).astype(int)
    codes = {name: i for i, name in enumerate(order)}
    for extra in sorted(set(np.unique(v)) - set(codes)):
        codes[extra] = len(codes)
    names = list(codes)
    code = np.array([codes[c] for c in v]) if n < 1000 else pd.Series(v).map(codes).to_numpy()
    slice_of = np.repeat(np.arange(buckets), np.diff(edges))
    counts = np.zeros((buckets, len(names)), dtype=np.int64)
    np.add.at(counts, (slice_of, code), 1)
    share = counts / counts.sum(axis=1, keepdims=True)
    top = np.cumsum(share, axis=1)
    bottom = top - share
    lefts = t[edges[:-1]]
    rights = np.concatenate([t[edges[1:-1]], [end_time]])
    rows = []
    for j, name in enumerate(names):
        k = np.flatnonzero(counts[:, j])
        if not len(k):
            continue
        # merge consecutive slices whose rectangle is the same
        same = (np.diff(k) == 1) & np.isclose(bottom[k[1:], j], bottom[k[:-1], j]) & np.isclose(top[k[1:], j], top[k[:-1], j])
        first = np.concatenate([[True], ~same])
        grp = np.cumsum(first) - 1
        g_start = k[first]
        g_end = k[np.concatenate([~same, [True]])]
        rows.append(pd.DataFrame({"left": lefts[g_start], "right": rights[g_end], "value": name,
                                  "bars": np.bincount(grp, weights=counts[k, j]).astype(np.int64),
                                  "bottom": bottom[g_start, j], "top": top[g_start, j]}))
    out = pd.concat(rows, ignore_index=True)
    out.attrs["stacked"] = True
    return out


# --- small shared pieces ---------------------------------------------------------------------------
def _fig(title: str, name: str, height: int, x_range: Any = None, y_axis_type: str = "linear",
         x_axis_type: str = "datetime", **kw: Any) -> Any:
    opts: dict[str, Any] = {"title": title, "name": name, "height": height, "sizing_mode": WIDTH_MODE,
                            "x_axis_type": x_axis_type, "y_axis_type": y_axis_type,
                            "tools": "xpan,xwheel_zoom,box_zoom,reset,save", "active_scroll": "xwheel_zoom"}
    if x_range is not None:
        opts["x_range"] = x_range
    opts.update(kw)
    if isinstance(opts.get("y_range"), list):  # factors: a categorical axis
        opts["y_axis_type"] = "auto"
    p = figure(**opts)
    p.toolbar.logo = None
    return p


def _line(p: Any, data: dict[str, np.ndarray], label: str, color: str, name: str, width: float = 1.5,
          dash: str = "solid", step: bool = False) -> Any:
    src = ColumnDataSource(data, name=f"{name}_src")
    glyph = p.step if step else p.line
    kw = {"mode": "after"} if step else {}
    r = glyph("x", "y", source=src, color=color, line_width=width, line_dash=dash, legend_label=label, name=name, **kw)
    return r


def _hover_time(p: Any, renderers: list[Any], extra: Sequence[tuple[str, str]] = (), fmt: str = "@y{0.00000000}") -> None:
    p.add_tools(HoverTool(renderers=renderers, tooltips=[TIME_TIP, ("value", fmt), *extra],
                          formatters={"@x": "datetime"}, mode="vline" if not extra else "mouse"))


def _finish_legend(p: Any) -> None:
    p.legend.click_policy = "hide"
    p.legend.location = "top_left"
    p.legend.background_fill_alpha = 0.7
    p.legend.label_text_font_size = "11px"
    p.legend.spacing = 0
    p.legend.padding = 4


def _div(text: str, name: str, **kw: Any) -> Div:
    """A Div with the report's CSS (bokeh renders each Div in its own shadow root)."""
    return Div(text=CSS + text, name=name, **kw)


def _table(rows: Iterable[tuple[Any, Any]], head: tuple[str, str] = ("", "")) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f'<table class="r"><tr><th>{html.escape(head[0])}</th><th>{html.escape(head[1])}</th></tr>{body}</table>'


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "n/a" if not math.isfinite(v) else f"{v:.8g}"
    return str(v)


def _page(title: str, layout: LayoutDOM) -> str:
    return file_html(layout, INLINE, title=title)


def write_html(title: str, layout: LayoutDOM, path: str | Path) -> int:
    """Write the page atomically; returns its size in bytes."""
    text = _page(title, layout)
    atomic_write_text(path, text)
    return len(text.encode())


# --- in-sample / out-of-sample ------------------------------------------------------------
def seen_spans(meta: dict[str, Any]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Date spans a search looked at, from an emitted config's provenance (``meta``: optimiser
    train/test, walk-forward OOS span and folds, and the same of its parents)."""
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def span(a: Any, b: Any) -> None:
        try:
            lo, hi = pd.Timestamp(a), pd.Timestamp(b)
        except (TypeError, ValueError):
            return
        lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo
        hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi
        if len(str(b)) <= 10:  # a bare date includes that whole day
            hi = hi + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
        out.append((lo, hi))

    m: Any = meta
    while isinstance(m, dict) and m:
        for key in ("train", "test"):
            v = m.get(key)
            if isinstance(v, list | tuple) and len(v) == 2 and all(v):
                span(*v)
        oos = m.get("oos")
        if isinstance(oos, dict) and oos.get("oos_start") and oos.get("oos_end"):
            span(oos["oos_start"], oos["oos_end"])
        ov = m.get("overfit")
        if isinstance(ov, dict) and isinstance(ov.get("period"), list) and len(ov["period"]) == 2:
            span(*ov["period"])
        m = m.get("parent")
    return out


def sample_label(meta: dict[str, Any], start: pd.Timestamp, end: pd.Timestamp) -> tuple[str, str]:
    """``(label, why)``: "in-sample" when the window overlaps a span the search saw,
    "out-of-sample" when it does not, "not known" when the config carries no search windows."""
    spans = seen_spans(meta)
    if not spans:
        return "not known", "the config records no search windows (hand-written or defaults)"
    seen = ", ".join(f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in spans)
    if any(a <= end and start <= b for a, b in spans):
        return "in-sample", f"this window overlaps what the search saw ({seen})"
    return "out-of-sample", f"the search saw only {seen}"


def _label_html(label: str, why: str) -> str:
    cls = {"in-sample": "is", "out-of-sample": "oos"}.get(label, "unk")
    return f'<span class="tag {cls}">{html.escape(label)}</span> <span class="note">{html.escape(why)}</span>'


# --- backtest ------------------------------------------------------------------------------
def level_series(bars: pd.DataFrame, trend_kind: str, trend_lookback: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bar: trend, and the closes at which entry (R12) and exit (R13) would fire."""
    close, ratio = bars["close"].to_numpy(float), bars["ratio"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = close / (1.0 + ratio)
    lb = trend_lookback if trend_kind == "sma" else None
    lv = np.frompyfunc(lambda c, r, e, x: price_levels(c, r, e, x, lb), 4, 2)
    buy, sell = lv(close, ratio, bars["entry_band"].to_numpy(float), bars["exit_band"].to_numpy(float))
    return trend, buy.astype(float), sell.astype(float)


def backtest_report(result: BacktestResult, data_report: DataReport | None = None, title: str = "ETH/BTC backtest",
                    label: tuple[str, str] | None = None) -> LayoutDOM:
    """The backtest page (panels named price, weights, wealth, wealth_log, drawdown, reasons)."""
    bars, trades, s, cfg = result.bars, result.trades, result.summary, result.config
    idx = bars.index
    bar = pd.Timedelta(minutes=int(s["interval_minutes"]))
    label = label or sample_label(cfg.meta, idx[0], idx[-1])
    x = _naive(idx)
    decim = len(bars) > 2 * BUCKETS

    price = _fig("ETH/BTC close, trend and the entry/exit price levels; fills", "price", 340)
    trend, buy_lv, sell_lv = level_series(bars, cfg.strategy.trend_kind, cfg.strategy.trend_lookback)
    r_close = _line(price, decimated(idx, bars["close"].to_numpy()), "close", "#333333", "close", 1.2)
    _line(price, decimated(idx, trend), f"trend ({cfg.strategy.trend_kind} {cfg.strategy.trend_lookback})",
          "#8e44ad", "trend", 1.2)
    _line(price, decimated(idx, buy_lv), "entry level (R12: buy below)", "#27ae60", "entry_level", 1, "dashed")
    _line(price, decimated(idx, sell_lv), "exit level (R13: sell above)", "#c0392b", "exit_level", 1, "dashed")
    _hover_time(price, [r_close])
    fills = []
    for side, marker, color in (("BUY", "triangle", "#1e8449"), ("SELL", "inverted_triangle", "#c0392b")):
        t = trades[trades["side"] == side]
        src = ColumnDataSource({
            "x": _naive(pd.DatetimeIndex(t["time"])), "y": t["price"].to_numpy(float),
            "qty": t["qty_eth"].to_numpy(float), "notional": t["notional_btc"].to_numpy(float),
            "fee": t["fee_btc"].to_numpy(float), "reason": t["reason"].astype(str).to_numpy(),
            "decided": _naive(pd.DatetimeIndex(t["decision_time"])).astype("datetime64[ms]").astype(str),
        }, name=f"{side.lower()}_src")
        fills.append(price.scatter("x", "y", source=src, marker=marker, size=9, color=color, line_color="black",
                                   line_width=0.5, legend_label=f"{side.lower()} fills ({len(t)})",
                                   name=f"{side.lower()}_fills"))
    price.add_tools(HoverTool(renderers=fills, formatters={"@x": "datetime"}, tooltips=[
        ("fill", "@x{%F %H:%M}"), ("price", "@y{0.000000}"), ("size", "@qty{0.000000} ETH"),
        ("notional", "@notional{0.000000} BTC"), ("fee", "@fee{0.00000000} BTC"), ("reason", "@reason"),
        ("decided at close of", "@decided")]))
    _finish_legend(price)
    xr = price.x_range

    weights = _fig("ETH weight: target w*, desired and held", "weights", 190, xr, y_range=Range1d(-0.05, 1.05))
    rw = [_line(weights, decimated(idx, bars[c].to_numpy()), lbl, color, c, w, dash, step=True)
          for c, lbl, color, w, dash in (("target_w", "target w*", "#95a5a6", 1.0, "solid"),
                                         ("desired_w", "desired", "#e67e22", 1.0, "dashed"),
                                         ("w_cur", "held", "#2471a3", 1.6, "solid"))]
    _hover_time(weights, rw[-1:], fmt="@y{0.000}")
    _finish_legend(weights)

    wealth = bars["wealth_btc"].to_numpy(float)
    eth_hodl = s["eth_hodl_qty"] * bars["close"].to_numpy(float)
    wealth_figs = []
    for name, axis in (("wealth", "linear"), ("wealth_log", "log")):
        p = _fig(f"Wealth in BTC vs BTC-HODL and ETH-HODL ({axis} scale)", name, 260, xr, y_axis_type=axis,
                 visible=axis == "linear")
        rr = _line(p, decimated(idx, wealth), "strategy", "#2471a3", f"{name}_strategy", 1.6)
        _line(p, {"x": x[[0, -1]], "y": np.full(2, s["btc_hodl_btc"])}, "BTC-HODL", "#f39c12", f"{name}_btc_hodl",
              1.2, "dashed")
        _line(p, decimated(idx, eth_hodl), "ETH-HODL", "#7f8c8d", f"{name}_eth_hodl", 1.2)
        _hover_time(p, [rr])
        _finish_legend(p)
        wealth_figs.append(p)
    toggle = Toggle(label="log scale", active=False, name="log_toggle", width=110)
    toggle.js_on_change("active", CustomJS(args={"lin": wealth_figs[0], "log": wealth_figs[1]},
                                           code="lin.visible = !this.active; log.visible = this.active"))
    dd = _fig("Drawdown of the strategy's wealth", "drawdown", 150, xr)
    dd_data = decimated(idx, -drawdown(wealth))
    src = ColumnDataSource({"x": dd_data["x"], "y": dd_data["y"], "zero": np.zeros(len(dd_data["x"]))},
                           name="drawdown_src")
    dd.varea("x", "y", "zero", source=src, fill_color="#c0392b", fill_alpha=0.35, name="drawdown_area")
    r_dd = dd.line("x", "y", source=src, color="#c0392b", line_width=1, name="drawdown")
    dd.yaxis.formatter = NumeralTickFormatter(format="0%")
    _hover_time(dd, [r_dd], fmt="@y{0.00%}")

    reasons = _fig("Reason of every bar (why it did or did not trade) and the regime gate", "reasons", 170, xr,
                   y_range=Range1d(-0.15, 1.6))
    blocks = category_blocks(idx, bars["reason"].to_numpy(), bar, list(REASON_COLORS))
    lo_band, hi_band = 0.55, 1.0
    quads = []
    for reason, color in REASON_COLORS.items():
        part = blocks[blocks["value"] == reason]
        if part.empty:
            continue
        src = ColumnDataSource({"left": part["left"].to_numpy(), "right": part["right"].to_numpy(),
                                "bottom": lo_band + part["bottom"].to_numpy() * (hi_band - lo_band),
                                "top": lo_band + part["top"].to_numpy() * (hi_band - lo_band),
                                "bars": part["bars"].to_numpy(), "reason": part["value"].to_numpy()},
                               name=f"reason_{reason}_src")
        n_bars = int((bars["reason"] == reason).sum())
        quads.append(reasons.quad(left="left", right="right", bottom="bottom", top="top", source=src,
                                  fill_color=color, line_color=None, legend_label=f"{reason} ({n_bars})",
                                  name=f"reason_{reason}"))
    reasons.add_tools(HoverTool(renderers=quads, formatters={"@left": "datetime", "@right": "datetime"},
                                tooltips=[("reason", "@reason"), ("from", "@left{%F %H:%M}"), ("bars", "@bars")]))
    gate = decimated(idx, bars["gate_open"].to_numpy(float) * 0.4)
    _line(reasons, gate, "gate open (high) / closed (low)", "#2c3e50", "gate", 1.2, step=True)
    reasons.yaxis.visible = False
    reasons.legend.orientation = "horizontal"
    reasons.legend.location = "top_left"
    reasons.legend.click_policy = "hide"
    reasons.legend.label_text_font_size = "10px"
    reasons.legend.background_fill_alpha = 0.7

    gaps = data_report.gaps if data_report is not None else []
    gap_rows = [(f"{g.after:%Y-%m-%d %H:%M} .. {g.before:%Y-%m-%d %H:%M}", f"{g.missing_bars} missing bars")
                for g in gaps[:50]]
    if len(gaps) > 50:
        gap_rows.append(("...", f"{len(gaps) - 50} more gaps"))
    for g in gaps:
        for p in (price, *wealth_figs, reasons):
            p.add_layout(Span(location=pd.Timestamp(g.after).tz_convert(None), dimension="height",
                              line_color="#999999", line_dash="dotted", line_width=1))
    shown = (f"decimated for display: each of ~{BUCKETS} pixel buckets keeps its minimum and maximum; "
             "every fill is drawn" if decim else "every bar drawn")
    if blocks.attrs.get("stacked"):
        shown += "; reason band: each bucket stacks the shares of its bars' reasons"
    header = _div((f"<h2>{html.escape(title)}</h2><div>{_label_html(*label)}</div>"
                       f"<div class='note'>{s['start'][:16]} .. {s['end'][:16]} UTC, {s['bars']} bars of "
                       f"{s['interval_minutes']}m; {html.escape(shown)}. Decisions at a bar's close fill at the "
                       f"next bar's open.</div>"), sizing_mode=WIDTH_MODE, name="header")
    summary_rows = [(f"{k} ({label[0]})" if k in ("final_btc", "return_btc", "sharpe", "sortino", "max_drawdown")
                     else k, v) for k, v in s.items()]
    data_rows: list[tuple[Any, Any]] = [("file", data_report.path if data_report else "n/a"),
                                        ("gaps", f"{len(gaps)} ({sum(g.missing_bars for g in gaps)} missing bars)")]
    if data_report is not None:
        data_rows += [("duplicates dropped", data_report.duplicates_dropped),
                      ("rows out of order", data_report.nonmonotonic_rows), ("rows off grid", data_report.off_grid_rows)]
    data_rows += gap_rows
    tables = _div((
        f"<div style='display:flex;flex-wrap:wrap'><div><h3>Summary (R29) -- {html.escape(label[0])}</h3>"
        f"{_table(summary_rows, ('metric', 'value'))}</div>"
        f"<div><h3>Effective config</h3>{_table(cfg.flat().items(), ('parameter', 'value'))}</div>"
        f"<div><h3>Data gap report</h3>{_table(data_rows, ('', ''))}</div></div>"),
        sizing_mode=WIDTH_MODE, name="summary")
    return column(header, price, weights, toggle, *wealth_figs, dd, reasons, tables, sizing_mode=WIDTH_MODE)


def write_backtest_html(result: BacktestResult, path: str | Path, data_report: DataReport | None = None,
                        title: str = "ETH/BTC backtest") -> int:
    return write_html(title, backtest_report(result, data_report, title), path)


# --- search (optimizer_cli.py, ethbtc_accum_bot.py optimize) ----------------------------------------
PENALTY_COLORS = ("#e74c3c", "#f39c12", "#8e44ad", "#16a085")


def searched_params(frame: pd.DataFrame) -> list[str]:
    """The strategy parameters that vary across the trials (the searched ones), in config order."""
    return [k for k in StrategyParams.model_fields
            if k in frame and k != "bar_interval_minutes" and frame[k].nunique(dropna=True) > 1]


def search_report(frame: pd.DataFrame, params: Sequence[str], score: str, pick: int | None,
                  penalty_terms: pd.DataFrame | None = None, title: str = "Parameter search",
                  notes: Sequence[str] = ()) -> LayoutDOM:
    """Trials (one row each: ``train_final_btc``, ``test_final_btc``, the ``params``, ``score``)
    with the picked row label ``pick``. ``penalty_terms``: one column per term, same index."""
    f = frame.copy()
    f["is_pick"] = f.index == pick
    rest, chosen = f[~f["is_pick"]], f[f["is_pick"]]
    base = f["basis_btc"] if "basis_btc" in f else 1.0
    f["train_rel"], f["test_rel"] = f["train_final_btc"] / base, f["test_final_btc"] / base

    def src(part: pd.DataFrame, name: str) -> ColumnDataSource:
        d = {c: part[c].to_numpy() for c in ["trial", *params, score] if c in part}
        d["train"] = f.loc[part.index, "train_rel"].to_numpy(float)
        d["test"] = f.loc[part.index, "test_rel"].to_numpy(float)
        return ColumnDataSource(d, name=name)

    s_rest, s_pick = src(rest, "trials_src"), src(chosen, "pick_src")
    tips = [("trial", "@trial"), ("train final", "@train{0.0000}"), ("test final", "@test{0.0000}"),
            (score, f"@{score}{{0.0000}}")]
    over = _fig("Train vs test final (relative to basis_btc): the overfitting picture", "train_vs_test", 420,
                x_axis_type="linear", tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
                width=520, sizing_mode="fixed")
    r1 = over.scatter("train", "test", source=s_rest, size=5, alpha=0.5, color="#2471a3", legend_label="trials",
                      name="trials")
    r2 = over.scatter("train", "test", source=s_pick, size=14, marker="star", color="#e74c3c", line_color="black",
                      legend_label="pick", name="pick")
    lo = float(np.nanmin([f["train_rel"].min(), f["test_rel"].min()]))
    hi = float(np.nanmax([f["train_rel"].max(), f["test_rel"].max()]))
    over.line([lo, hi], [lo, hi], color="#999999", line_dash="dashed", legend_label="test = train", name="diagonal")
    over.xaxis.axis_label = "train final (in-sample)"
    over.yaxis.axis_label = "test final (out-of-sample per trial; the pick is chosen on it)"
    over.add_tools(HoverTool(renderers=[r1, r2], tooltips=tips + [(p, f"@{p}") for p in params]))
    _finish_legend(over)
    panels: list[Any] = []
    for prm in params:
        if prm not in f:
            continue
        cat = not pd.api.types.is_numeric_dtype(f[prm])
        opts: dict[str, Any] = {"x_range": sorted(f[prm].astype(str).unique())} if cat else {}
        p = _fig(prm, f"param_{prm}", 220, x_axis_type="auto", width=300, sizing_mode="fixed",
                 tools="pan,wheel_zoom,box_zoom,reset", active_scroll="wheel_zoom", **opts)
        if cat:
            for s_ in (s_rest, s_pick):
                s_.data[f"{prm}_s"] = [str(v) for v in s_.data[prm]]
        col = f"{prm}_s" if cat else prm
        a = p.scatter(col, score, source=s_rest, size=4, alpha=0.45, color="#2471a3", name=f"param_{prm}_trials")
        b = p.scatter(col, score, source=s_pick, size=13, marker="star", color="#e74c3c", line_color="black",
                      name=f"param_{prm}_pick")
        p.add_tools(HoverTool(renderers=[a, b], tooltips=tips + [(prm, f"@{prm}")]))
        p.yaxis.axis_label = score
        panels.append(p)
    grid = [row(*panels[i:i + 4]) for i in range(0, len(panels), 4)]
    items: list[Any] = [_div(f"<h2>{html.escape(title)}</h2>" + "".join(
        f"<div class='note'>{html.escape(n)}</div>" for n in notes), sizing_mode=WIDTH_MODE, name="header")]
    pen_fig = None
    if penalty_terms is not None and not penalty_terms.empty:
        top = f.sort_values(score, ascending=False).head(20).index.tolist()
        if pick is not None and pick not in top:
            top.append(pick)
        terms = penalty_terms.loc[top]
        labels = [("PICK " if i == pick else "") + f"trial {int(f.loc[i, 'trial'])}" for i in top]
        data: dict[str, Any] = {"trial": labels, **{c: terms[c].to_numpy(float) for c in terms.columns}}
        pen_fig = _fig("Penalty terms of the 20 best robust scores (+ the pick), in units of basis_btc",
                       "penalties", 30 + 22 * len(labels), x_axis_type="linear", y_range=list(reversed(labels)),
                       tools="hover,reset,save", active_scroll=None, width=700, sizing_mode="fixed",
                       tooltips="@trial $name: @$name{0.0000}")
        pen_fig.hbar_stack(list(terms.columns), y="trial", height=0.7, source=ColumnDataSource(data, name="penalties_src"),
                           color=list(PENALTY_COLORS[:len(terms.columns)]), legend_label=list(terms.columns))
        pen_fig.legend.location = "bottom_right"
        pen_fig.legend.label_text_font_size = "10px"
    items.append(row(over, pen_fig) if pen_fig is not None else over)
    items.append(_div(f"<h3>{html.escape(score)} against each parameter (star: the pick)</h3>", name="param_title"))
    items.extend(grid)
    if pick is not None:
        items.append(_div("<h3>The pick</h3>" + _table(
            [(c, f.loc[pick, c]) for c in f.columns if c not in ("is_pick", "train_rel", "test_rel")],
            ("column", "value")), name="pick_table"))
    return column(*items, sizing_mode=WIDTH_MODE)


# --- walk-forward pick (wf_pick.py) ----------------------------------------------------------
def pick_report(families: pd.DataFrame, pick_family: str, spread_label: str, title: str = "Walk-forward pick",
                equity: pd.DataFrame | None = None, logits: np.ndarray | None = None,
                overfit: dict[str, Any] | None = None, notes: Sequence[str] = ()) -> LayoutDOM:
    """``families``: rows best first with ``family``, ``center``, ``lo``, ``hi`` (and ``std``);
    ``equity``: stitched OOS frame indexed by time with ``strategy``, ``btc_hodl``, ``eth_hodl``;
    ``logits``: CSCV logits; ``overfit``: wf_pick's overfitting figures."""
    fam = families.reset_index(drop=True)
    names = fam["label"] if "label" in fam else fam["family"]
    fam["y"] = [("PICK  " if f == pick_family else "") + f"#{i} {n}" for i, (f, n) in
                enumerate(zip(fam["family"], names, strict=True))]
    fam["is_pick"] = fam["family"] == pick_family
    fam["color"] = np.where(fam["is_pick"], "#e74c3c", "#2471a3")
    if "std" not in fam:
        fam["std"] = np.nan
    fam["c_lo"], fam["c_hi"] = fam["center"] - fam["std"].fillna(0), fam["center"] + fam["std"].fillna(0)
    src = ColumnDataSource({c: fam[c].to_numpy() for c in ("y", "center", "lo", "hi", "std", "c_lo", "c_hi", "color",
                                                             "family")}, name="families_src")
    fp = _fig(f"Families ranked (best on top): {spread_label}", "families", 60 + 26 * len(fam), x_axis_type="linear",
              y_range=list(reversed(fam["y"].tolist())), tools="reset,save", active_scroll=None)
    fp.hbar(y="y", left="c_lo", right="c_hi", height=0.45, source=src, fill_color="color", fill_alpha=0.3,
            line_color="color", name="families_std")
    fp.segment("lo", "y", "hi", "y", source=src, color="#2c3e50", line_width=1.5, name="families_range")
    r = fp.scatter("center", "y", source=src, size=9, color="color", name="families_center")
    fp.add_tools(HoverTool(renderers=[r], tooltips=[("family", "@family"), ("mean", "@center{0.0000}"),
                                                    ("std", "@std{0.0000}"), ("min..max", "@lo{0.0000} .. @hi{0.0000}")]))
    items: list[Any] = [_div(f"<h2>{html.escape(title)}</h2>" + "".join(
        f"<div class='note'>{html.escape(n)}</div>" for n in notes), sizing_mode=WIDTH_MODE, name="header"), fp]
    if equity is not None and not equity.empty:
        ep = _fig("Stitched out-of-sample equity (each fold's pick on its unseen test period) vs HODL",
                  "oos_equity", 300)
        idx = pd.DatetimeIndex(equity.index)
        rr = _line(ep, decimated(idx, equity["strategy"].to_numpy()), "strategy (out-of-sample)", "#2471a3",
                   "oos_strategy", 1.6)
        _line(ep, decimated(idx, equity["btc_hodl"].to_numpy()), "BTC-HODL", "#f39c12", "oos_btc_hodl", 1.2, "dashed")
        _line(ep, decimated(idx, equity["eth_hodl"].to_numpy()), "ETH-HODL", "#7f8c8d", "oos_eth_hodl", 1.2)
        _hover_time(ep, [rr], fmt="@y{0.0000}")
        _finish_legend(ep)
        items.append(ep)
    if logits is not None and len(logits) and overfit:
        fin = np.asarray(logits, float)
        fin = fin[np.isfinite(fin)]
        edges = np.histogram_bin_edges(fin, bins=min(40, max(5, len(fin) // 10))) if len(fin) else np.array([0, 1])
        counts, edges = np.histogram(fin, bins=edges)
        hp = _fig(f"CSCV logits: PBO {overfit['pbo']:.2f} (share of splits <= 0; >= 0.5: no better than chance)",
                  "pbo_hist", 280, x_axis_type="linear", tools="reset,save", active_scroll=None, width=620,
                  sizing_mode="fixed")
        hp.yaxis.axis_label = "splits"
        hs = ColumnDataSource({"left": edges[:-1], "right": edges[1:], "top": counts,
                               "color": np.where(edges[1:] <= 0, "#e74c3c", "#2471a3")}, name="pbo_src")
        hp.quad(left="left", right="right", bottom=0, top="top", source=hs, fill_color="color", line_color="white",
                name="pbo_bars")
        hp.add_layout(Span(location=0, dimension="height", line_color="black", line_dash="dashed"))
        hp.xaxis.axis_label = "logit of the in-sample best's out-of-sample rank (<= 0: bottom half)"
        ov = overfit
        dsr_rows = [("PBO", ov["pbo"]), ("candidate families", ov.get("pbo_candidates")), ("days", ov.get("pbo_days")),
                    ("CSCV blocks", ov.get("pbo_splits")), ("P(out-of-sample loss of the in-sample best)",
                                                             ov.get("prob_oos_loss")),
                    ("deflated Sharpe ratio", ov["deflated_sharpe"]), ("pick's Sharpe / yr", ov.get("sharpe_annual")),
                    ("expected max Sharpe / yr of noise trials", ov.get("expected_max_sharpe_annual")),
                    ("trials deflated for", ov.get("dsr_trials")), ("period (in-sample: the pick saw it)",
                                                                    " .. ".join(map(str, ov.get("period", []))))]
        items.append(row(hp, _div("<h3>Overfitting</h3>" + _table(dsr_rows, ("measure", "value")),
                                 name="overfit_table")))
    items.append(_div("<h3>Families</h3>" + _table(
        [(f"#{i} {r['family']}" + (" (pick)" if r["is_pick"] else ""),
          f"{r['center']:.5g} (min {r['lo']:.5g}, max {r['hi']:.5g})") for i, r in fam.iterrows()],
        ("family", spread_label)), name="families_table"))
    return column(*items, sizing_mode=WIDTH_MODE)
