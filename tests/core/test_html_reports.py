"""HTML reports (issue 18): structure built from the demo sample and real Binance data, and the
pages loaded in a real headless Chromium (no console errors, every plot sized and drawn).

Decimation is for display only and must keep each pixel bucket's extremes and every fill
(SPEC R28 trades); the summary is R29 labelled in-sample / out-of-sample. Screenshots of every
page are kept under tmp/artefacts/html_reports/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ethbtc import htmlreport as H
from ethbtc.backtest import run_backtest
from ethbtc.config import build_config, load_config
from ethbtc.data.candles import load_candles
from ethbtc.data.sample import ensure_sample
from ethbtc.research.scoring import Penalties, penalty_frame, robust_score
from tests.conftest import ROOT, SHARED_DATA
from tests.support.browser import Chromium, chromium_path
from tests.support.cli_harness import run_script
from tests.support.html_probe import BOKEH_PROBE, BOKEH_READY, SHOW_LOG

ARTEFACTS = ROOT / "tmp" / "artefacts" / "html_reports"
REAL_ETH = SHARED_DATA / "ETHBTC_15m_2020-02_2020-10.freqtrade.json"
REAL_BNB = SHARED_DATA / "BNBBTC_15m_2020-02_2020-10.freqtrade.json"
REAL_1H = SHARED_DATA / "ETHBTC_1h_2017-07_2023-06.csv"
BACKTEST_PANELS = {"price", "weights", "wealth", "wealth_log", "drawdown", "reasons"}
MAX_BYTES = 5_000_000


def need_real_data() -> None:
    if not REAL_ETH.exists():
        pytest.skip(f"real data not found: {REAL_ETH} (../shared/data is absent)")


# --- decimation ------------------------------------------------------------------------------
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1, max_size=400),
       st.integers(1, 40))
def test_minmax_decimation_keeps_every_buckets_extremes_and_both_ends(values, buckets):
    y = np.asarray(values)
    idx = H.minmax_indices(y, buckets)
    assert np.all(np.diff(idx) > 0) and idx[0] == 0 and idx[-1] == len(y) - 1
    if len(y) <= 2 * buckets:
        assert len(idx) == len(y)
        return
    assert len(idx) <= 2 * buckets + 2
    k = -(-len(y) // buckets)
    kept = set(idx.tolist())
    for a in range(0, len(y), k):
        part = y[a:a + k]
        if np.isnan(part).all():
            assert kept & set(range(a, a + len(part)))  # the line breaks there
            continue
        assert a + int(np.nanargmin(part)) in kept and a + int(np.nanargmax(part)) in kept


def test_reason_blocks_show_a_single_bar_in_a_long_run_and_count_every_bar():
    n = 20_000
    t = pd.date_range("2022-01-01", periods=n, freq="15min", tz="UTC")
    v = np.array(["threshold"] * n, dtype=object)
    v[::37] = "hold"  # too many runs for one rectangle each -> stacked shares per bucket
    v[12_345] = "trade"
    blocks = H.category_blocks(t, v, pd.Timedelta(minutes=15), list(H.REASON_COLORS), buckets=500)
    assert blocks.attrs["stacked"]
    counts = blocks.groupby("value")["bars"].sum()
    assert counts["trade"] == 1 and counts["hold"] == len(v[::37]) and counts.sum() == n
    assert ((blocks["top"] - blocks["bottom"]) > 0).all() and (blocks["top"] <= 1 + 1e-12).all()
    few = H.category_blocks(t[:10], np.array(["a"] * 4 + ["b"] * 6), pd.Timedelta(minutes=15), ["a", "b"])
    assert list(few["value"]) == ["a", "b"] and list(few["bars"]) == [4, 6] and not few.attrs["stacked"]
    assert few["right"].iloc[-1] == (t[9] + pd.Timedelta(minutes=15)).tz_convert(None)


# --- in-sample / out-of-sample -------------------------------------------------------------
def test_sample_label_follows_the_configs_search_windows():
    meta = {"source": "optimizer_cli.py", "train": ["2022-01-01", "2022-09-30"], "test": ["2022-10-01", "2022-12-31"]}
    ts = pd.Timestamp
    assert H.sample_label(meta, ts("2023-01-01", tz="UTC"), ts("2023-06-30", tz="UTC"))[0] == "out-of-sample"
    assert H.sample_label(meta, ts("2022-12-31 12:00", tz="UTC"), ts("2023-06-30", tz="UTC"))[0] == "in-sample"
    assert H.sample_label({}, ts("2023-01-01", tz="UTC"), ts("2023-06-30", tz="UTC"))[0] == "not known"
    child = {"source": "optimizer_cli.py", "train": ["2024-01-01", "2024-03-31"], "test": ["2024-04-01", "2024-04-30"],
             "parent": meta}  # focused second stage: the parent's windows were seen too
    assert H.sample_label(child, ts("2022-05-01", tz="UTC"), ts("2022-06-01", tz="UTC"))[0] == "in-sample"
    wf = {"source": "wf_pick.py --walk-forward", "oos": {"oos_start": "2023-01-01 00:00:00+00:00",
                                                         "oos_end": "2023-12-31 23:45:00+00:00"}}
    assert H.sample_label(wf, ts("2024-01-01", tz="UTC"), ts("2024-03-01", tz="UTC"))[0] == "out-of-sample"


# --- backtest report structure -----------------------------------------------------------------
def check_backtest_layout(layout, result, data_report, label: str) -> None:
    names = {m.name for m in layout.references() if getattr(m, "name", None)}
    assert BACKTEST_PANELS <= names
    bars, trades = result.bars, result.trades
    decim = len(bars) > 2 * H.BUCKETS
    for name in ("close_src", "wealth_strategy_src", "w_cur_src", "drawdown_src"):
        n = len(layout.select_one({"name": name}).data["y"])
        assert (n <= 2 * H.BUCKETS + 2) if decim else (n == len(bars)), name
    close = layout.select_one({"name": "close_src"}).data["y"]
    assert close.max() == bars["close"].max() and close.min() == bars["close"].min()  # no spike lost
    # every fill: same count, times and prices as the trades table (R28), never decimated
    buys, sells = layout.select_one({"name": "buy_src"}).data, layout.select_one({"name": "sell_src"}).data
    assert len(buys["x"]) + len(sells["x"]) == len(trades) > 0
    for side, d in (("BUY", buys), ("SELL", sells)):
        t = trades[trades["side"] == side]
        assert np.array_equal(d["x"], t["time"].dt.tz_convert(None).to_numpy())
        assert np.array_equal(d["y"], t["price"].to_numpy()) and np.array_equal(d["qty"], t["qty_eth"].to_numpy())
    # reason band: every bar counted once, per reason
    shown = {}
    for reason in H.REASON_COLORS:
        src = layout.select_one({"name": f"reason_{reason}_src"})
        if src is not None:
            shown[reason] = int(np.sum(src.data["bars"]))
    assert shown == bars["reason"].value_counts().to_dict()
    header = layout.select_one({"name": "header"}).text
    summary = layout.select_one({"name": "summary"}).text
    assert f">{label}<" in header and f"Summary (R29) -- {label}" in summary and f"final_btc ({label})" in summary
    assert "Effective config" in summary and "trend_lookback" in summary
    assert f"{len(data_report.gaps)} ({data_report.missing_bars} missing bars)" in summary
    for g in data_report.gaps[:50]:
        assert f"{g.after:%Y-%m-%d %H:%M} .. {g.before:%Y-%m-%d %H:%M}" in summary


def test_backtest_report_from_the_demo_sample_has_every_panel_fill_and_label(tmp_path):
    eth, bnb = ensure_sample(tmp_path)  # the demo's sample: 2 years of 15m bars, 3 gaps
    candles, bnb_c = load_candles(eth), load_candles(bnb)
    cfg = load_config(ROOT / "configs" / "prod_live.json")
    result = run_backtest(cfg, candles, bnb_c)
    check_backtest_layout(H.backtest_report(result, candles.report), result, candles.report, "not known")
    # an emitted config whose search ended before this window: out-of-sample
    meta = {"source": "optimizer_cli.py", "train": ["2021-01-01", "2021-06-30"], "test": ["2021-07-01", "2021-12-31"]}
    emitted = build_config(cfg.flat() | {"meta": meta})
    res2 = run_backtest(emitted, candles, bnb_c)
    check_backtest_layout(H.backtest_report(res2, candles.report), res2, candles.report, "out-of-sample")


@pytest.mark.parametrize("path", [REAL_ETH, REAL_1H], ids=["15m_2020", "1h_2017_2023"])
def test_backtest_report_from_real_binance_data(path):
    need_real_data()
    candles = load_candles(path)
    cfg = build_config(load_config(ROOT / "configs" / "prod_live.json").flat()
                       | {"bar_interval_minutes": candles.interval_minutes, "interval": None})
    result = run_backtest(cfg, candles)
    assert candles.report.gaps  # real defects: the 2018 outage, the 2020-06-28 gap
    check_backtest_layout(H.backtest_report(result, candles.report), result, candles.report, "not known")


# --- the search and pick reports ---------------------------------------------------------------
def test_penalty_terms_are_exactly_what_the_robust_score_subtracts():
    rng = np.random.default_rng(0)
    n = 50
    df = pd.DataFrame({"train_final_btc": rng.uniform(0.1, 0.3, n), "test_final_btc": rng.uniform(0.1, 0.3, n),
                       "test_turns": rng.integers(0, 80, n), "test_fees_btc": rng.uniform(0, 0.01, n),
                       "test_turnover_btc": rng.uniform(0, 30, n), "basis_btc": 0.16})
    pen = Penalties(lambda_turnover=0.001)
    terms = penalty_frame(df, pen)
    robust = robust_score(df["train_final_btc"], df["test_final_btc"], df["test_turns"], df["test_fees_btc"],
                          df["test_turnover_btc"], df["basis_btc"], pen)
    assert np.allclose(df["test_final_btc"] / 0.16 - terms.sum(axis=1), robust, rtol=0, atol=1e-12)
    assert list(terms.columns) == ["turns", "train/test gap", "fees", "turnover"] and (terms >= 0).all().all()


# --- the command line: every report written, self-contained, small -------------------------------
@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """Every --html-out of the four scripts, run as a user runs them on the demo sample (and on real
    data when ../shared/data is there)."""
    d = tmp_path_factory.mktemp("html")
    eth, bnb = ensure_sample(d / "sample")
    short, _ = ensure_sample(d / "short", days=200)
    out: dict[str, Path] = {}

    def run(name: str, cmd: list[str], *argv: object) -> None:
        path = d / f"{name}.html"
        r = run_script(cmd, [*map(str, argv), "--html-out", str(path)], cwd=ROOT, timeout=600)
        assert r.returncode == 0, r.describe()
        assert f"HTML report   -> {path}" in r.stdout
        out[name] = path

    run("backtest", ["ethbtc_accum_bot.py", "backtest"], "--data", eth, "--bnb-data", bnb, "--config",
        "configs/prod_live.json", "--trades-out", d / "trades.csv", "--json-out", d / "summary.json")
    run("optimize", ["ethbtc_accum_bot.py", "optimize"], "--data", eth, "--train-start", "2022-01-01",
        "--train-end", "2022-12-31", "--test-start", "2023-01-01", "--test-end", "2023-12-31", "--n-random", 12,
        "--seed", 1)
    common = ["--data", eth, "--config", "configs/prod_live.json", "--n-random", 30, "--seed", 1, "--no-progress"]
    for name, tr, te in (("a", ("2022-01-01", "2022-09-30"), ("2022-10-01", "2022-12-31")),
                         ("b", ("2023-01-01", "2023-09-30"), ("2023-10-01", "2023-12-31"))):
        run(f"optimizer_{name}", ["optimizer_cli.py"], *common, "--train-start", tr[0], "--train-end", tr[1],
            "--test-start", te[0], "--test-end", te[1], "--out", d / f"opt_{name}.csv")
    run("wf_runs", ["wf_pick.py"], "--runs", d / "opt_a.csv", d / "opt_b.csv", "--min-occurs", 1, "--config",
        "configs/prod_live.json", "--data", eth, "--top-k", 5, "--pbo-splits", 8)
    run("wf_walk_forward", ["wf_pick.py"], "--walk-forward", "--data", short, "--train-days", 60, "--test-days", 30,
        "--n-random", 16, "--seed", 3, "--threads", 1, "--top-k", 3, "--pbo-splits", 8,
        "--oos-out", d / "oos.csv")
    if REAL_ETH.exists():
        run("backtest_real", ["ethbtc_accum_bot.py", "backtest"], "--data", REAL_ETH, "--bnb-data", REAL_BNB,
            "--config", "configs/prod_live.json", "--trades-out", d / "trades_real.csv")
    return out


def test_every_report_is_self_contained_and_small(reports):
    for name, path in reports.items():
        text = path.read_text()
        assert path.stat().st_size < MAX_BYTES, name
        assert not re.search(r"<script[^>]+src=", text), f"{name}: loads a script from elsewhere (must be offline)"
        assert not re.search(r"<link[^>]+href=\"?https?:", text), name
        assert "Bokeh.embed.embed_items" in text and len(text) > 1_000_000, f"{name}: bokeh's JS is not inlined"


def _doc_json(path: Path) -> dict:
    """The bokeh document embedded in a report page (what the browser decodes)."""
    text = path.read_text()
    m = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', text, re.S)
    assert m, path
    return next(iter(json.loads(m.group(1)).values()))


def test_search_and_pick_reports_show_the_pick_and_the_overfitting_figures(reports):
    opt = reports["optimizer_b"].read_text()
    for needle in ("Train vs test final", "Penalty terms", "robust_score against each parameter", "The pick",
                   "in-sample", "out-of-sample", "trend_lookback"):
        assert needle in opt, needle
    frame = pd.read_csv(reports["optimizer_b"].with_name("opt_b.csv"))
    pick_trial = int(frame.loc[frame["selected"], "trial"].iloc[0])
    assert re.search(rf"PICK trial {pick_trial}\b", opt)
    wf = reports["wf_runs"].read_text()
    for needle in ("Families ranked", "CSCV logits: PBO", "deflated Sharpe ratio", "(pick)"):
        assert needle in wf, needle
    wfw = reports["wf_walk_forward"].read_text()
    for needle in ("Stitched out-of-sample equity", "ETH-HODL", "BTC-HODL", "CSCV logits: PBO", "folds)"):
        assert needle in wfw, needle
    assert _doc_json(reports["wf_walk_forward"])["roots"]


# --- a real browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium; .ci/run installs it)")
    with Chromium(width=1400, height=1000) as b:
        yield b


def _load_and_check(browser, path: Path, name: str) -> list[dict]:
    page = browser.load(path, BOKEH_READY, BOKEH_PROBE)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / f"{name}.png").write_bytes(page.screenshot)
    assert page.console_errors == [], f"{name}: {page.console_errors}"
    plots = page.probe
    assert plots, f"{name}: no plot on the page"
    for p in plots:
        if not p["visible"]:
            continue
        assert p["width"] > 100 and p["height"] > 100, f"{name}/{p['name']}: {p['width']}x{p['height']}"
        drawn = [r for r in p["renderers"] if r["n"] > 0 and r["visible"]]
        assert drawn, f"{name}/{p['name']}: no trace with data"
        for r in drawn:
            assert r["mapped"] > 0, f"{name}/{p['name']}/{r['name']}: not drawn"
        assert p["coloured"] > 50, f"{name}/{p['name']}: the canvas shows no coloured trace"
    return plots


@pytest.mark.parametrize("name", ["backtest", "backtest_real"])
def test_backtest_report_loads_and_draws_in_chromium(browser, reports, name):
    if name not in reports:
        need_real_data()
    plots = {p["name"]: p for p in _load_and_check(browser, reports[name], name)}
    assert BACKTEST_PANELS <= set(plots)
    assert not plots["wealth_log"]["visible"] and plots["wealth"]["visible"]
    trades = pd.read_csv(reports[name].with_name("trades.csv" if name == "backtest" else "trades_real.csv"))
    fills = {r["name"]: r for r in plots["price"]["renderers"]}
    assert fills["buy_fills"]["mapped"] + fills["sell_fills"]["mapped"] == len(trades) > 0  # every marker drawn
    # the log toggle swaps the wealth panel for its log-scale twin, which then draws
    assert browser.evaluate(SHOW_LOG) is True
    browser.evaluate("new Promise(r => setTimeout(r, 300))")
    toggled = {p["name"]: p for p in browser.evaluate(BOKEH_PROBE)}
    assert browser.errors() == []
    assert toggled["wealth_log"]["visible"] and not toggled["wealth"]["visible"]
    assert toggled["wealth_log"]["height"] > 100 and toggled["wealth_log"]["coloured"] > 50
    assert all(r["mapped"] > 0 for r in toggled["wealth_log"]["renderers"])


@pytest.mark.parametrize("name", ["optimize", "optimizer_b", "wf_runs", "wf_walk_forward"])
def test_search_and_pick_reports_load_and_draw_in_chromium(browser, reports, name):
    plots = {p["name"]: p for p in _load_and_check(browser, reports[name], name)}
    if name.startswith("opt"):
        assert "train_vs_test" in plots and any(k.startswith("param_") for k in plots)
        assert ("penalties" in plots) == (name == "optimizer_b")
        pick = [r for r in plots["train_vs_test"]["renderers"] if r["name"] == "pick"]
        assert pick and pick[0]["n"] == 1 and pick[0]["mapped"] == 1
    else:
        assert {"families", "pbo_hist"} <= set(plots)
        assert ("oos_equity" in plots) == (name == "wf_walk_forward")
