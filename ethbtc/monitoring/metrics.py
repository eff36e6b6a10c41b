"""Prometheus metrics of the live bot: one ``BotMetrics`` object, one method per thing to report.

The executor owns a ``BotMetrics`` and calls its methods from the bar loop; the HTTP server in
``ethbtc.monitoring.metrics_server`` exposes ``BotMetrics.registry`` on ``/metrics``. Every metric name
starts with ``ethbtc_``, uses base units (seconds, ratios, BTC/ETH/BNB amounts), counters end
in ``_total`` and labels only take values from small fixed sets (never ids or timestamps).
docs/monitoring.md lists every metric; ``grafana/`` charts them.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..data.timeframes import binance_interval, epoch_seconds, interval_minutes
from ..errors import UserError
from .levels import distance_bps, price_levels

PREFIX = "ethbtc"

# SPEC R26: decision reasons of the shared execution model, then the live-only exchange ones.
MODEL_REASONS: tuple[str, ...] = (
    "warmup", "hold", "threshold", "min_trade", "cooldown", "gate", "risk_maxdd", "risk_daily", "trade",
)
LIVE_REASONS: tuple[str, ...] = ("min_notional", "insufficient_balance", "order_rejected", "exchange_error")
REASONS: tuple[str, ...] = MODEL_REASONS + LIVE_REASONS

MODES = ("dry", "testnet", "live")
SIDES = ("buy", "sell")
ORDER_TYPES = ("limit_maker", "market")
# Final outcome of one order; Binance statuses map onto these (anything unknown -> "other").
ORDER_RESULTS = ("filled", "partially_filled", "canceled", "expired", "rejected", "error", "other")
LIQUIDITY = ("maker", "taker")
BREAKERS = ("max_drawdown", "daily_loss")
SIGNAL_STATES = {"btc": 0, "eth": 1}

# Binance Spot REST paths the executor uses; any other path is reported as "other".
ENDPOINTS = (
    "/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/depth",
    "/api/v3/ticker/bookTicker", "/api/v3/ticker/price", "/api/v3/account", "/api/v3/order",
    "/api/v3/openOrders", "/api/v3/allOrders", "/api/v3/myTrades", "/api/v3/order/test",
)
_ERROR_CODE = re.compile(r"^(-?\d{1,6}|[a-z][a-z0-9_]{0,31})$")

API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ORDER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

NAN = float("nan")

# No `*_created` series: they double the series count and no panel uses them (process-wide switch).
disable_created_metrics()


class DecisionLike(Protocol):
    """The fields of ``ethbtc.strategy.Decision`` that ``observe_decision`` reads."""

    bar_open_ms: int
    close: float
    reason: str
    signal: str
    target_w: float
    desired_w: float
    w_cur: float
    ratio: float
    entry_band: float
    exit_band: float
    gate: float
    gate_open: bool


class _StateSet(Collector):
    """A gauge with one series per allowed state, 1 for the active state and 0 for the rest.

    Kept as one stored value so a scrape never sees two states (or none) mid-update.
    """

    def __init__(self, name: str, documentation: str, label: str, states: Sequence[str]) -> None:
        self._name, self._doc, self._label, self._states = name, documentation, label, tuple(states)
        self._active: str | None = None
        self._lock = threading.Lock()

    def set(self, state: str) -> None:
        if state not in self._states:
            raise ValueError(f"{self._name}: unknown {self._label} {state!r} (expected one of {self._states})")
        with self._lock:
            self._active = state

    @property
    def active(self) -> str | None:
        return self._active

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=[self._label])
        active = self._active
        if active is not None:  # nothing to say before the first decision
            for state in self._states:
                family.add_metric([state], 1.0 if state == active else 0.0)
        yield family


def _choice(value: str, allowed: Iterable[str], what: str) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise ValueError(f"unknown {what} {value!r} (expected one of {tuple(allowed)})")
    return v


def _flag(value: bool | float) -> float:
    return 1.0 if value else 0.0


class BotMetrics:
    """All metrics of one bot, in their own ``CollectorRegistry`` (tests may create several).

    Call order in the executor: ``set_build_info`` once at start; per bar ``observe_bar`` and
    ``observe_portfolio``; ``set_breakers`` whenever the flags may change; per order / fill /
    request the ``observe_*`` methods; ``heartbeat`` on every loop iteration.
    """

    def __init__(self, registry: CollectorRegistry | None = None, process_metrics: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process_metrics:  # process_* (CPU, memory, fds, start time) and python_* families
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            g = Gauge(f"{PREFIX}_{name}", doc, labelnames=labels, registry=r)
            if not labels:
                g.set(NAN)  # "unknown" until first observed; Grafana draws a gap, not a fake 0
            return g

        # --- identity ---
        self.build_info = Info(f"{PREFIX}_build", "Bot version, trading mode, symbol and bar interval", registry=r)
        self.bar_interval = gauge("bar_interval_seconds", "Length of one bar in seconds")
        # --- portfolio ---
        self.balance_btc = gauge("balance_btc", "BTC balance (free + locked)")
        self.balance_eth = gauge("balance_eth", "ETH balance (free + locked)")
        self.balance_bnb = gauge("balance_bnb", "BNB fee-wallet balance (free + locked)")
        self.wealth = gauge("wealth_btc", "Portfolio value in BTC: btc + eth*close (+ bnb*BNBBTC)")
        self.session_start_wealth = gauge(
            "session_start_wealth_btc", "Wealth in BTC at session start (session_start_W); equals BTC-HODL"
        )
        self.session_start_price = gauge("session_start_price", "ETHBTC close at session start (for ETH-HODL)")
        self.pnl = gauge("pnl_btc", "Profit since session start in BTC: wealth - session_start_wealth")
        self.peak_wealth = gauge("peak_wealth_btc", "Running peak of wealth in BTC (SPEC R24)")
        self.drawdown = gauge("drawdown_ratio", "Drawdown from the wealth peak: 1 - wealth/peak")
        self.day_start_wealth = gauge("day_start_wealth_btc", "Wealth at the first decision bar of the UTC day (R25)")
        self.day_pnl = gauge("day_pnl_btc", "Profit since the start of the UTC day in BTC")
        # --- strategy, per bar ---
        self.last_bar_open = gauge("last_bar_open_time_seconds", "Open time (unix) of the last decided bar")
        self.close = gauge("close_price", "Close of the last decided bar (BTC per ETH)")
        self.trend_ratio = gauge("trend_ratio", "Trend ratio r = close/trend - 1 (SPEC R6)")
        self.entry_band = gauge("entry_band_ratio", "Entry band: enter ETH when trend ratio < -entry (R8, R12)")
        self.exit_band = gauge("exit_band_ratio", "Exit band: leave ETH when trend ratio > -exit (R8, R13)")
        self.buy_level = gauge("buy_level_price", "Close at which the entry (buy) condition starts to hold")
        self.sell_level = gauge("sell_level_price", "Close at which the exit (sell) condition starts to hold")
        self.buy_distance = gauge(
            "buy_level_distance_bps", "Move from close to the buy level in bps of close (negative = level below)"
        )
        self.sell_distance = gauge(
            "sell_level_distance_bps", "Move from close to the sell level in bps of close (negative = level below)"
        )
        self.gate_value = gauge("gate_value_ratio", "Regime gate value g = D(d-1)/D(d-1-W) - 1 (SPEC R9)")
        self.gate_open = gauge("gate_open", "1 when the regime gate allows entries, else 0")
        self.signal_state = gauge("signal_state", "Signal state of the hysteresis machine: 0 = BTC, 1 = ETH")
        self.weight_target = gauge("weight_target_ratio", "Target ETH weight w* (SPEC R16)")
        self.weight_desired = gauge("weight_desired_ratio", "ETH weight wanted after this bar's step (R19)")
        self.weight_current = gauge("weight_current_ratio", "Current ETH weight eth*close/(btc + eth*close)")
        self._blocker = _StateSet(
            f"{PREFIX}_blocker", "Reason of the last decision (SPEC R26): 1 for the active reason", "reason", REASONS
        )
        r.register(self._blocker)
        self.decisions = Counter(f"{PREFIX}_bar_decisions", "Decided bars by reason (SPEC R26)", ["reason"], registry=r)
        # --- execution ---
        self.orders = Counter(f"{PREFIX}_orders", "Orders by side, type and final result", ["side", "type", "result"], registry=r)
        self.fills = Counter(f"{PREFIX}_fills", "Fills by side and liquidity (maker/taker)", ["side", "liquidity"], registry=r)
        self.filled_eth = Counter(f"{PREFIX}_filled_eth", "Filled quantity in ETH", ["side"], registry=r)
        self.filled_btc = Counter(f"{PREFIX}_filled_btc", "Filled notional in BTC (quote quantity)", ["side"], registry=r)
        self.fees = Counter(f"{PREFIX}_fees_btc", "Fees paid, BTC equivalent", ["liquidity"], registry=r)
        self.order_latency = Histogram(
            f"{PREFIX}_order_latency_seconds", "Time from sending an order to its final state",
            registry=r, buckets=ORDER_BUCKETS,
        )
        self.ttl_cancels = Counter(f"{PREFIX}_ttl_cancels", "Maker orders cancelled after ttl_sec", registry=r)
        self.taker_fallbacks = Counter(f"{PREFIX}_taker_fallbacks", "Unfilled rests sent as MARKET orders", registry=r)
        self.api_duration = Histogram(
            f"{PREFIX}_api_request_duration_seconds", "Exchange REST request duration by endpoint",
            ["endpoint"], registry=r, buckets=API_BUCKETS,
        )
        self.api_errors = Counter(
            f"{PREFIX}_api_errors", "Failed exchange requests by endpoint and Binance error code (or http_NNN, timeout, connection)",
            ["endpoint", "code"], registry=r,
        )
        self.used_weight = gauge("api_used_weight", "Request weight used in the current minute (X-MBX-USED-WEIGHT-1M)")
        self.breaker = gauge("breaker_tripped", "1 while a risk breaker is active (max_drawdown R24, daily_loss R25)", ["breaker"])
        self.heartbeat_time = gauge("heartbeat_time_seconds", "Unix time of the last bar-loop iteration")
        self._init_series()

    def _init_series(self) -> None:
        """Create every series of the bounded label sets at 0, so rate()/increase() see the first event."""
        for reason in REASONS:
            self.decisions.labels(reason)
        for side in SIDES:
            self.filled_eth.labels(side)
            self.filled_btc.labels(side)
            for liq in LIQUIDITY:
                self.fills.labels(side, liq)
            for typ in ORDER_TYPES:
                for res in ORDER_RESULTS:
                    self.orders.labels(side, typ, res)
        for liq in LIQUIDITY:
            self.fees.labels(liq)
        for b in BREAKERS:
            self.breaker.labels(b).set(0)

    # ------------------------------------------------------------------ identity
    def set_build_info(self, version: str, mode: str, symbol: str, interval: str | int) -> None:
        """Once at start. ``interval`` is a Binance interval ('15m', '1h') or minutes."""
        mode = _choice(mode, MODES, "mode")
        minutes = interval_minutes(interval)
        try:
            name = binance_interval(minutes)
        except UserError:
            name = f"{minutes}m"
        self.build_info.info({"version": str(version), "mode": mode, "symbol": str(symbol).upper(), "interval": name})
        self.bar_interval.set(minutes * 60.0)

    # ------------------------------------------------------------------ portfolio
    def observe_portfolio(
        self,
        btc: float,
        eth: float,
        bnb: float,
        wealth_btc: float,
        session_start_w: float,
        peak_w: float,
        day_start_w: float,
        session_start_price: float | None = None,
    ) -> None:
        """Balances and wealth after each bar (and after fills). Amounts in BTC / ETH / BNB.

        ``session_start_price`` (ETHBTC at session start) enables the ETH-HODL line.
        """
        self.balance_btc.set(btc)
        self.balance_eth.set(eth)
        self.balance_bnb.set(bnb)
        self.wealth.set(wealth_btc)
        self.session_start_wealth.set(session_start_w)
        self.pnl.set(wealth_btc - session_start_w)
        self.peak_wealth.set(peak_w)
        self.drawdown.set(max(0.0, 1.0 - wealth_btc / peak_w) if peak_w > 0 else NAN)
        self.day_start_wealth.set(day_start_w)
        self.day_pnl.set(wealth_btc - day_start_w)
        if session_start_price is not None:
            self.session_start_price.set(session_start_price)

    # ------------------------------------------------------------------ strategy
    def observe_bar(
        self,
        bar_open_time: float | int | dt.datetime,
        close: float,
        trend_ratio: float,
        entry_band: float,
        exit_band: float,
        buy_level: float,
        sell_level: float,
        gate_value: float,
        gate_open: bool,
        signal_state: str | int,
        target_w: float,
        desired_w: float,
        current_w: float,
        reason: str,
    ) -> None:
        """Everything the decision for one bar saw and produced. NaN inputs (warm-up) are fine.

        ``signal_state`` is 'BTC'/'ETH' (or 0/1); ``reason`` one of ``REASONS``. Also sets the
        blocker and counts the decision.
        """
        reason = _choice(reason, REASONS, "reason")
        if isinstance(signal_state, str):
            state = SIGNAL_STATES[_choice(signal_state, SIGNAL_STATES, "signal state")]
        else:
            state = int(signal_state)
            if state not in (0, 1):
                raise ValueError(f"unknown signal state {signal_state!r} (expected 'BTC'/'ETH' or 0/1)")
        self.last_bar_open.set(epoch_seconds(bar_open_time))
        self.close.set(close)
        self.trend_ratio.set(trend_ratio)
        self.entry_band.set(entry_band)
        self.exit_band.set(exit_band)
        self.buy_level.set(buy_level)
        self.sell_level.set(sell_level)
        self.buy_distance.set(distance_bps(close, buy_level))
        self.sell_distance.set(distance_bps(close, sell_level))
        self.gate_value.set(gate_value)
        self.gate_open.set(_flag(gate_open))
        self.signal_state.set(state)
        self.weight_target.set(target_w)
        self.weight_desired.set(desired_w)
        self.weight_current.set(current_w)
        self.decisions.labels(reason).inc()
        self._blocker.set(reason)

    def observe_decision(self, decision: DecisionLike, sma_lookback: int | None = None) -> None:
        """``observe_bar`` from an ``EthBtcStrategy.step`` Decision; buy/sell levels computed by
        ``ethbtc.monitoring.levels.price_levels`` (pass ``trend_lookback`` when ``trend_kind`` is sma)."""
        d = decision
        buy, sell = price_levels(d.close, d.ratio, d.entry_band, d.exit_band, sma_lookback)
        self.observe_bar(d.bar_open_ms, d.close, d.ratio, d.entry_band, d.exit_band, buy, sell, d.gate,
                         d.gate_open, d.signal, d.target_w, d.desired_w, d.w_cur, d.reason)

    def set_blocker(self, reason: str) -> None:
        """Set the active reason without counting a decision (e.g. an exchange-side reason
        found while executing a bar already observed)."""
        self._blocker.set(_choice(reason, REASONS, "reason"))

    @property
    def blocker(self) -> str | None:
        return self._blocker.active

    # ------------------------------------------------------------------ execution
    def observe_order(self, side: str, type: str, result: str) -> None:
        """One order reached its final state. ``result`` may be a Binance status (FILLED, ...)."""
        res = str(result).strip().lower()
        if res == "cancelled":
            res = "canceled"
        if res == "expired_in_match":
            res = "expired"
        if res not in ORDER_RESULTS:
            res = "other"
        self.orders.labels(_choice(side, SIDES, "side"), _choice(type, ORDER_TYPES, "order type"), res).inc()

    def observe_fill(self, side: str, is_maker: bool, qty: float, quote_qty: float, fee_btc: float) -> None:
        """One exchange fill (trade): ETH quantity, BTC notional, fee valued in BTC."""
        side = _choice(side, SIDES, "side")
        liquidity = "maker" if is_maker else "taker"
        self.fills.labels(side, liquidity).inc()
        self.filled_eth.labels(side).inc(abs(qty))
        self.filled_btc.labels(side).inc(abs(quote_qty))
        self.fees.labels(liquidity).inc(max(0.0, fee_btc))

    def observe_order_latency(self, seconds: float) -> None:
        self.order_latency.observe(max(0.0, seconds))

    def inc_ttl_cancel(self) -> None:
        self.ttl_cancels.inc()

    def inc_taker_fallback(self) -> None:
        self.taker_fallbacks.inc()

    def observe_request(self, endpoint: str, seconds: float, error_code: int | str | None = None) -> None:
        """One REST request. ``endpoint`` is the path (query string ignored); ``error_code`` the
        Binance code (-2010), 'would_take' (a maker order refused because it would cross: a
        re-price), or e.g. 'http_503', 'timeout', 'connection' when it failed."""
        path = str(endpoint).split("?", 1)[0].rstrip("/") or "/"
        label = path if path in ENDPOINTS else "other"
        self.api_duration.labels(label).observe(max(0.0, seconds))
        if error_code is not None:
            code = str(error_code).strip().lower()
            self.api_errors.labels(label, code if _ERROR_CODE.match(code) else "other").inc()

    def set_used_weight(self, weight: float) -> None:
        self.used_weight.set(weight)

    def set_breakers(self, maxdd_hit: bool, daily_paused: bool) -> None:
        self.breaker.labels("max_drawdown").set(_flag(maxdd_hit))
        self.breaker.labels("daily_loss").set(_flag(daily_paused))

    def heartbeat(self, now: float | None = None) -> None:
        """Call on every loop iteration (also while waiting for the next bar)."""
        if now is None:
            self.heartbeat_time.set_to_current_time()
        else:
            self.heartbeat_time.set(now)

    # ------------------------------------------------------------------ output
    def exposition(self) -> bytes:
        """The text exposition format, as served on /metrics."""
        return generate_latest(self.registry)
