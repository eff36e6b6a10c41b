#!/usr/bin/env python3
"""Backtest speed benchmark (issues 2 and 17): our backtest vs vectorbt vs a naive pandas loop,
the kernel against the memory bound, and start-up.

On 5 years of generated 15m ETHBTC bars (175,200) it reports, all measured in this one run:

* the median time of one full backtest, data already in memory: ``EthBtcStrategy.run(df)``
  (vectorised indicators + the compiled per-bar kernel);
* (a) the same indicators followed by vectorbt's ``Portfolio.from_orders`` replaying the
  strategy's own orders as target weights (``size_type='targetpercent'``, filled at the next
  bar's open with the same slippage and fee rates). vectorbt lives only in its own venv
  (bench/.venv-vbt, see --setup-vbt); that part runs there as a worker process which times
  both pipelines interleaved, so the ratio compares like with like;
* (b) a naive per-bar loop reading inputs and writing outputs with pandas ``.iat``. It runs the
  kernel's own Python source (``decide.py_func``, no second copy of the rules), measured on a
  slice and extrapolated linearly; its output is checked equal to the kernel's;
* ``python ethbtc_accum_bot.py backtest --data <temp csv>`` wall time, end to end;
* numba start-up: compile with an empty cache vs loading the cached machine code;
* the kernel (``kernel.simulate`` alone, inputs prepared) against streaming its input and
  output arrays once (``np.sum`` over the same arrays, measured in the same run);
* ``--help`` of every script (fresh interpreter each).

Goals, each printed with MET/MISSED (issue 17; issue 2's are printed too): one backtest at
least 4x faster than our indicators + vectorbt ``from_orders`` on its Rust engine (the numba
engine when the Rust one is not installed, said so); kernel at most 3x the streaming time;
``--help`` at most 0.3 s; the 5-year CLI backtest at most 0.8 s warm; naive loop >= 300x.
Nothing is asserted in tests.

    .venv/bin/python bench/backtest_speed.py [--setup-vbt] [--no-vbt] [--repeat 31] [--naive-bars 17520]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ethbtc import kernel as K  # noqa: E402
from ethbtc.config import Config, build_config, load_config  # noqa: E402
from ethbtc.indicators import MS_PER_DAY  # noqa: E402
from ethbtc.strategy import EthBtcStrategy, RunArrays  # noqa: E402

N_BARS = 175_200  # 5 years of 15m bars
SEED = 2024
CONFIG = ROOT / "configs" / "prod_live.json"
VBT_VENV = ROOT / "bench" / ".venv-vbt"
VBT_SETUP = f"python3 -m venv {VBT_VENV.relative_to(ROOT)} && {VBT_VENV.relative_to(ROOT)}/bin/pip install -r requirements.txt vectorbt"
GOAL_VBT, GOAL_NAIVE = 4.0, 300.0  # issue 17: >= 4x vs vectorbt's Rust engine; issue 2: >= 300x naive
GOAL_STREAM, GOAL_HELP, GOAL_CLI = 3.0, 0.3, 0.8  # kernel / streaming its arrays; --help s; CLI backtest s
SCRIPTS = ("ethbtc_accum_bot.py", "optimizer_cli.py", "wf_pick.py", "multi_interval_opt.py", "download_vision.py",
           "vision_fix_timestamps.py", "ascii_levelbar.py", "seed_testnet_order.py", "live_executor.py")


# --- measuring ---------------------------------------------------------------------------------
def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, float]]:
    """(median, best) wall time per function over ``repeat`` rounds after one warm-up call each;
    calls alternate (A B A B ...) so the noise of a shared machine hits them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


# --- data ---------------------------------------------------------------------------------------
def write_sample_csv(path: Path, n_bars: int, seed: int) -> None:
    from ethbtc.data.sample import generate, write_csv

    write_csv(generate(n_bars, 15, seed=seed, gaps=0), path)


def load_frame(path: Path) -> pd.DataFrame:
    """The candles exactly as the CLI sees them (same loader, same CSV rounding)."""
    from ethbtc.data.candles import load_candles

    return load_candles(path, 15).df


