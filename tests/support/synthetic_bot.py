"""A stand-in for the live executor in observability tests: drives the real ``BotMetrics``,
``HealthState`` and metrics HTTP server with plausible bars, orders, fills and API calls.

Until ``live_executor.py`` exists this is the "bot" that Prometheus scrapes. It implements the
``BotDriver`` protocol of ``tests/support/prom_fixtures.py``; the executor's tests swap it for a driver
that runs the real executor against the exchange simulator (``stall()`` = freeze the simulator).
A toy SMA-band strategy on a seeded random walk: it is not the project's strategy and makes no
claim about it -- it only produces every kind of metric with realistic magnitudes.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import time

from ethbtc.monitoring.health import HealthState
from ethbtc.monitoring.levels import price_levels
from ethbtc.monitoring.metrics import BotMetrics
from ethbtc.monitoring.metrics_server import MetricsServer

LOOKBACK = 12
ENTRY, EXIT = 0.004, 0.001
STEP, THRESHOLD, MAX_POSITION = 0.5, 0.02, 0.8
COOLDOWN_BARS = 3
MAKER_FEE, TAKER_FEE = 0.00075, 0.001


class SyntheticBot:
    """One bar every ``bar_seconds`` of real time, in a daemon thread, until ``stop()``."""

    def __init__(self, bar_seconds: float = 0.2, seed: int = 1, mode: str = "dry",
                 max_loop_age_seconds: float | None = None) -> None:
        self.bar_seconds = bar_seconds
        self.metrics = BotMetrics()
        self.health = HealthState(mode, bar_seconds, max_loop_age_seconds)
        self.server = MetricsServer(self.metrics.registry, self.health, "127.0.0.1", 0)
        self.metrics.set_build_info("0.1.0-test", mode, "ETHBTC", "1m")
        self.rng = random.Random(seed)
        self.bars = 0
        self.fills = 0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="synthetic-bot", daemon=True)
        # market and wallet
        self.closes: list[float] = []
        self.price = 0.0520
        self.btc, self.eth, self.bnb = 1.0, 0.0, 0.05
        self.state = "BTC"
        self.last_flip = -10**9
        self.session_start_w: float | None = None
        self.session_start_price: float | None = None
        self.day_start_w = 0.0
        self.peak_w = 0.0
        self.used_weight = 0

    # ---------------------------------------------------------------- BotDriver protocol
    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> SyntheticBot:
        self.server.start()
        self._running.set()
        self._thread.start()
        return self

    def stall(self) -> None:
        """Freeze the loop: no heartbeats, no bars (the process and HTTP server stay up)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(5)
        self.health.mark_stopped()
        self.server.stop()

    # ---------------------------------------------------------------- simulation
    def _run(self) -> None:
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.is_set():
                break
            self.step()
            self._stop.wait(self.bar_seconds)

    def _request(self, endpoint: str, weight: int, fail_rate: float = 0.0) -> bool:
        seconds = self.rng.lognormvariate(math.log(0.08), 0.6)
        error = None
        if self.rng.random() < fail_rate:
            error = self.rng.choice([-1021, -1003, "timeout", "http_503"])
        self.used_weight += weight
        self.metrics.observe_request(endpoint, seconds, error)
        self.metrics.set_used_weight(self.used_weight)
        return error is None

    def step(self) -> None:
        rng, m = self.rng, self.metrics
        t = self.bars
        if t % 30 == 0:
            self.used_weight = 0  # a new minute of request weight
        self._request("/api/v3/klines", 2, fail_rate=0.05)
        self._request("/api/v3/ticker/bookTicker", 2)
        self.price *= math.exp(rng.gauss(0.0, 0.003))
        close = self.price
        self.closes.append(close)
        window = self.closes[-LOOKBACK:]
        nan = float("nan")
        trend_ratio = close / statistics.fmean(window) - 1 if len(window) == LOOKBACK else nan
        buy, sell = price_levels(close, trend_ratio, ENTRY, EXIT, sma_lookback=LOOKBACK)
        gate = close / self.closes[-2 * LOOKBACK] - 1 if len(self.closes) >= 2 * LOOKBACK else nan
        gate_open = math.isfinite(gate)

        flip_wanted = (self.state == "BTC" and trend_ratio < -ENTRY and gate_open) or (
            self.state == "ETH" and trend_ratio > -EXIT)
        cooled = t - self.last_flip >= COOLDOWN_BARS
        if flip_wanted and cooled:
            self.state = "ETH" if self.state == "BTC" else "BTC"
            self.last_flip = t
        target = MAX_POSITION if self.state == "ETH" else 0.0
        wealth = self.btc + self.eth * close
        w_cur = self.eth * close / wealth
        desired = w_cur + STEP * (target - w_cur)
        if abs(target - desired) < THRESHOLD:
            desired = target

        if not math.isfinite(trend_ratio):
            reason = "warmup"
        elif flip_wanted and not cooled:
            reason = "cooldown"
        elif abs(desired - w_cur) < THRESHOLD:
            reason = "hold" if abs(target - w_cur) < 1e-9 else "threshold"
        else:
            reason = self._trade(desired, w_cur, wealth, close)
            wealth = self.btc + self.eth * close
            w_cur = self.eth * close / wealth

        if self.session_start_w is None:
            self.session_start_w, self.session_start_price = wealth, close
            self.day_start_w = wealth
        self.peak_w = max(self.peak_w, wealth)
        bar_open = time.time() - self.bar_seconds
        m.observe_bar(bar_open, close, trend_ratio, ENTRY, EXIT, buy, sell, gate, gate_open, self.state,
                      target, desired, w_cur, reason)
        m.observe_portfolio(self.btc, self.eth, self.bnb, wealth, self.session_start_w, self.peak_w,
                            self.day_start_w, session_start_price=self.session_start_price)
        m.set_breakers(maxdd_hit=False, daily_paused=False)
        m.heartbeat()
        self.health.bar_processed(bar_open)
        self.bars += 1

    def _trade(self, desired: float, w_cur: float, wealth: float, close: float) -> str:
        """Place a LIMIT_MAKER; it fills, or fills partly and the rest goes MARKET after the TTL,
        or the exchange rejects it. Returns the bar's reason."""
        rng, m = self.rng, self.metrics
        side = "buy" if desired > w_cur else "sell"
        qty = abs(desired - w_cur) * wealth / close
        outcome = rng.random()
        if not self._request("/api/v3/order", 1, fail_rate=0.1):
            m.observe_order(side, "limit_maker", "error")
            return "exchange_error"
        if outcome < 0.1:
            m.observe_order(side, "limit_maker", "REJECTED")
            m.observe_order_latency(rng.uniform(0.05, 0.3))
            return "order_rejected"
        maker_part = qty if outcome < 0.75 else qty * rng.uniform(0.2, 0.8)
        self._fill(side, maker_part, close, maker=True)
        if maker_part < qty:
            m.observe_order(side, "limit_maker", "CANCELED")
            m.inc_ttl_cancel()
            m.observe_order_latency(rng.uniform(20, 60))
            m.inc_taker_fallback()
            self._request("/api/v3/order", 1)
            self._fill(side, qty - maker_part, close, maker=False)
            m.observe_order(side, "market", "FILLED")
            m.observe_order_latency(rng.uniform(0.05, 0.5))
        else:
            m.observe_order(side, "limit_maker", "FILLED")
            m.observe_order_latency(rng.uniform(1, 30))
        self._request("/api/v3/myTrades", 20)
        self._request("/api/v3/account", 20)
        return "trade"

    def _fill(self, side: str, qty: float, price: float, maker: bool) -> None:
        quote = qty * price
        fee = quote * (MAKER_FEE if maker else TAKER_FEE)
        if side == "buy":
            self.btc -= quote
            self.eth += qty
        else:
            self.btc += quote
            self.eth -= qty
        self.btc -= fee
        self.fills += 1
        self.metrics.observe_fill(side, maker, qty, quote, fee)
