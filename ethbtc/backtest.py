"""Backtest runner: candles + config -> per-bar frame (R27), trades (R28), summary (R29).

The simulation itself is :meth:`EthBtcStrategy.run` (the compiled kernel); this module only
prepares inputs (window, BNB alignment) and turns the raw arrays into frames and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import kernel as K
from .config import Config
from .data.candles import Candles, align_series
from .errors import DataError
from .strategy import EthBtcStrategy, RunArrays


@dataclass
class BacktestResult:
    bars: pd.DataFrame
    trades: pd.DataFrame
    summary: dict[str, Any]
    config: Config


def prepare_bnb(candles: Candles, bnb: Candles | None) -> np.ndarray | None:
    if bnb is None:
        return None
    px = align_series(candles.df.index, bnb)
    if np.isnan(px[0]):
        raise DataError(
            f"BNB data starts {bnb.df.index[0]:%Y-%m-%d %H:%M}, after the ETHBTC window start "
            f"{candles.df.index[0]:%Y-%m-%d %H:%M}; pass --start later or BNB data that covers it"
        )
    return px


def run_backtest(config: Config, candles: Candles, bnb: Candles | None = None) -> BacktestResult:
    strat = EthBtcStrategy(config, candles.interval_minutes)
    bnb_px = prepare_bnb(candles, bnb) if config.fees.pay_fees_in_bnb else None
    arrays = strat.run(candles.df, bnb_px)
    return build_result(config, candles, arrays, bnb_px)


def build_result(config: Config, candles: Candles, a: RunArrays, bnb_px: np.ndarray | None) -> BacktestResult:
    df = candles.df
    idx = df.index
    of = a.out_f
    bars = pd.DataFrame(
        {
            "close": df["close"].to_numpy(),
            "btc": of[:, K.O_BTC], "eth": of[:, K.O_ETH], "bnb": of[:, K.O_BNB],
            "wealth_btc": of[:, K.O_WEALTH], "w_cur": of[:, K.O_WCUR],
            "target_w": of[:, K.O_TARGET], "desired_w": of[:, K.O_DESIRED],
            "state": np.where(a.out_i[:, 1] == 1, "ETH", "BTC"),
            "reason": np.asarray(K.REASONS)[a.out_i[:, 0]],
            "ratio": a.ind.ratio, "entry_band": a.ind.entry, "exit_band": a.ind.exit,
            "gate_open": a.ind.gate_open,
        },
        index=pd.Index(idx, name="time"),
    )
    tf, ti = a.tr_f, a.tr_i
    trades = pd.DataFrame(
        {
            "time": idx[ti[:, K.TI_BAR]],
            "side": np.where(ti[:, K.TI_SIDE] > 0, "BUY", "SELL"),
            "qty_eth": tf[:, K.T_QTY], "price": tf[:, K.T_PRICE], "notional_btc": tf[:, K.T_NOTIONAL],
            "fee_btc": tf[:, K.T_FEE_BTC], "fee_bnb": tf[:, K.T_FEE_BNB],
            "reason": np.asarray(K.TRADE_REASONS)[ti[:, K.TI_REASON]],
            "decision_time": idx[ti[:, K.TI_DECISION_BAR]],
        }
    )
    summary = summarize(config, candles, bars, trades, int(a.state[K.S_TURNS]), bnb_px)
    return BacktestResult(bars, trades, summary, config)


def fee_model(config: Config, bnb_used: float | None) -> str:
    """One line naming the R23 fee model that ran (printed in the summary)."""
    f = config.fees
    if not f.pay_fees_in_bnb:
        return "fees in the received asset at the full rate"
    used = f"BNB used {bnb_used:.4g}" if bnb_used is not None else "BNB used n/a (no BNBBTC prices, --bnb-data)"
    disc = f"fees in BNB at -{f.bnb_discount * 100:g} %"
    if f.start_bnb > 0:
        return f"{disc} from a {f.start_bnb:g} BNB wallet, then the received asset at the full rate; {used}"
    return f"{disc}, wallet assumed funded; {used}"


def drawdown(wealth: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(wealth)
    return 1.0 - wealth / peak


def ratio_stats(wealth: np.ndarray, bars_per_year: float) -> tuple[float, float]:
    """Annualised Sharpe and Sortino of per-bar log returns (R29); NaN when undefined."""
    if len(wealth) < 3:
        return float("nan"), float("nan")
    r = np.diff(np.log(wealth))
    mu, sd = r.mean(), r.std(ddof=1)
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    ann = np.sqrt(bars_per_year)
    sharpe = mu / sd * ann if sd > 0 else float("nan")
    sortino = mu / downside * ann if downside > 0 else float("nan")
    return float(sharpe), float(sortino)


def summarize(config: Config, candles: Candles, bars: pd.DataFrame, trades: pd.DataFrame, turns: int,
              bnb_px: np.ndarray | None) -> dict[str, Any]:
    df = candles.df
    wealth = bars["wealth_btc"].to_numpy()
    start_w = float(config.risk.basis_btc + (config.fees.start_bnb * bnb_px[0] if bnb_px is not None else 0.0))
    eth_hodl = start_w / float(df["open"].iloc[0]) * float(df["close"].iloc[-1])
    sharpe, sortino = ratio_stats(wealth, 525_600.0 / candles.interval_minutes)
    final = float(wealth[-1])
    bnb_used = float(trades["fee_bnb"].sum()) if bnb_px is not None else None
    return {
        "start": str(df.index[0]), "end": str(df.index[-1]), "bars": int(len(df)),
        "interval_minutes": candles.interval_minutes,
        "start_btc": start_w, "eth_hodl_qty": start_w / float(df["open"].iloc[0]), "final_btc": final, "return_btc": final / start_w - 1.0,
        "btc_hodl_btc": start_w, "eth_hodl_btc": eth_hodl,
        "vs_eth_hodl": final / eth_hodl - 1.0,
        "max_drawdown": float(drawdown(wealth).max()), "sharpe": sharpe, "sortino": sortino,
        "turns": turns, "trades": int(len(trades)),
        "fees_btc": float(trades["fee_btc"].sum()), "fee_model": fee_model(config, bnb_used),
        "bnb_used": bnb_used if bnb_used is not None else float("nan"), "turnover_btc": float(trades["notional_btc"].sum()),
        "time_in_eth": float((bars["state"] == "ETH").mean()),
        "avg_eth_weight": float(bars["w_cur"].mean()),
        "gaps": len(candles.report.gaps), "missing_bars": candles.report.missing_bars,
    }
