"""The one configuration schema and loader (SPEC section 6), used by every script.

Accepted shapes: flat (every key at top level) or nested in ``strategy`` / ``execution`` /
``risk`` / ``fees`` sections (``params`` is read as ``strategy``), or a mix. ``//`` comments
and a UTF-8 BOM are accepted. A top-level ``meta`` object (provenance written by the
optimiser and picker) is carried along but never interpreted. Unknown keys are errors naming
the nearest valid key; ranges follow SPEC R17. CLI flags override file values.
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .data.timeframes import interval_minutes
from .errors import ConfigError, UserError

Fee = Field(ge=0.0, le=0.01)
MAX_BARS = 1_000_000  # lookback/window cap: larger values are typos, and overflow the kernel's C integers


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StrategyParams(_Section):
    trend_kind: Literal["sma", "roc"] = Field("sma", description="trend measure (R6)")
    trend_lookback: int = Field(192, ge=1, le=MAX_BARS, description="bars in the trend window (R6)")
    flip_band_entry: float = Field(0.03, ge=0, description="ratio below trend that makes ETH cheap (R8)")
    flip_band_exit: float = Field(0.01, ge=0, description="ratio below trend where ETH is sold (R8)")
    vol_window: int = Field(96, ge=2, le=MAX_BARS, description="returns in the realised-volatility window (R7)")
    vol_adapt_k: float = Field(0.0, ge=0, description="band widening per unit of annualised vol (R8)")
    target_vol: float = Field(0.0, ge=0, description="annualised vol target; 0 = multiplier 1 (R10)")
    min_mult: float = Field(0.5, ge=0, description="lower clip of the vol multiplier (R10)")
    max_mult: float = Field(1.5, ge=0, description="upper clip of the vol multiplier (R10)")
    cooldown_minutes: float = Field(240.0, ge=0, description="minimum minutes between flips (R14)")
    step_allocation: float = Field(1.0, gt=0, le=1, description="share of the gap to target per bar; snaps to the target when the step or the rest is inside the dead band (R19 v2)")
    max_position: float = Field(1.0, gt=0, le=1, description="cap on the ETH weight (R16)")
    gate_window_days: int = Field(0, ge=0, le=36_500, description="daily ROC window of the regime gate; 0 = off (R9)")
    gate_roc_threshold: float = Field(0.0, ge=0, description="|daily ROC| needed to open the gate (R9)")
    rebalance_threshold_w: float = Field(0.0, ge=0, le=1, description="dead band on the weight (R20); also the R19 snap distance")
    bar_interval_minutes: int | None = Field(None, ge=1, le=525_600, description="bar length; checked against data (R5)")

    @model_validator(mode="after")
    def _check(self) -> StrategyParams:
        if self.flip_band_entry < self.flip_band_exit:
            raise ValueError(
                f"flip_band_entry ({self.flip_band_entry}) must be >= flip_band_exit ({self.flip_band_exit})"
            )
        if self.min_mult > self.max_mult:
            raise ValueError(f"min_mult ({self.min_mult}) must be <= max_mult ({self.max_mult})")
        return self


class FeeParams(_Section):
    maker_fee: float = Field(0.001, ge=0.0, le=0.01, description="maker fee rate: resting post-only fills (next_open: sells) (R22)")
    taker_fee: float = Field(0.001, ge=0.0, le=0.01, description="taker fee rate: the fallback MARKET fills (next_open: buys) (R22)")
    slippage_bps: float = Field(1.0, ge=0.0, le=500.0, description="slippage of taker fills in bps (next_open: every fill; intrabar: the fallback with "
                                                                        "book_depth false) (R22)")
    bnb_discount: float = Field(0.25, ge=0.0, lt=1.0, description="fee discount when paying in BNB (R23)")
    pay_fees_in_bnb: bool = Field(False, description="pay fees in BNB at the discount; with start_bnb 0 the BNB wallet is assumed kept funded (R23 v2)")
    start_bnb: float = Field(0.0, ge=0.0, description="finite BNB fee wallet at start (backtest; > 0 needs BNBBTC prices, runs dry to the full rate; R23)")

    def rates_without_bnb_series(self) -> tuple[float, float]:
        """(maker, taker) as the backtest charges them when no BNBBTC series is given (R23: the
        discounted rate whenever fees are paid in BNB)."""
        disc = 1.0 - self.bnb_discount if self.pay_fees_in_bnb else 1.0
        return self.maker_fee * disc, self.taker_fee * disc


class ExecutionParams(_Section):
    interval: str | None = Field(None, description="Binance bar interval, e.g. '15m' (R5)")
    poll_sec: float = Field(15.0, gt=0, le=3600, description="live loop poll period, seconds")
    ttl_sec: float = Field(60.0, gt=0, le=86400, description="cancel a resting maker order after this, seconds (R32; intrabar backtest fills too, at most a bar)")
    taker_fallback: bool = Field(False, description="after ttl, send the unfilled rest as MARKET (R32)")
    fill_model: Literal["intrabar", "next_open"] = Field(
        "intrabar", description="backtest fills: intrabar = as the executor trades on the paper exchange's "
                                "intrabar path; next_open = all at the next open (R22)")
    spread_bps: float = Field(0.0, ge=0, le=1000, description="intrabar fills: book spread around the path price; "
                                                               "0 = one tick (the paper exchange's default, R22)")
    tick_size: float = Field(0.00001, gt=0, le=1, description="intrabar fills: price tick of the book (the paper "
                                                               "exchange's default, R22)")
    fill_on_touch: bool = Field(False, description="intrabar fills: a resting order fills when the path only "
                                                   "touches its price (paper exchange --fill-on-touch, R22)")
    volume_fills: bool = Field(False, description="intrabar fills: a resting order fills at most the volume traded "
                                                  "through its price within ttl (the volume rule, R22; paper "
                                                  "exchange --volume-fills on)")
    partial_fill: float = Field(1.0, gt=0, le=1, description="intrabar fills: share of a resting order that can "
                                                             "fill per bar, at least one lot (paper exchange "
                                                             "--partial-fill, R22)")
    step_size: float = Field(0.0001, gt=0, le=1, description="intrabar fills: lot step of the partial-fill and "
                                                             "book quantities (the paper exchange's default, R22)")
    book_depth: bool = Field(True, description="intrabar fills: the taker fallback walks the paper exchange's depth "
                                               "book (its default); false = whole at the touch +- slippage "
                                               "(--ideal-fills, R22)")
    book_top_share: float = Field(0.02, gt=0, le=1, description="depth book: quantity at the touch as a share of "
                                                                "the last complete bar's volume (--book-top-share)")
    book_growth: float = Field(0.5, ge=0, le=100, description="depth book: level k holds (1 + growth*k) times the "
                                                              "touch (--book-growth)")
    book_min_top_qty: float = Field(0.5, ge=0, description="depth book: least quantity at the touch, base units "
                                                           "(--book-min-top-qty)")
    book_levels: int = Field(100, ge=1, le=5000, description="depth book: price levels per side (--book-levels)")
    min_trade_btc: float | None = Field(None, ge=0, description="fixed minimum trade in BTC; null = derive (R21)")
    min_trade_frac: float = Field(0.002, ge=0, le=1, description="minimum trade as a share of basis_btc (R21)")
    min_trade_floor_btc: float = Field(0.0001, ge=0, description="floor of the derived minimum (R21)")
    min_trade_cap_btc: float = Field(0.01, ge=0, description="cap of the derived minimum (R21)")

    @model_validator(mode="after")
    def _check(self) -> ExecutionParams:
        if self.interval is not None:
            try:
                interval_minutes(self.interval)
            except UserError as exc:
                raise ValueError(str(exc)) from None
        if self.min_trade_floor_btc > self.min_trade_cap_btc:
            raise ValueError("min_trade_floor_btc must be <= min_trade_cap_btc")
        return self


class RiskParams(_Section):
    basis_btc: float = Field(1.0, gt=0, description="account size in BTC the strategy is sized on")
    risk_mode: Literal["dynamic", "fixed_basis"] = Field("dynamic", description="risk limits relative to peak/day start or to basis_btc")
    max_dd_frac: float = Field(0.0, ge=0, le=1, description="drawdown breaker; 0 = off (R24)")
    max_daily_loss_frac: float = Field(0.0, ge=0, le=1, description="daily loss pause; 0 = off (R25)")


SECTIONS: dict[str, type[_Section]] = {
    "strategy": StrategyParams,
    "fees": FeeParams,
    "execution": ExecutionParams,
    "risk": RiskParams,
}
KEY_SECTION: dict[str, str] = {key: name for name, model in SECTIONS.items() for key in model.model_fields}
ALL_KEYS = sorted(KEY_SECTION)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: StrategyParams = StrategyParams()
    fees: FeeParams = FeeParams()
    execution: ExecutionParams = ExecutionParams()
    risk: RiskParams = RiskParams()
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_interval(self) -> Config:
        a, b = self.strategy.bar_interval_minutes, self.execution.interval
        if a is not None and b is not None and interval_minutes(b) != a:
            raise ValueError(f"execution.interval {b!r} disagrees with bar_interval_minutes {a}")
        return self

    def bar_minutes(self) -> int | None:
        """The configured bar length in minutes, or None when the config does not say."""
        if self.strategy.bar_interval_minutes is not None:
            return self.strategy.bar_interval_minutes
        return interval_minutes(self.execution.interval) if self.execution.interval else None

    def min_trade_btc(self) -> float:
        """SPEC R21: min_trade_btc when set, else clip(frac * basis, floor, cap)."""
        ex = self.execution
        if ex.min_trade_btc is not None:
            return ex.min_trade_btc
        raw = ex.min_trade_frac * self.risk.basis_btc
        return min(max(raw, ex.min_trade_floor_btc), ex.min_trade_cap_btc)

    def flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SECTIONS:
            out.update(getattr(self, name).model_dump())
        return out

    def to_json(self) -> str:
        """Nested JSON that :func:`load_config` reads back to an equal Config."""
        data: dict[str, Any] = {name: getattr(self, name).model_dump() for name in SECTIONS}
        if self.meta:
            data["meta"] = self.meta
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        return build_config(self.flat() | {"meta": self.meta}, overrides)


def strip_json_comments(text: str) -> str:
    """Remove ``//`` line comments outside JSON strings (URLs inside strings survive)."""
    out: list[str] = []
    i, n, in_str = 0, len(text), False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            out.append(ch)
        elif ch == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _nearest(key: str) -> str:
    match = difflib.get_close_matches(key, ALL_KEYS + list(SECTIONS) + ["params", "meta"], n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; valid keys: {', '.join(ALL_KEYS)}"


def _flatten(raw: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    flat: dict[str, Any] = {}
    meta: dict[str, Any] = {}

    def put(key: str, value: Any, where: str) -> None:
        if key in flat:
            raise ConfigError(f"{source}: key '{key}' is given twice (again in {where})")
        flat[key] = value

    for key, value in raw.items():
        if key == "meta":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: 'meta' must be an object")
            meta = value
        elif key in SECTIONS or key == "params":
            section = "strategy" if key == "params" else key
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section '{key}' must be an object, got {type(value).__name__}")
            for sub, subval in value.items():
                home = KEY_SECTION.get(sub)
                if home is None:
                    raise ConfigError(f"{source}: unknown key '{_short(key)}.{_short(sub)}'{_nearest(sub)}")
                if home != section:
                    raise ConfigError(f"{source}: key '{key}.{sub}' belongs in section '{home}'")
                put(sub, subval, f"section '{key}'")
        elif key in KEY_SECTION:
            put(key, value, "top level")
        else:
            raise ConfigError(f"{source}: unknown key '{_short(key)}'{_nearest(key)}")
    return flat, meta


def build_config(data: dict[str, Any], overrides: dict[str, Any] | None = None, source: str = "config",
                 strict: bool = False) -> Config:
    """Validate a parsed (flat or nested) mapping, apply overrides, return a Config.

    ``strict`` (used for JSON files) refuses values of the wrong JSON type instead of coercing
    them: ``"trend_lookback": true`` or ``"pay_fees_in_bnb": "yes"`` are errors, not 1 and True.
    """
    flat, meta = _flatten(data, source)
    for key, value in (overrides or {}).items():
        if key not in KEY_SECTION:
            raise ConfigError(f"override: unknown key '{key}'{_nearest(key)}")
        if value is not None:
            flat[key] = value
    for key, value in flat.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{source}: {KEY_SECTION[key]}.{key} must be a finite number, got {value}")
    nested: dict[str, Any] = {name: {} for name in SECTIONS}
    for key, value in flat.items():
        nested[KEY_SECTION[key]][key] = value
    try:
        return Config.model_validate(nested | {"meta": meta}, strict=strict)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {_short(repr(got))})"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}: {loc or 'config'}: {msg}{got_txt}") from None


