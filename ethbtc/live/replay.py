"""Rehearsal and parity check: the live engine against the paper exchange, bar by bar, vs the backtest.

``python -m ethbtc.live.replay --data candles.json --params cfg.json --bars 3000 --report out/parity.md``
replays history, once with ``taker_fallback`` true and once false (``--execution``), through the simulator (``ethbtc.sim``, manual clock, real HTTP through
binance-connector; its depth book, partial-fill share and volume rule as the config's fill model
describes them, :func:`sim_fill_options`) with the engine in testnet mode, runs the backtester on the same bars and
writes a report of every difference: per bar the target weight, desired weight and reason
(SPEC R30: one decision function), per trade the side and size. The engine's own waits (order
ttl, polling) advance the replayed market (:class:`SimClock`), so a run is fast and repeats
exactly. The tests use the same functions.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..backtest import run_backtest
from ..cli import ArgumentParser, run_main
from ..config import Config, load_config
from ..data.candles import Candles, load_candles
from ..data.timeframes import binance_interval
from ..fileio import atomic_write_text
from ..fillmodel import clock_pos
from ..sim import SimServer, SymbolRules, serve_sim
from ..sim.limits import LimitConfig
from ..sim.market import BookModel
from ..strategy import EthBtcStrategy
from .engine import BarReport, Engine, EngineOptions
from .exchange import Exchange, RetryPolicy
from .filters import floor_step
from .ledger import DecisionJournal, TradeLedger
from .state import StateStore

BAR_SEC = 900.0
DUST_W = 1e-3  # a weight difference below this between backtest and live is lot-step dust


class SimClock:
    """Engine clock whose sleeps move the simulator's market instead of waiting."""

    def __init__(self, sim: SimServer, bar_sec: float = BAR_SEC) -> None:
        self.sim = sim
        self.bar_sec = bar_sec
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.sim.advance(seconds / self.bar_sec)


