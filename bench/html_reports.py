#!/usr/bin/env python3
"""HTML report benchmark (issue 18): library choice and the reports on 5 years of 15m bars.

1. Library: the same two linked line panels over 175,200 points (5 years of 15m bars), once
   with bokeh (JavaScript inlined) and once with plotly (``include_plotlyjs=True``, freqtrade's
   way), raw and min/max-decimated (:func:`ethbtc.htmlreport.minmax_indices`): file size and the
   time until the page has drawn, in headless Chromium. plotly is not a project dependency:
   ``pip install plotly`` to include it (skipped otherwise).
2. The project's three reports on the generated 5-year 15m sample (``ethbtc.data.sample``): the
   backtest report, the optimizer_cli report and the wf_pick --walk-forward report, written by
   the real commands: size, and median time until drawn over ``--repeat`` loads.

"drawn ms" is the page's own clock from navigation start until bokeh reports the document drawn
(median of ``--repeat`` loads); "CPU ms" is the main-thread CPU time the page used until then
(DevTools ``ThreadTime``), the steadier figure on a busy machine. Nothing is asserted.

    .venv/bin/python bench/html_reports.py [--repeat 5] [--no-libs] [--no-reports] [--out-dir tmp/bench_html]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ethbtc.data.sample import ensure_sample  # noqa: E402
from ethbtc.htmlreport import minmax_indices  # noqa: E402
from tests.support.browser import Chromium  # noqa: E402
from tests.support.html_probe import BOKEH_READY  # noqa: E402

N_BARS = 175_200
PLOTLY_READY = ("document.querySelectorAll('.js-plotly-plot').length > 0 && [...document.querySelectorAll("
                "'.js-plotly-plot')].every(g => g._fullLayout && g.querySelectorAll('.scatterlayer .trace').length)")


def series() -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    t = pd.date_range("2020-01-01", periods=N_BARS, freq="15min")
    a = 0.05 * np.exp(np.cumsum(rng.normal(0, 0.003, N_BARS)))
    b = 0.16 * np.exp(np.cumsum(rng.normal(0, 0.001, N_BARS)))
    return t, a, b


def timed(browser: Chromium, path: Path, ready: str, repeat: int) -> tuple[float, float, list[str]]:
    """Median wall time until drawn, median main-thread CPU time, console errors."""
    wall, cpu, errors = [], [], []
    for _ in range(repeat):
        r = browser.load(path, ready, screenshot=False)
        wall.append(r.ready_ms)
        cpu.append(r.cpu_ms)
        errors += r.console_errors
    return statistics.median(wall), statistics.median(cpu), errors


def libraries(out: Path, repeat: int) -> None:
    t, a, b = series()
    ia, ib = minmax_indices(a), minmax_indices(b)
    cases = {"raw 175,200 points x2": (t, a, t, b), "min/max decimated": (t[ia], a[ia], t[ib], b[ib])}
    builders = {"bokeh": (_bokeh_two, BOKEH_READY)}
    try:
        import plotly

        builders["plotly"] = (_plotly_two, PLOTLY_READY)
        print(f"bokeh vs plotly {plotly.__version__}")
    except ImportError:
        print("plotly not installed (pip install plotly): bokeh only")
    print(f"{'library':<8} {'data':<22} {'points':>8} {'size MB':>8} {'drawn ms':>9} {'CPU ms':>7}")
    with Chromium() as browser:
        for lib, (build, ready) in builders.items():
            for case, (ta, ya, tb, yb) in cases.items():
                path = out / f"lib_{lib}_{case.split()[0].replace('/', '')}.html"
                build(ta, ya, tb, yb, path)
                ms, cpu, errors = timed(browser, path, ready, repeat)
                print(f"{lib:<8} {case:<22} {len(ya) + len(yb):>8} {path.stat().st_size / 1e6:>8.2f} {ms:>9.0f} {cpu:>7.0f}"
                      + (f"  errors: {errors[:2]}" if errors else ""))


def _bokeh_two(ta: pd.DatetimeIndex, a: np.ndarray, tb: pd.DatetimeIndex, b: np.ndarray, path: Path) -> None:
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    p1 = figure(x_axis_type="datetime", height=300, sizing_mode="stretch_width")
    p1.line(ta, a)
    p2 = figure(x_axis_type="datetime", height=300, sizing_mode="stretch_width", x_range=p1.x_range)
    p2.line(tb, b)
    path.write_text(file_html(column(p1, p2, sizing_mode="stretch_width"), INLINE, title="bokeh"))


def _plotly_two(ta: pd.DatetimeIndex, a: np.ndarray, tb: pd.DatetimeIndex, b: np.ndarray, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
    fig.add_trace(go.Scatter(x=ta, y=a, mode="lines"), row=1, col=1)
    fig.add_trace(go.Scatter(x=tb, y=b, mode="lines"), row=2, col=1)
    fig.write_html(path, include_plotlyjs=True, full_html=True)


def run(*argv: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def reports(out: Path, repeat: int) -> None:
    eth, _ = ensure_sample(out / "sample", days=1825)
    paths = {"backtest": out / "backtest.html", "optimizer_cli": out / "search.html",
             "wf_pick --walk-forward": out / "walkforward.html"}
    secs = {
        "backtest": run("ethbtc_accum_bot.py", "backtest", "--data", str(eth), "--config", "configs/prod_live.json",
                        "--html-out", str(paths["backtest"])),
        "optimizer_cli": run("optimizer_cli.py", "--data", str(eth), "--config", "configs/prod_live.json",
                             "--train-start", "2022-01-01", "--train-end", "2024-12-31", "--test-start", "2025-01-01",
                             "--test-end", "2026-12-31", "--n-random", "200", "--seed", "1", "--no-progress",
                             "--html-out", str(paths["optimizer_cli"])),
        "wf_pick --walk-forward": run("wf_pick.py", "--walk-forward", "--data", str(eth), "--config",
                                      "configs/prod_live.json", "--train-days", "365", "--test-days", "180",
                                      "--n-random", "40", "--seed", "1", "--no-progress",
                                      "--html-out", str(paths["wf_pick --walk-forward"])),
    }
    print(f"\nreports on {eth} (5 years of 15m bars)")
    print(f"{'report':<24} {'size MB':>8} {'drawn ms':>9} {'CPU ms':>7} {'command s':>10}")
    with Chromium() as browser:
        for name, path in paths.items():
            ms, cpu, errors = timed(browser, path, BOKEH_READY, repeat)
            print(f"{name:<24} {path.stat().st_size / 1e6:>8.2f} {ms:>9.0f} {cpu:>7.0f} {secs[name]:>10.1f}"
                  + (f"  errors: {errors[:2]}" if errors else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="page loads per file (median; default 5)")
    ap.add_argument("--no-libs", action="store_true", help="skip the bokeh/plotly comparison")
    ap.add_argument("--no-reports", action="store_true", help="skip the project's reports")
    ap.add_argument("--out-dir", default="tmp/bench_html", help="where the pages go (default tmp/bench_html)")
    args = ap.parse_args()
    out = ROOT / args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_libs:
        libraries(out, args.repeat)
    if not args.no_reports:
        reports(out, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