# --- (b) naive per-bar pandas loop --------------------------------------------------------------
NAIVE_OUT = ["btc", "eth", "bnb", "wealth", "w_cur", "target", "desired", "reason", "signal"]


def naive_loop(strat: EthBtcStrategy, df: pd.DataFrame) -> pd.DataFrame:
    """The backtest as a plain per-bar loop: every input read and every output written with
    ``DataFrame.iat``; decisions by the kernel's uncompiled Python (``decide.py_func``), fills
    per SPEC R22-R23 as in ``kernel.simulate`` (no BNB series). Indicators are the same
    vectorised ones (generous to the loop)."""
    ind = strat.indicators(df)
    open_ms = df.index.as_unit("ms").asi8
    close_ms = (open_ms + strat.bar_minutes * 60_000).astype(np.float64)
    inp = pd.DataFrame({
        "open": df["open"].to_numpy(), "close": df["close"].to_numpy(), "close_ms": close_ms,
        "day": (open_ms // MS_PER_DAY).astype(np.float64), "ratio": ind.ratio, "entry": ind.entry,
        "exit": ind.exit, "gate_ok": ind.gate_open, "mult": ind.mult,
    })
    out = pd.DataFrame(np.nan, index=range(len(df)), columns=NAIVE_OUT)
    prm, fee = strat.params_array(), strat.fees_array(False)
    decide, fee_fn = K.decide.py_func, K._fee.py_func
    state = K.new_state()
    btc, eth, bnb = strat.config.risk.basis_btc, 0.0, strat.config.fees.start_bnb
    slip = fee[K.F_SLIP]
    pending = 0.0
    for t in range(len(inp)):
        if pending != 0.0:
            o = inp.iat[t, 0]
            if pending > 0:
                px = o * (1.0 + slip)
                q = min(pending, btc / px)
                _, _, _, in_kind = fee_fn(q * px, fee[K.F_TAKER], fee, bnb, np.nan)
                btc -= q * px
                eth += q - in_kind / px
            else:
                px = o * (1.0 - slip)
                q = min(-pending, eth)
                _, _, _, in_kind = fee_fn(q * px, fee[K.F_MAKER], fee, bnb, np.nan)
                eth -= q
                btc += q * px - in_kind
            pending = 0.0
        close = inp.iat[t, 1]
        reason, target, desired, w_cur, delta, _, _ = decide(
            state, prm, inp.iat[t, 2], inp.iat[t, 3], close, inp.iat[t, 4], inp.iat[t, 5], inp.iat[t, 6],
            inp.iat[t, 7], inp.iat[t, 8], btc, eth, 0.0)
        if reason == K.R_TRADE and t + 1 < len(inp):
            pending = delta
        out.iat[t, 0] = btc
        out.iat[t, 1] = eth
        out.iat[t, 2] = bnb
        out.iat[t, 3] = btc + eth * close
        out.iat[t, 4] = w_cur
        out.iat[t, 5] = target
        out.iat[t, 6] = desired
        out.iat[t, 7] = reason
        out.iat[t, 8] = state[K.S_SIGNAL]
    return out


def naive_matches_kernel(naive: pd.DataFrame, a: RunArrays) -> bool:
    """Bit-for-bit equality of the naive loop's per-bar outputs with the kernel's."""
    kern = np.column_stack([a.out_f[:, [K.O_BTC, K.O_ETH, K.O_BNB, K.O_WEALTH, K.O_WCUR, K.O_TARGET, K.O_DESIRED]],
                            a.out_i.astype(np.float64)])
    return bool(np.array_equal(naive.to_numpy(), kern, equal_nan=True))


# --- (a) vectorbt -------------------------------------------------------------------------------
def vbt_orders(cfg: Config, df: pd.DataFrame, a: RunArrays) -> tuple[pd.Series, pd.Series]:
    """Our orders as vectorbt inputs: at the bar after each ``trade`` decision, target percent =
    the decided weight (NaN = no order) and fee rate = taker for a buy, maker for a sell (times
    the BNB discount, as the kernel charges without a BNB series)."""
    n = len(df)
    trade = a.out_i[:, 0] == K.R_TRADE
    trade[-1] = False  # a decision on the last bar has no fill (R22)
    desired, w_cur = a.out_f[:, K.O_DESIRED], a.out_f[:, K.O_WCUR]
    size = np.full(n, np.nan)
    size[1:][trade[:-1]] = desired[:-1][trade[:-1]]
    maker, taker = cfg.fees.rates_without_bnb_series()
    rate = np.where(desired > w_cur, taker, maker)
    fees = np.zeros(n)
    fees[1:] = rate[:-1]
    return pd.Series(size, index=df.index), pd.Series(fees, index=df.index)


def vbt_worker(data: Path, config: Path, repeat: int) -> dict[str, Any]:
    """Runs inside bench/.venv-vbt: times ours and indicators + vectorbt, interleaved."""
    import vectorbt as vbt

    cfg = load_config(config, {"fill_model": "next_open"})  # vectorbt fills at the next open
    df = load_frame(data)
    strat = EthBtcStrategy(cfg, 15)
    ours = strat.run(df)
    size, fees = vbt_orders(cfg, df, ours)
    slip = cfg.fees.slippage_bps / 10_000.0

    # vectorbt gets a tz-naive UTC index: with a tz-aware one, pandas 3 turns the index into
    # 175k Timestamp objects inside vectorbt's shape check (~0.5 s), which would be unfair to it.
    idx = df.index.tz_localize(None)
    close, open_ = df["close"].set_axis(idx), df["open"].set_axis(idx)
    size, fees = size.set_axis(idx), fees.set_axis(idx)

    def with_vbt(engine: str = "numba") -> Any:
        strat.indicators(df)  # the same indicator work; the weights come from our run
        return vbt.Portfolio.from_orders(
            close, size=size, size_type="targetpercent", direction="longonly", price=open_, fees=fees,
            slippage=slip, init_cash=cfg.risk.basis_btc, freq="15min", engine=engine)

    fns = {"ours": lambda: strat.run(df), "vbt": with_vbt, "vbt_value": lambda: with_vbt().value()}
    if rust_available():  # the optional engine of `pip install vectorbt[rust]`
        fns["vbt_rust"] = lambda: with_vbt("rust")
    t = interleaved(fns, repeat)
    pf = with_vbt()
    from importlib.metadata import requires

    pins = [r for r in requires("vectorbt") or [] if r.split("<")[0].split(">")[0].split("=")[0] in ("numpy", "pandas", "numba")]
    return {
        "times": t, "vbt_orders": int(pf.orders.count()), "our_trades": len(ours.tr_f),
        "vbt_final": float(pf.value().iloc[-1]), "our_final": float(ours.out_f[-1, K.O_WEALTH]),
        "versions": versions("vectorbt", "vectorbt-rust"), "pins": pins,
    }


def rust_available() -> bool:
    try:
        from vectorbt._engine import is_rust_available
    except ImportError:
        return False
    return bool(is_rust_available())


def versions(*extra: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "pandas", "numba", *extra):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def setup_vbt_venv() -> str | None:
    """Create bench/.venv-vbt with the project's runtime deps plus vectorbt; None or the error."""
    py = VBT_VENV / "bin" / "python"
    steps = [[sys.executable, "-m", "venv", str(VBT_VENV)]] if not py.exists() else []
    steps.append([str(py), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements.txt"), "vectorbt"])
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip() and "Location" not in ln]
            return lines[-1] if lines else f"exit code {r.returncode}"
    # vectorbt's optional Rust engine, timed as an extra line when it installs (a wheel may not exist)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "vectorbt[rust]"], capture_output=True)
    return None


def run_vbt(data: Path, repeat: int) -> tuple[dict[str, Any] | None, str]:
    py = VBT_VENV / "bin" / "python"
    if not py.exists():
        return None, f"bench/.venv-vbt not found; create it with --setup-vbt or: {VBT_SETUP}"
    r = subprocess.run([str(py), __file__, "--vbt-worker", "--data", str(data), "--repeat", str(repeat)],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"worker failed in bench/.venv-vbt: {last}"
    return json.loads(r.stdout.strip().splitlines()[-1]), ""


# --- start-up and end to end --------------------------------------------------------------------
# run as `python -c PROBE <repo root>` so the imports are timed in a fresh interpreter too
PROBE = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import pandas as pd
from ethbtc.config import build_config
from ethbtc.data.sample import generate
from ethbtc.strategy import EthBtcStrategy
t_import = time.perf_counter() - t0
raw = generate(2000, 15, seed=1, gaps=0)
df = raw[["open", "high", "low", "close", "volume"]].set_index(pd.to_datetime(raw["open_time"], unit="ms", utc=True))
strat = EthBtcStrategy(build_config({}), 15)
t0 = time.perf_counter(); strat.run(df); t_first = time.perf_counter() - t0
t0 = time.perf_counter(); strat.run(df); t_second = time.perf_counter() - t0
print(json.dumps({"import_s": t_import, "first_s": t_first, "second_s": t_second}))
"""


def probe(cache_dir: str) -> tuple[dict[str, float], float]:
    """Start-up figures of a fresh interpreter with NUMBA_CACHE_DIR=cache_dir, and its wall time."""
    env = os.environ | {"NUMBA_CACHE_DIR": cache_dir}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PROBE, str(ROOT)], capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def timed_run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of a subprocess; CPU is what other load on a shared machine inflates least."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_backtest_time(data: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    cmd = [sys.executable, str(ROOT / "ethbtc_accum_bot.py"), "backtest", "--data", str(data), "--config", str(CONFIG)]
    return timed_run(cmd, env)


def met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


# --- report -------------------------------------------------------------------------------------
def verdict(ratio: float, goal: float) -> str:
    return f"goal >= {goal:g}x: {'MET' if ratio >= goal else 'MISSED'}"


def ms(t: tuple[float, float]) -> str:
    return f"{t[0] * 1e3:7.1f} ms (best {t[1] * 1e3:.1f})"


def report_ours(strat: EthBtcStrategy, df: pd.DataFrame, repeat: int) -> float:
    from ethbtc.strategy import KernelInputs, RunBuffers

    a = strat.run(df)
    ind = strat.indicators(df)
    n = len(df)
    inp, buf = KernelInputs.of(df, strat.bar_minutes), RunBuffers.empty(n)
    bnb_px, prm, fee = np.full(n, np.nan), strat.params_array(), strat.fees_array(False)
    ins = (inp.open_, inp.high, inp.low, inp.close, inp.volume, inp.close_ms, inp.day, ind.ratio, ind.entry, ind.exit,
           ind.gate_open, ind.mult, bnb_px)
    outs = (buf.out_f, buf.out_i)

    def kernel() -> None:
        K.simulate(*ins, prm, fee, K.new_state(), strat.config.risk.basis_btc, 0.0, strat.config.fees.start_bnb,
                   *outs, buf.tr_f, buf.tr_i)

    # the same run with the default SPEC R22 intrabar fills (resting maker order, path through the bar)
    fee_ib = EthBtcStrategy(build_config(strat.config.flat() | {"fill_model": "intrabar"}), strat.bar_minutes).fees_array(False)

    def kernel_intrabar() -> None:
        K.simulate(*ins, prm, fee_ib, K.new_state(), strat.config.risk.basis_btc, 0.0, strat.config.fees.start_bnb,
                   *outs, buf.tr_f, buf.tr_i)

    def stream() -> None:  # read every input and output array once (the memory traffic floor)
        for x in (*ins, *outs):
            np.sum(x)

    t = interleaved({"run": lambda: strat.run(df), "ind": lambda: strat.indicators(df),
                     "kernel": lambda: strat.run(df, ind=ind), "simulate": kernel, "intrabar": kernel_intrabar,
                     "stream": stream}, repeat)
    mb = sum(x.nbytes for x in (*ins, *outs)) / 1e6
    print(f"\nours  EthBtcStrategy(cfg, 15).run(df): {ms(t['run'])}   [{len(a.tr_f)} trades, {int(a.state[K.S_TURNS])} turns]")
    print(f"  of which indicators {ms(t['ind'])}, kernel + array set-up {ms(t['kernel'])}")
    ratio = t["simulate"][0] / t["stream"][0]
    print(f"  kernel.simulate alone {ms(t['simulate'])} = {t['simulate'][0] / n * 1e9:.1f} ns/bar; streaming its "
          f"{len(ins) + len(outs)} arrays once ({mb:.1f} MB, np.sum) {ms(t['stream'])}")
    print(f"  GOAL kernel <= {GOAL_STREAM:g}x streaming its arrays: {ratio:.2f}x  "
          f"{'MET' if ratio <= GOAL_STREAM else 'MISSED'} (best-of: {t['simulate'][1] / t['stream'][1]:.2f}x)")
    ib = t["intrabar"][0] / t["stream"][0]
    print(f"  kernel.simulate, intrabar fills (the default fill model) {ms(t['intrabar'])} = "
          f"{t['intrabar'][0] / n * 1e9:.1f} ns/bar: {ib:.2f}x streaming "
          f"{'MET' if ib <= GOAL_STREAM else 'MISSED'} (best-of: {t['intrabar'][1] / t['stream'][1]:.2f}x)")
    return t["run"][0]


def report_vbt(csv: Path, repeat: int, setup: bool) -> None:
    print("\n(a) same indicators + vectorbt Portfolio.from_orders (our target weights, next-open fills)")
    err = setup_vbt_venv() if setup else None
    res, msg = (None, f"vectorbt could not be installed: {err}") if err else run_vbt(csv, repeat)
    if res is None:
        print(f"  SKIPPED: {msg}")
        return
    t = res["times"]
    print(f"  bench/.venv-vbt: {res['versions']}; vectorbt requires {', '.join(res['pins'])}")
    print(f"  ours, same process            : {ms(t['ours'])}")
    print(f"  indicators + from_orders      : {ms(t['vbt'])}   (numba engine, as `pip install vectorbt` gives)")
    print(f"  ... + pf.value() (per-bar wealth, which ours also returns): {ms(t['vbt_value'])}")
    print(f"  check: orders vectorbt {res['vbt_orders']} / ours {res['our_trades']}; final BTC vectorbt "
          f"{res['vbt_final']:.6f} / ours {res['our_final']:.6f} (vectorbt charges fees in BTC, re-targets at the open)")
    ratio, best = t["vbt"][0] / t["ours"][0], t["vbt"][1] / t["ours"][1]
    with_value = t["vbt_value"][0] / t["ours"][0]
    print(f"  RATIO (indicators + vectorbt) / ours = {ratio:.2f}x  ({verdict(ratio, GOAL_VBT)}); "
          f"best-of-{repeat}: {best:.2f}x; with pf.value(): {with_value:.2f}x")
    if "vbt_rust" in t:
        r = t["vbt_rust"][0] / t["ours"][0]
        print(f"  GOAL vs the Rust engine (vectorbt[rust]): indicators + from_orders {ms(t['vbt_rust'])} -> "
              f"ratio {r:.2f}x ({verdict(r, GOAL_VBT)}); best-of-{repeat}: {t['vbt_rust'][1] / t['ours'][1]:.2f}x")
    else:
        print("  optional Rust engine (vectorbt[rust]) not installed: the goal is judged on the numba engine above")


def report_naive(strat: EthBtcStrategy, df: pd.DataFrame, bars: int, t_ours: float) -> None:
    m = min(bars, len(df))
    part = df.iloc[:m]
    t0 = time.perf_counter()
    naive = naive_loop(strat, part)
    t_naive = time.perf_counter() - t0
    same = naive_matches_kernel(naive, strat.run(part))
    est = t_naive * len(df) / m
    scaled = "" if m == len(df) else f", extrapolated linearly to {len(df)} bars: {est:.1f} s"
    print(f"\n(b) naive per-bar pandas .iat loop: {t_naive:.2f} s on the first {m} bars{scaled}")
    print(f"  (same vectorised indicators, decisions by kernel.decide.py_func; output equals the kernel's: {same})")
    ratio = est / t_ours
    print(f"  RATIO naive / ours = {ratio:.0f}x  ({verdict(ratio, GOAL_NAIVE)})")


def report_cli(csv: Path) -> None:
    print(f"\nend to end: python ethbtc_accum_bot.py backtest --data <temp csv> --config {CONFIG.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cold:
        t_cold = cli_backtest_time(csv, os.environ | {"NUMBA_CACHE_DIR": cold})[0]
    cli_backtest_time(csv)  # make sure the default cache is populated
    runs = [cli_backtest_time(csv) for _ in range(3)]
    t_warm, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"  wall time {t_warm:.2f} s, CPU {cpu:.2f} s (median of 3, numba cache warm); {t_cold:.2f} s with an "
          f"empty numba cache")
    print(f"  GOAL CLI backtest <= {GOAL_CLI:g} s warm: {t_warm:.2f} s wall {met(t_warm <= GOAL_CLI)}; CPU {cpu:.2f} s "
          f"{met(cpu <= GOAL_CLI)} (load average {os.getloadavg()[0]:.1f}: on a busy machine judge by CPU)")


def report_help() -> None:
    """``--help`` of every script in a fresh interpreter: wall (median of 3) and CPU."""
    once = timed_run
    base = statistics.median(once([sys.executable, "-c", "pass"])[0] for _ in range(3))
    print(f"\n--help of every script (fresh interpreter, median of 3; bare `python -c pass` {base:.3f} s, "
          f"load average {os.getloadavg()[0]:.1f})")
    for script in SCRIPTS:
        runs = [once([sys.executable, str(ROOT / script), "--help"]) for _ in range(3)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"  GOAL {script:26s} --help <= {GOAL_HELP:g} s: {wall:.3f} s wall {met(wall <= GOAL_HELP):6s} "
              f"{cpu:.3f} s CPU {met(cpu <= GOAL_HELP)}")


def report_startup() -> None:
    print("\nnumba start-up: fresh interpreter, 2000-bar backtest, NUMBA_CACHE_DIR = a new temp dir")
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        cold_p, cold_wall = probe(cache)
        warm_p, warm_wall = probe(cache)
    for label, p, wall in (("cold (compile)", cold_p, cold_wall), ("cached        ", warm_p, warm_wall)):
        print(f"  {label}: first run {p['first_s']:6.3f} s, imports {p['import_s']:.2f} s, whole process "
              f"{wall:.2f} s; a second run {p['second_s'] * 1e3:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=N_BARS, help="bars to generate (default 175200 = 5y of 15m)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"generator seed (default {SEED})")
    ap.add_argument("--repeat", type=int, default=31, help="timed rounds for each median (default 31)")
    ap.add_argument("--naive-bars", type=int, default=17_520, help="slice timed for the naive loop (default 17520)")
    ap.add_argument("--setup-vbt", action="store_true", help=f"create/update bench/.venv-vbt first: {VBT_SETUP}")
    ap.add_argument("--no-vbt", action="store_true", help="skip the vectorbt comparison")
    ap.add_argument("--vbt-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.vbt_worker:
        print(json.dumps(vbt_worker(args.data, CONFIG, args.repeat)))
        return 0

    print(f"backtest_speed: {args.bars} bars of 15m (seed {args.seed}), config {CONFIG.relative_to(ROOT)}, "
          f"median of {args.repeat} interleaved rounds; {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    print(f"  project env: {versions()}")
    with tempfile.TemporaryDirectory(prefix="ethbtc-bench-") as tmp:
        csv = Path(tmp) / "ETHBTC_15m_bench.csv"
        write_sample_csv(csv, args.bars, args.seed)
        df = load_frame(csv)
        strat = EthBtcStrategy(load_config(CONFIG, {"fill_model": "next_open"}), 15)  # as vectorbt fills
        t_ours = report_ours(strat, df, args.repeat)
        if args.no_vbt:
            print("\n(a) vectorbt: SKIPPED (--no-vbt)")
        else:
            report_vbt(csv, args.repeat, args.setup_vbt)
        report_naive(strat, df, args.naive_bars, t_ours)
        report_cli(csv)
    report_startup()
    report_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