def sim_engine(sim: SimServer, cfg: Config, folder: Path, *, key: str, secret: str, mode: str = "testnet",
               account: Any = None, clock: Any = None, retry: RetryPolicy | None = None, timeout: float = 5.0,
               recv_window_ms: int = 5000) -> Engine:
    """An engine on ``sim`` with its state, ledger and journal in ``folder``."""
    strategy = EthBtcStrategy(cfg)
    minutes = strategy.bar_minutes
    market = Exchange(sim.base_url, sim.engine.rules.symbol, key, secret, timeout=timeout,
                      recv_window_ms=recv_window_ms, retry=retry or RetryPolicy(base_sec=0.01, cap_sec=0.05))
    opts = EngineOptions(mode=mode, symbol=sim.engine.rules.symbol, interval=binance_interval(minutes),
                         interval_ms=minutes * 60_000, poll_sec=cfg.execution.poll_sec,
                         ttl_sec=cfg.execution.ttl_sec, taker_fallback=cfg.execution.taker_fallback,
                         history_bars=strategy.warmup_bars() + 1440 // minutes)
    return Engine(strategy, market, account or market, StateStore(folder / "state.json"),
                  TradeLedger(folder / "trades_log.csv"), DecisionJournal(folder / "decisions_log.csv"), opts,
                  clock=clock or SimClock(sim, minutes * 60.0), stop=threading.Event())


def next_bar(sim: SimServer) -> None:
    """Move the market to the open of the next bar (closing the current one), from the clock's raw
    position: the reported barFraction is rounded (ethbtc.fillmodel.bar_fraction), and stepping
    from it would leave the position up to 5e-10 bar short, which shortens the next order's ttl
    against the backtest's."""
    pos = sim.engine.market.clock.pos()
    sim.advance(math.floor(clock_pos(pos)) + 1.0 - pos)


def drive(sim: SimServer, engine: Engine, bars: int) -> list[BarReport]:
    """Close ``bars`` bars one at a time, letting the engine decide after each close."""
    out: list[BarReport] = []
    for _ in range(bars):
        next_bar(sim)
        out.extend(engine.poll_once())
    return out


@dataclass
class Parity:
    bars: int
    reason_mismatches: pd.DataFrame  # lot-step dust excluded (``dust_bars``)
    dust_bars: int
    target_maxdiff: float
    desired_maxdiff: float
    wcur_maxdiff: float
    trades_backtest: int
    trades_live: int
    trade_diffs: pd.DataFrame  # one row per decision bar where either side filled (fills summed)
    rounding_violations: list[str] = field(default_factory=list)

    @property
    def side_mismatches(self) -> int:
        return int((self.trade_diffs["side_bt"] != self.trade_diffs["side_live"]).sum())

    @property
    def one_sided(self) -> int:
        """Decision bars where only the backtest or only the live engine filled anything."""
        t = self.trade_diffs
        return int(((t["side_bt"] == "") != (t["side_live"] == "")).sum())

    @property
    def qty_rel_max(self) -> float:
        rel = self.trade_diffs["qty_rel_diff"]
        return float(rel.max()) if len(rel) else 0.0

    def markdown(self) -> str:
        t = self.trade_diffs
        lines = [
            "# Live executor vs backtest (parity report)", "",
            f"- bars compared: {self.bars}",
            f"- reason mismatches: {len(self.reason_mismatches)} (besides {self.dust_bars} bars where the exchange "
            f"left lot-step dust: live `min_trade` where the backtest, at exactly 0, says `hold`)",
            f"- max |target_w diff|: {self.target_maxdiff:.3g}",
            f"- max |desired_w diff|: {self.desired_maxdiff:.3g} (holdings differ by exchange rounding and fill prices)",
            f"- max |w_cur diff|: {self.wcur_maxdiff:.3g}",
            f"- trades (decision bars with fills): backtest {self.trades_backtest}, live {self.trades_live}, "
            f"on one side only {self.one_sided}, side mismatches {self.side_mismatches}",
            f"- trade size: max relative difference {self.qty_rel_max:.3%}, mean "
            f"{float(t['qty_rel_diff'].mean()) if len(t) else 0.0:.3%}",
            f"- orders not equal to the kernel's size rounded to the lot step: {len(self.rounding_violations)}", "",
        ]
        if len(self.reason_mismatches):
            lines += ["## Reason mismatches", "", self.reason_mismatches.to_string(), ""]
        if self.rounding_violations:
            lines += ["## Rounding", "", *self.rounding_violations, ""]
        if len(t):
            lines += ["## Trades", "", t.to_string(), ""]
        return "\n".join(lines)


def compare(reports: list[BarReport], config: Config, candles: Candles, step_size: Decimal) -> Parity:
    """Backtest ``candles`` with ``config`` and compare it with the engine's decided bars."""
    bt = run_backtest(config, candles)
    live = pd.DataFrame([{
        "time": pd.Timestamp(r.decision.bar_open_ms, unit="ms", tz="UTC"), "reason": r.decision.reason,
        "final_reason": r.final_reason, "target_w": r.decision.target_w, "desired_w": r.decision.desired_w,
        "w_cur": r.decision.w_cur, "side": r.execution.side if r.execution else "",
        "qty": float(r.execution.qty_filled) if r.execution else 0.0,
        "qty_ordered": r.execution.qty_ordered if r.execution else Decimal(0),
        "delta_eth": r.decision.delta_eth} for r in reports if not r.catchup]).set_index("time")
    bars = bt.bars.loc[bt.bars.index.intersection(live.index)]
    live = live.loc[bars.index]
    bad = bars["reason"] != live["reason"]
    pair = bars["reason"] + "/" + live["reason"]
    # lot-step dust: the backtest sells to exactly 0 (R19 v2 snaps), the exchange leaves less than one
    # lot, which the kernel then calls `min_trade` (a move below the minimum trade), not `hold`
    dust = bad & pair.isin(["hold/min_trade", "min_trade/hold"]) & ((bars["w_cur"] - live["w_cur"]).abs() < DUST_W)
    table = pd.DataFrame({"reason_bt": bars["reason"], "reason_live": live["reason"],
                          "w_cur_bt": bars["w_cur"], "w_cur_live": live["w_cur"]})
    mism = table[bad & ~dust]
    # one row per decision: the intrabar model can fill a decision twice (maker, then taker fallback)
    trades = bt.trades.groupby("decision_time").agg(side=("side", "first"), qty_eth=("qty_eth", "sum"))
    trades = trades.loc[trades.index.isin(live.index)]
    traded = live[(live["reason"] == "trade") & (live["qty"] > 0)]
    idx = trades.index.union(traded.index)
    diffs = pd.DataFrame({
        "side_bt": trades["side"].reindex(idx).fillna(""), "side_live": traded["side"].reindex(idx).fillna(""),
        "qty_bt": trades["qty_eth"].reindex(idx).fillna(0.0), "qty_live": live["qty"].reindex(idx).fillna(0.0)})
    diffs["qty_rel_diff"] = (diffs["qty_live"] - diffs["qty_bt"]).abs() / diffs["qty_bt"].where(diffs["qty_bt"] > 0)
    rounding = []
    for t, row in live[live["reason"] == "trade"].iterrows():
        want = floor_step(Decimal(repr(abs(row["delta_eth"]))), step_size)
        if row["final_reason"] == "trade" and row["qty_ordered"] != want and row["qty_ordered"] > want:
            rounding.append(f"{t}: ordered {row['qty_ordered']} > kernel size {want}")

    def maxdiff(a: pd.Series, b: pd.Series) -> float:
        d = np.abs(a.to_numpy(float) - b.to_numpy(float))
        return float(np.nanmax(d)) if len(d) and not np.all(np.isnan(d)) else 0.0

    return Parity(bars=len(bars), reason_mismatches=mism, dust_bars=int(dust.sum()), target_maxdiff=maxdiff(bars["target_w"], live["target_w"]),
                  desired_maxdiff=maxdiff(bars["desired_w"], live["desired_w"]),
                  wcur_maxdiff=maxdiff(bars["w_cur"], live["w_cur"]), trades_backtest=len(trades),
                  trades_live=len(traded), trade_diffs=diffs, rounding_violations=rounding)


def sim_fill_options(cfg: Config) -> dict[str, Any]:
    """Paper-exchange settings for a parity replay: the ones the config's intrabar fill model
    describes (SPEC R22 v3), plus one that the replay's compressed time needs.

    The book: the depth book the backtest's taker fallback walks (``book_depth``, the default and
    the simulator's own; ``ideal_fills`` only when the config asks for the flat book), with the
    config's ``book_*`` sizes; resting fills follow the config's ``partial_fill`` share and
    ``volume_fills`` rule (one rule, :func:`ethbtc.fillmodel.resting_fill_qty`). The config's
    ``step_size`` must be the replay's lot step (``--step-size``).
    ``limits`` off: the replay steps a manual clock through months of bars in minutes, so the
    request-weight windows (wall clock under a manual clock) would only make the executor wait
    for minutes to roll over, not test anything."""
    ex = cfg.execution
    return {"slippage_bps": cfg.fees.slippage_bps, "spread_bps": ex.spread_bps,
            "fill_on_touch": ex.fill_on_touch, "ideal_fills": not ex.book_depth,
            "volume_fills": ex.volume_fills, "partial_fill": ex.partial_fill,
            "book": BookModel(top_share=ex.book_top_share, growth=ex.book_growth,
                              min_top_qty=Decimal(repr(ex.book_min_top_qty)), levels=ex.book_levels),
            "limits": LimitConfig(weight_limit=0)}


def replay(candles: Candles, cfg: Config, bars: int, folder: Path, *, rules: SymbolRules | None = None,
           key: str = "replay-key", secret: str = "replay-secret") -> tuple[list[BarReport], list[dict[str, Any]]]:
    """Replay the first ``bars`` closed bars of ``candles`` from a fresh account of basis_btc."""
    balances = {"BTC": str(Decimal(repr(cfg.risk.basis_btc)).quantize(Decimal("1e-8"))), "ETH": "0", "BNB": "0"}
    maker, taker = cfg.fees.rates_without_bnb_series()  # what the backtest charges without BNB data
    with serve_sim(candles.df, balances=balances, api_key=key, api_secret=secret, start=0,
                   rules=rules or SymbolRules(), maker_fee=round(maker, 10), taker_fee=round(taker, 10),
                   **sim_fill_options(cfg)) as sim:
        engine = sim_engine(sim, cfg, folder, key=key, secret=secret)
        engine.start()
        reports = drive(sim, engine, bars)
        return reports, sim.ledger()


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m ethbtc.live.replay", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--params", required=True)
    p.add_argument("--bars", type=int, default=3000)
    p.add_argument("--tick-size", default="0.000001",
                   help="price tick of the replayed symbol and of the backtest's book (config tick_size)")
    p.add_argument("--step-size", default="0.001",
                   help="lot step of the replayed symbol and of the backtest's partial-fill and book rules "
                        "(config step_size)")
    p.add_argument("--min-notional", default="0.0001")
    p.add_argument("--report", default="out/live_parity.md")
    p.add_argument("--execution", choices=("both", "fallback", "post-only"), default="both",
                   help="replay with taker_fallback true, false, or both (default; SPEC R22 v3: parity under "
                        "every execution setting)")
    p.add_argument("--partial-fill", type=float, metavar="SHARE",
                   help="override the config's partial_fill: the share of a resting order that can fill per bar, "
                        "in the backtest and in the simulator (its --partial-fill; one rule)")
    p.add_argument("--volume-fills", action="store_true",
                   help="override the config's volume_fills to true: resting orders fill at most the volume "
                        "traded through their price, in the backtest and in the simulator")
    a = p.parse_args(argv)
    # the backtest's book and lot = the replay's
    fills: dict[str, Any] = {"tick_size": float(a.tick_size), "step_size": float(a.step_size)}
    if a.partial_fill is not None:
        fills["partial_fill"] = a.partial_fill
    if a.volume_fills:
        fills["volume_fills"] = True
    base = load_config(a.params, fills)
    candles = load_candles(a.data)
    if a.bars < 2:
        p.error("--bars must be >= 2")
    candles = dataclasses.replace(candles, df=candles.df.iloc[: a.bars + 1])
    rules = SymbolRules(tick_size=Decimal(a.tick_size), min_price=Decimal(a.tick_size), step_size=Decimal(a.step_size),
                        min_qty=Decimal(a.step_size), min_notional=Decimal(a.min_notional))
    settings = {"both": (True, False), "fallback": (True,), "post-only": (False,)}[a.execution]
    sections, rows = [], []
    for fallback in settings:
        cfg = base.with_overrides({"taker_fallback": fallback})
        with tempfile.TemporaryDirectory(prefix="ethbtc-replay-") as d:
            reports, _ = replay(candles, cfg, len(candles.df) - 1, Path(d), rules=rules)
        parity = compare(reports, cfg, candles, rules.step_size)
        rows.append(parity_row(cfg, parity))
        sections.append(f"# taker_fallback: {str(fallback).lower()}\n\n" + parity.markdown())
    table = parity_table(rows)
    atomic_write_text(a.report, table + "\n\n" + "\n\n".join(sections))
    print(table)
    print(f"report written to {a.report}")
    return 0


def parity_row(cfg: Config, parity: Parity) -> dict[str, Any]:
    return {"execution": f"`taker_fallback: {str(cfg.execution.taker_fallback).lower()}`",
            "fill model": cfg.execution.fill_model,
            "trades backtest / live": f"{parity.trades_backtest} / {parity.trades_live}",
            "bars that trade on one side only": parity.one_sided,
            "max trade-size difference": f"{parity.qty_rel_max:.2%}",
            "reason mismatches (+ dust bars)": f"{len(parity.reason_mismatches)} (+{parity.dust_bars})"}


def parity_table(rows: list[dict[str, Any]]) -> str:
    """The per-execution-setting parity table (markdown)."""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