def _short(text: str, limit: int = 60) -> str:
    """User text for a one-line message: control characters escaped, long text cut."""
    text = json.dumps(text, ensure_ascii=False)[1:-1] if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a JSON config file (or defaults when ``path`` is None) and apply CLI overrides."""
    if path is None:
        return build_config({}, overrides)
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p} is a folder, expected a JSON config file")
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    return build_config(read_json_object(p), overrides, source=str(p), strict=True)


def read_json_object(p: Path) -> dict[str, Any]:
    """A JSON object file (UTF-8, optional BOM, ``//`` comments), every failure a one-line ConfigError."""
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    return parse_json_object(strip_json_comments(text), str(p))


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"key '{_short(key)}' is given twice in one object")
        out[key] = value
    return out


def parse_json_object(text: str, source: str) -> dict[str, Any]:
    """JSON text -> dict, every failure a one-line ConfigError (bad syntax, duplicate keys,
    absurd nesting or numbers; json.loads would otherwise raise RecursionError/ValueError)."""
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal with more than 4300 digits
        raise ConfigError(f"{source}: invalid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a JSON object, got {type(data).__name__}")
    return data


def reference_markdown() -> str:
    """The configuration reference table (docs/configuration.md), generated from the schema so it cannot drift."""
    readers = {"strategy": "backtest, optimisers, live", "fees": "backtest, optimisers (live: real fees)",
               "execution": "live; backtest, optimisers: min trade, fill model (ttl_sec, taker_fallback, fill_model ...)", "risk": "backtest, optimisers, live"}
    lines = ["| key | section | default | allowed | meaning | read by |", "|---|---|---|---|---|---|"]
    for section, model in SECTIONS.items():
        for key, f in model.model_fields.items():
            allowed = []
            for m in f.metadata:
                for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    if getattr(m, attr, None) is not None:
                        allowed.append(f"{sym} {getattr(m, attr)}")
            ann = str(f.annotation).replace("typing.", "")
            if "Literal" in ann:
                allowed.append(ann[ann.index("[") + 1 : ann.rindex("]")].replace("'", ""))
            default = "null" if f.default is None else json.dumps(f.default)
            lines.append(f"| `{key}` | {section} | `{default}` | {', '.join(allowed) or '-'} | "
                         f"{f.description or ''} | {readers[section]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
