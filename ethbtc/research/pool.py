"""Evaluate trials (parameter dicts) on the train and test windows, on one or more processes.

The numba kernel holds the GIL, so parallelism uses processes. Workers are forked once
(``fork`` start method where available) after the data and windows are prepared, so they
inherit the candles, the compiled kernel and the time arrays instead of re-loading them;
each keeps its own indicator tables and output buffers and evaluates a whole chunk of trials
per window in one compiled call (:func:`ethbtc.search.evaluate_batch`). Workers ignore SIGINT: Ctrl-C is
handled by the parent, which finishes the running batch and writes results.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..config import Config, build_config
from ..errors import UserError
from ..search import Window, evaluate_batch

METRICS = ("final_btc", "return_btc", "max_drawdown", "sharpe", "sortino", "turns", "trades", "fees_btc",
           "turnover_btc", "time_in_eth", "eth_hodl_btc")


@dataclass
class EvalContext:
    """Everything needed to evaluate a trial: base config values, windows, parameter mapping."""

    base: dict[str, Any]  # flat config values the trial's parameters are laid over
    windows: dict[str, Window]  # e.g. {"train": ..., "test": ...}
    to_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # e.g. interval scaling


def evaluate_params(ctx: EvalContext, params: dict[str, Any]) -> dict[str, Any]:
    """``{"params": config values used, "metrics": {window_metric: value}}`` or ``{"error": msg}``."""
    return evaluate_chunk(ctx, [params])[0]


def evaluate_chunk(ctx: EvalContext, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`evaluate_params` of every trial in ``chunk``; the valid ones run as one batch per window."""
    out: list[dict[str, Any]] = [{} for _ in chunk]
    cfgs: list[Config] = []
    valid: list[int] = []
    for i, params in enumerate(chunk):
        values = ctx.to_config(params) if ctx.to_config else params
        try:
            cfgs.append(build_config(ctx.base | values))
        except UserError as exc:
            out[i] = {"error": str(exc)}
            continue
        valid.append(i)
    metrics: list[dict[str, Any]] = [{} for _ in cfgs]
    for name, window in ctx.windows.items():
        for m, s in zip(metrics, evaluate_batch(cfgs, window), strict=True):
            m.update({f"{name}_{k}": s[k] for k in METRICS})
    for i, cfg, m in zip(valid, cfgs, metrics, strict=True):
        strategy = cfg.strategy.model_dump()
        strategy.pop("bar_interval_minutes", None)
        out[i] = {"params": strategy, "metrics": m}
    return out


_CTX: EvalContext | None = None


def _init_worker(ctx: EvalContext) -> None:
    global _CTX
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _CTX = ctx


def _evaluate_chunk(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert _CTX is not None, "worker not initialised"
    return evaluate_chunk(_CTX, chunk)


def _ping(_: int) -> int:
    return os.getpid()


def resolve_threads(threads: int) -> int:
    """``--threads``: 0 means every core this process may use; at most 4 workers per core
    (every worker is started up front: --threads 100000 would fork 100000 processes)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cores = max(1, os.cpu_count() or 1)
    if threads < 0:
        raise UserError(f"--threads must be >= 0 (0 = all cores), got {threads}")
    if threads > 4 * cores:
        raise UserError(f"--threads {threads}: at most {4 * cores} worker processes on {cores} cores")
    return threads or cores


class Evaluator:
    """Submit chunks of trials; one process evaluates in-line, more use a forked pool."""

    def __init__(self, ctx: EvalContext, threads: int):
        self.ctx = ctx
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None
        if threads > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(threads, mp_context=mp.get_context(method),
                                             initializer=_init_worker, initargs=(ctx,))
            list(self._pool.map(_ping, range(threads)))  # start every worker now, before any storage opens

    def submit(self, chunk: list[dict[str, Any]]) -> Future[list[dict[str, Any]]]:
        if self._pool is not None:
            return self._pool.submit(_evaluate_chunk, chunk)
        fut: Future[list[dict[str, Any]]] = Future()
        try:
            fut.set_result(evaluate_chunk(self.ctx, chunk))
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller through the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(cancel=exc[0] is not None)
