"""Observability of the running executor: Prometheus metrics, /health, and the -v level bar.

:class:`Monitor` listens to the engine's hooks (bar decided, loop tick, error, order final,
fill, REST request) and feeds :class:`~ethbtc.monitoring.metrics.BotMetrics` and
:class:`~ethbtc.monitoring.health.HealthState`, which ``ethbtc.monitoring.metrics_server`` serves on one port
(default 9109). At ``-v`` each decided bar also prints the ASCII level bar (price between the
buy and sell levels, with a sparkline of recent closes).
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import IO, Any

from .. import __version__
from ..kernel import S_DAILY_PAUSED, S_DAY_START, S_MAXDD_HIT, S_PEAK
from ..monitoring.alerting import TradeNotice, TradeNotifier
from ..monitoring.health import HealthState
from ..monitoring.levels import price_levels
from ..monitoring.metrics import BotMetrics
from .engine import BarReport, Engine
from .exchange import Fill, OrderInfo
from .state import utc_iso


class Monitor:
    def __init__(self, engine: Engine, metrics: BotMetrics | None, health: HealthState | None,
                 level_bar: bool = False, out: IO[str] | None = None, notifier: TradeNotifier | None = None) -> None:
        self.engine = engine
        self.notifier = notifier
        self.metrics = metrics
        self.health = health
        self.level_bar = level_bar
        self.out = out or sys.stderr
        cfg = engine.strategy.config.strategy
        self.sma_lookback = cfg.trend_lookback if cfg.trend_kind == "sma" else None
        engine.on_bar.append(self.bar)
        engine.on_tick.append(self.tick)
        engine.on_error.append(self.error)
        engine.on_order = self.order
        engine.on_fill = self.fill
        engine.market.on_request = self.request
        if metrics is not None:
            metrics.set_build_info(__version__, engine.opts.mode, engine.opts.symbol, engine.opts.interval)

    def bar(self, r: BarReport) -> None:
        d = r.decision
        if self.notifier is not None and r.execution is not None and r.execution.fills and not r.catchup:
            self.notifier.notify(self.trade_notice(r))
        st = self.engine.state
        kernel = st.kernel_array() if st is not None else None
        if self.metrics is not None:
            self.metrics.observe_decision(d, self.sma_lookback)
            if r.final_reason != d.reason:
                self.metrics.set_blocker(r.final_reason)
            if kernel is not None and st is not None:
                peak, day_start = kernel[S_PEAK], kernel[S_DAY_START]
                bnb = float(sum(self.engine.last_balances.get("BNB", (Decimal(0), Decimal(0)))))
                self.metrics.observe_portfolio(r.btc, r.eth, bnb, r.wealth, st.session_start_w,
                                               peak if math.isfinite(peak) else r.wealth,
                                               day_start if math.isfinite(day_start) else r.wealth,
                                               st.session_start_price)
                self.metrics.set_breakers(bool(kernel[S_MAXDD_HIT]), bool(kernel[S_DAILY_PAUSED]))
            self.metrics.set_used_weight(self.engine.market.used_weight)
        if self.health is not None:
            self.health.bar_processed(d.bar_open_ms)
            if kernel is not None:
                self.health.set_breakers(bool(kernel[S_MAXDD_HIT]), bool(kernel[S_DAILY_PAUSED]))
        if self.level_bar and not r.catchup:
            import ascii_levelbar  # the repository's console tool (top-level script module)

            buy, sell = price_levels(d.close, d.ratio, d.entry_band, d.exit_band, self.sma_lookback)
            closes = [float(x) for x in self.engine.feed.ohlcv[-60:, 3]]
            print(ascii_levelbar.render(d.close, buy, sell, closes, width=100, symbol=self.engine.opts.symbol),
                  file=self.out, flush=True)

    def started(self) -> None:
        """After ``engine.start``: the breaker flags of the loaded state, before the first bar is
        decided (a restart must not report a latched breaker as cleared, nor resolve its alert)."""
        st = self.engine.state
        if st is None:
            return
        kernel = st.kernel_array()
        maxdd, daily = bool(kernel[S_MAXDD_HIT]), bool(kernel[S_DAILY_PAUSED])
        if self.metrics is not None:
            self.metrics.set_breakers(maxdd, daily)
        if self.health is not None:
            self.health.set_breakers(maxdd, daily)

    def tick(self) -> None:
        if self.metrics is not None:
            self.metrics.heartbeat()
        if self.health is not None:
            self.health.loop_tick()

    def error(self, message: str) -> None:
        if self.health is not None:
            self.health.record_error(message)

    def order(self, info: OrderInfo, kind: str, seconds: float, ttl_cancelled: bool) -> None:
        if self.metrics is None:
            return
        self.metrics.observe_order(info.side.lower(), kind, info.status)
        self.metrics.observe_order_latency(seconds)
        if ttl_cancelled:
            self.metrics.inc_ttl_cancel()
        if kind == "market":
            self.metrics.inc_taker_fallback()

    def fee_quote(self, f: Fill) -> Decimal:
        """A fill's commission valued in the quote asset (BNB fees: 0 here, as in the metrics)."""
        filters = self.engine.filters
        return f.commission if filters is None or f.commission_asset == filters.quote else (
            f.commission * f.price if f.commission_asset == filters.base else Decimal(0))

    def fill(self, f: Fill) -> None:
        if self.metrics is None:
            return
        self.metrics.observe_fill(f.side.lower(), f.is_maker, float(f.qty), float(f.quote_qty),
                                  float(self.fee_quote(f)))

    def trade_notice(self, r: BarReport) -> TradeNotice:
        """The figures of one bar's executed rebalance (all of its fills together)."""
        ex = r.execution
        assert ex is not None and ex.fills
        qty = sum((f.qty for f in ex.fills), Decimal(0))
        quote = sum((f.quote_qty for f in ex.fills), Decimal(0))
        close_ms = r.decision.bar_open_ms + self.engine.opts.interval_ms
        return TradeNotice(symbol=self.engine.opts.symbol, mode=self.engine.opts.mode,
                           bar_close=utc_iso(close_ms), side=ex.fills[0].side.upper(),
                           qty=float(qty), avg_price=float(quote / qty) if qty else 0.0, quote_qty=float(quote),
                           fee_quote=float(sum((self.fee_quote(f) for f in ex.fills), Decimal(0))),
                           fills=len(ex.fills), weight=r.eth * r.decision.close / r.wealth if r.wealth > 0 else 0.0,
                           wealth=r.wealth, pnl=r.pnl)

    def request(self, path: str, seconds: float, error: Any) -> None:
        if self.metrics is not None:
            self.metrics.observe_request(path, seconds, error)
