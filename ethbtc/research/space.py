"""Search spaces: the documented default, ``--search-space FILE.json`` overrides, focusing a
space around a known configuration, and turning an Optuna trial into strategy parameters.

A search-space file is a JSON object ``{name: spec}`` merged over the default
(:data:`ethbtc.search.SEARCH_SPACE`). A spec is ``[low, high]``, ``{"low": .., "high": ..,
"step": .., "log": ..}``, ``{"choices": [..]}``, a plain value (fixed) or ``null`` (not
searched: the ``--config`` value is used). Names are strategy keys of the config.

Impossible combinations are never drawn: ``flip_band_exit`` is sampled as a fraction of the
room below ``flip_band_entry`` (Optuna parameter ``flip_band_exit_frac``), so the exit band
is uniform on ``[exit.low, min(exit.high, entry)]`` and every distribution stays fixed, which
TPE and CMA-ES need.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from ..config import Config, StrategyParams, build_config, read_json_object
from ..errors import ConfigError
from ..search import SEARCH_SPACE

INT_KEYS = ("trend_lookback", "vol_window", "gate_window_days")
SEARCHABLE = tuple(k for k in StrategyParams.model_fields if k != "bar_interval_minutes")
EXIT_FRAC = "flip_band_exit_frac"


@dataclass(frozen=True)
class Dim:
    """One searched parameter."""

    kind: str  # "int" | "float" | "choice" | "fixed"
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()
    value: Any = None
    step: float | None = None
    log: bool = False

    def describe(self) -> Any:
        if self.kind == "fixed":
            return self.value
        if self.kind == "choice":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


Space = dict[str, Dim]


def _dim_from_tuple(spec: tuple[Any, ...]) -> Dim:
    kind = spec[0]
    if kind in ("int", "float"):
        return Dim(kind, spec[1], spec[2])
    if kind == "choice":
        return Dim("choice", choices=tuple(spec[1]))
    return Dim("fixed", value=spec[1])


def default_space() -> Space:
    return {name: _dim_from_tuple(spec) for name, spec in SEARCH_SPACE.items()}


def _parse(name: str, spec: Any, where: str) -> Dim:
    is_int = name in INT_KEYS
    if isinstance(spec, list):
        if len(spec) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec):
            raise ConfigError(f"{where}: '{name}' as a list must be [low, high] numbers")
        spec = {"low": spec[0], "high": spec[1]}
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high", "step", "log", "choices"}
        if unknown:
            raise ConfigError(f"{where}: '{name}' has unknown field(s) {sorted(unknown)}; use low/high/step/log or choices")
        if "choices" in spec:
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ConfigError(f"{where}: '{name}'.choices must be a non-empty list")
            return Dim("choice", choices=tuple(spec["choices"]))
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: '{name}' needs both low and high")
        lo, hi = spec["low"], spec["high"]
        for v in (lo, hi):
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise ConfigError(f"{where}: '{name}' bounds must be numbers, got {v!r}")
        if lo > hi:
            raise ConfigError(f"{where}: '{name}' low ({lo}) is above high ({hi})")
        if is_int and (lo != int(lo) or hi != int(hi)):
            raise ConfigError(f"{where}: '{name}' counts bars/days and needs integer bounds")
        step = spec.get("step")
        if step is not None and (not isinstance(step, int | float) or step <= 0):
            raise ConfigError(f"{where}: '{name}'.step must be a positive number")
        log = bool(spec.get("log", False))
        if log and lo <= 0:
            raise ConfigError(f"{where}: '{name}' with log=true needs low > 0")
        kind = "int" if is_int else "float"
        return Dim(kind, int(lo) if is_int else float(lo), int(hi) if is_int else float(hi), step=step, log=log)
    return Dim("fixed", value=spec)


def load_space(path: str | Path | None) -> Space:
    """The default space, with the entries of ``path`` (JSON) merged over it."""
    space = default_space()
    if path is None:
        return space
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"search space file not found: {p}")
    for name, spec in read_json_object(p).items():  # the config file's reader: one-line errors
        if name not in SEARCHABLE:
            near = difflib.get_close_matches(name, SEARCHABLE, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; searchable: {', '.join(SEARCHABLE)}"
            raise ConfigError(f"{p}: unknown search parameter '{name}'{hint}")
        if spec is None:
            space.pop(name, None)
        else:
            space[name] = _parse(name, spec, str(p))
    return space


def validate(space: Space, base: Config, where: str = "search space") -> None:
    """Every bound must make a valid config on its own (SPEC R17); entry/exit must overlap."""
    flat = base.flat()
    safe = {"flip_band_entry": 1.0, "flip_band_exit": 0.0, "min_mult": 0.0, "max_mult": 1e9}
    for name, d in space.items():
        values = {"fixed": [d.value], "choice": list(d.choices)}.get(d.kind, [d.low, d.high])
        for v in values:
            trial = flat | {k: s for k, s in safe.items() if k != name} | {name: v}
            if name in ("min_mult", "max_mult"):
                trial = flat | {name: v, "max_mult" if name == "min_mult" else "min_mult": v}
            try:
                build_config(trial)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {name}={v!r} is not a valid value ({exc})") from None
    ent, ex = space.get("flip_band_entry"), space.get("flip_band_exit")
    if ent is not None and ex is not None and ex.kind in ("int", "float"):
        entry_low = ent.value if ent.kind == "fixed" else min(ent.choices) if ent.kind == "choice" else ent.low
        if ex.low > entry_low:
            raise ConfigError(f"{where}: flip_band_exit low ({ex.low}) must not exceed the lowest flip_band_entry ({entry_low})")


def focus(space: Space, center: Config, width: float) -> Space:
    """Narrow numeric ranges to ``center`` +- width/2 of each range; fix choices to ``center``."""
    s = center.strategy
    out: Space = {}
    for name, d in space.items():
        value = getattr(s, name)
        if d.kind == "choice":
            out[name] = Dim("fixed", value=value)
        elif d.kind in ("int", "float"):
            half = (d.high - d.low) * width / 2.0
            lo, hi = max(d.low, value - half), min(d.high, value + half)
            if lo > hi:  # the centre lies outside the range: keep the nearest edge
                lo = hi = d.low if value < d.low else d.high
            if d.kind == "int":
                lo, hi = int(round(lo)), int(round(hi))
            out[name] = replace(d, low=lo, high=hi)
        else:
            out[name] = d
    return out


def _suggest(trial: optuna.Trial, name: str, d: Dim) -> Any:
    if d.kind == "fixed":
        return d.value
    if d.kind == "choice":
        return trial.suggest_categorical(name, list(d.choices))
    if d.kind == "int":
        return trial.suggest_int(name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
    return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


def suggest(trial: optuna.Trial, space: Space, base: dict[str, Any]) -> dict[str, Any]:
    """Parameters of one trial (config keys and values); ``base`` supplies unsearched keys."""
    params: dict[str, Any] = {}
    for name, d in space.items():
        if name != "flip_band_exit":
            params[name] = _suggest(trial, name, d)
    ex = space.get("flip_band_exit")
    if ex is not None:
        if ex.kind in ("int", "float"):
            entry = params.get("flip_band_entry", base["flip_band_entry"])
            top = min(ex.high, entry)
            frac = trial.suggest_float(EXIT_FRAC, 0.0, 1.0)
            value = ex.low + frac * max(0.0, top - ex.low)
            if ex.step:
                value = min(top, ex.low + round((value - ex.low) / ex.step) * ex.step)
            params["flip_band_exit"] = float(value)
        else:
            params["flip_band_exit"] = _suggest(trial, "flip_band_exit", ex)
    return params


def describe(space: Space) -> dict[str, Any]:
    """The space as JSON-able data (same format a search-space file uses)."""
    return {name: d.describe() for name, d in space.items()}
