"""The edges of one bar's orders (issue 22, survivors of ``make mutation`` over
``ethbtc/live/orders.py``), against the paper exchange over real HTTP: after the ttl, the unfilled
rest goes MARKET exactly when taker_fallback is on (SPEC R32).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ethbtc.live.orders import bar_of
from ethbtc.sim import SimServer, SymbolRules
from tests.live.test_rule_edges_live import recording_engine
from tests.support.live_harness import fast_dir

_ = fast_dir
BAR = 1_614_556_800_000


@pytest.mark.parametrize("fallback", [True, False])
def test_r32_the_unfilled_rest_goes_market_only_with_taker_fallback(sim: SimServer, fast_dir: Path,
                                                                    fallback: bool) -> None:
    """SPEC R32: the LIMIT_MAKER is cancelled after ttl_sec; with taker_fallback the unfilled rest
    goes as MARKET (and fills), without it nothing more is sent and the rest stays unfilled."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=fallback, ttl_sec=0.001)  # gone before a fill
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    kinds = [s.type_ for s in acct.sent]
    assert kinds[0] == "LIMIT_MAKER"
    if fallback:
        assert kinds == ["LIMIT_MAKER", "MARKET"] and ex.qty_filled == Decimal("0.5") and ex.reason == "trade"
        assert acct.sent[1].client_id == f"eb-ETHBTC-{BAR}-BM0"
    else:
        assert kinds == ["LIMIT_MAKER"] and ex.qty_filled < Decimal("0.5")


def _book_at_send(engine: object, acct: object) -> list[tuple[Decimal, Decimal]]:
    """The real book at the moment each order is sent (noted by wrapping place_order)."""
    books: list[tuple[Decimal, Decimal]] = []
    send = acct.place_order  # type: ignore[attr-defined]

    def place(*args: object, **kw: object) -> object:
        books.append(engine.market.book())  # type: ignore[attr-defined]
        return send(*args, **kw)

    acct.place_order = place  # type: ignore[attr-defined]
    return books


def test_r32_a_market_buy_for_the_whole_balance_is_sized_at_the_ask(sim_factory: object, fast_dir: Path) -> None:
    """SPEC R32: the MARKET rest of a buy pays the ask, so its size is free BTC x 0.999 / ask,
    rounded down: sized at the lower bid it would spend more than the reserve leaves."""
    sim = sim_factory(balances={"BTC": "1", "ETH": "0", "BNB": "0"})  # type: ignore[operator]
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=True, ttl_sec=0.001)
    books = _book_at_send(engine, acct)
    engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("1000"), lambda cid: None)
    market = [(s, b) for s, b in zip(acct.sent, books, strict=True) if s.type_ == "MARKET"]
    assert len(market) == 1
    s, (bid, ask) = market[0]
    assert bid < ask
    limit = s.free["BTC"] * Decimal("0.999") / ask
    assert limit - engine.filters.step_size < s.qty <= limit


def test_r32_the_bars_order_size_is_its_first_orders_even_when_only_the_market_order_is_sent(
        sim: SimServer, fast_dir: Path) -> None:
    """SPEC R32: when the book runs away so that every post-only attempt would take (rejected by
    the exchange, three attempts), the rest goes MARKET and the bar's ordered quantity is that
    order's, not 0."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=True, ttl_sec=60.0)
    real_book = engine.runner.book

    def crossed() -> tuple[Decimal, Decimal]:  # a quote already behind the market: a buy there takes
        bid, ask = real_book()
        return ask + 10 * engine.filters.tick_size, ask + 11 * engine.filters.tick_size

    engine.runner.book = crossed
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    assert [s.type_ for s in acct.sent] == ["LIMIT_MAKER"] * 3 + ["MARKET"]
    assert sum("would take" in n for n in ex.notes) == 3
    assert ex.qty_ordered == acct.sent[-1].qty == Decimal("0.5") and ex.qty_filled == Decimal("0.5")


def test_r32_the_market_rest_is_rounded_to_the_market_lot_step(sim_factory: object, fast_dir: Path) -> None:
    """SPEC R32 (rounded to step size): a MARKET order follows MARKET_LOT_SIZE when the exchange
    lists one (here a step of 0.01 against the LOT_SIZE step 0.0001), a LIMIT_MAKER the LOT_SIZE."""
    rules = SymbolRules(market_step_size=Decimal("0.01"))
    sim = sim_factory(rules=rules)  # type: ignore[operator]
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=True, ttl_sec=0.001)
    assert engine.filters.market_step_size == Decimal("0.01") and engine.filters.step_size == Decimal("0.0001")
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5678"), lambda cid: None)
    maker, market = acct.sent[0], acct.sent[-1]
    assert maker.type_ == "LIMIT_MAKER" and maker.qty == Decimal("0.5678")
    rest = Decimal("0.5678") - (ex.qty_filled - market.qty)  # what the LIMIT_MAKER left unfilled
    assert market.type_ == "MARKET" and market.qty == (rest // Decimal("0.01")) * Decimal("0.01") > 0
    assert market.qty % Decimal("0.01") == 0 and rest - market.qty < Decimal("0.01")


def test_r32_the_order_hook_sees_the_cancelled_order_as_the_exchange_reports_it(sim: SimServer,
                                                                                fast_dir: Path) -> None:
    """SPEC R32 (cancelled after ttl_sec): the metrics hook gets the order's final state from the
    cancel reply (CANCELED, closed), flagged as cancelled after the ttl."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=False, ttl_sec=0.001)
    engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    ((info, kind, cancelled),) = acct.hooked_orders  # type: ignore[attr-defined]
    assert kind == "limit_maker" and cancelled and not info.is_open and info.status == "CANCELED"


def test_r31_a_twelve_character_symbol_is_kept_whole_in_the_client_id() -> None:
    """SPEC R31: ids carry the symbol; up to 12 characters it is kept whole, longer ones are cut
    to 8 plus a hash (Binance allows 36 characters)."""
    from ethbtc.live.orders import id_prefix

    assert id_prefix("ABCDEFGHIJKL") == "eb-ABCDEFGHIJKL-"
    long = id_prefix("ABCDEFGHIJKLM")
    assert long.startswith("eb-ABCDEFGH") and len(long) == len("eb-ABCDEFGHIJKL-")


def test_r32_a_filled_limit_order_is_reported_filled_not_cancelled(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R32: the resting order's status is polled until it fills; the hook sees it FILLED,
    not cancelled after the ttl."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=False, ttl_sec=3600.0)
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    ((info, kind, cancelled),) = acct.hooked_orders  # type: ignore[attr-defined]
    assert ex.qty_filled == Decimal("0.5") and kind == "limit_maker" and not cancelled and info.status == "FILLED"


def test_r32_a_dust_rest_after_a_partial_fill_leaves_the_bar_a_trade(sim_factory: object, fast_dir: Path) -> None:
    """SPEC R32 (partial fills accounted exactly): when the post-only order fills all but a rest
    below the exchange minimum, the rest is left alone as dust and the bar is still a trade."""
    sim = sim_factory(partial_fill=0.999)  # type: ignore[operator]
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=True, ttl_sec=3600.0)
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    assert Decimal(0) < ex.qty_filled < Decimal("0.5"), ex
    assert [s.type_ for s in acct.sent] == ["LIMIT_MAKER"] and ex.reason == "trade"
    assert any("dust" in n for n in ex.notes)


def test_r31_only_our_four_part_ids_name_a_bar() -> None:
    """SPEC R31: the bar is read back only from ids of our form ``eb-<SYMBOL>-<bar ms>-<tag>``;
    another bot's id of the same shape, or one of ours cut short, names no bar."""
    assert bar_of(f"eb-ETHBTC-{BAR}-BL0") == BAR
    assert bar_of(f"my-bot-{BAR}-BL0") is None  # four parts, not ours
    assert bar_of(f"eb-ETHBTC-{BAR}") is None  # ours in shape, but not a whole id
    assert bar_of("eb-ETHBTC-x-BL0") is None and bar_of("manual-order-1") is None


def test_r32_a_market_rest_exempt_from_the_minimum_notional_is_sent(sim_factory: object, fast_dir: Path) -> None:
    """SPEC R32 (the rest goes MARKET; the exchange's filters decide what is too small): when the
    NOTIONAL filter does not apply its minimum to MARKET orders (``applyMinToMarket`` false), a
    rest worth less than the minimum but above the minimum quantity is sent, not left as dust."""
    sim = sim_factory(partial_fill=0.999, rules=SymbolRules(apply_min_to_market=False))  # type: ignore[operator]
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=True, ttl_sec=3600.0)
    assert not engine.filters.apply_min_to_market
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    assert [s.type_ for s in acct.sent] == ["LIMIT_MAKER", "MARKET"]
    rest = acct.sent[1]
    assert rest.qty * engine.market.book()[1] < engine.filters.min_notional <= Decimal("0.5") * engine.market.book()[1]
    assert ex.qty_filled == Decimal("0.5") and ex.reason == "trade" and not any("dust" in n for n in ex.notes)


def test_r32_the_order_hook_gets_how_long_each_order_took(sim: SimServer, fast_dir: Path) -> None:
    """SPEC R32 (cancelled after ttl_sec): the metrics hook gets the seconds from an order's send
    to its final state: the ttl for a LIMIT_MAKER cancelled after it, 0 for a MARKET order that
    fills on arrival (on the engine's clock, whatever its origin)."""
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=True, ttl_sec=30.0)
    seen: list[tuple[str, float, bool]] = []
    engine.runner.on_order = lambda info, kind, secs, cancelled: seen.append((kind, secs, cancelled))
    engine.runner.book = lambda: (engine.market.book()[0] - 50 * engine.filters.tick_size,  # a bid nobody sells at
                                  engine.market.book()[1])
    engine.clock.t = 86_400.0  # a clock that has been running for a day
    engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    assert [(k, c) for k, _, c in seen] == [("limit_maker", True), ("market", False)]
    assert seen[0][1] == pytest.approx(30.0) and seen[1][1] == 0.0


@pytest.mark.parametrize(("partial", "filled", "note"), [
    (0.5, Decimal("0.25"), "0.25000000 unfilled after ttl (no taker fallback)"),
    (1.0, Decimal(0), None),
])
def test_r32_without_taker_fallback_the_rest_left_is_named_only_after_a_partial_fill(
        sim_factory: object, fast_dir: Path, partial: float, filled: Decimal, note: str | None) -> None:
    """SPEC R32 (no taker fallback: the unfilled rest stays unfilled): the execution notes (shown
    in the heartbeat line) name the rest a partly filled order left; an order that got nothing
    reads "filled 0" without that note."""
    sim = sim_factory(partial_fill=partial)  # type: ignore[operator]
    engine, acct = recording_engine(sim, fast_dir, taker_fallback=False, ttl_sec=60.0)
    if not filled:
        engine.runner.book = lambda: (engine.market.book()[0] - 50 * engine.filters.tick_size,
                                      engine.market.book()[1])  # a bid nobody sells at within the ttl
    ex = engine.runner.execute("ETHBTC", BAR, "BUY", Decimal("0.5"), lambda cid: None)
    assert [s.type_ for s in acct.sent] == ["LIMIT_MAKER"] and ex.qty_filled == filled
    assert ex.notes == ([note] if note else [])


def test_r31_a_stray_order_filling_during_start_has_its_fills_booked_at_that_start(
        sim: SimServer, fast_dir: Path) -> None:
    """SPEC R31 (the ledger copies every fill of our orders): a stray order of ours that is open
    when start() lists the account's orders but fills before it reads the open orders is no
    longer open to cancel; its fills must still be adopted at this start."""
    from tests.support.live_harness import active_config, make_engine

    make_engine(sim, active_config(), fast_dir).start()
    engine = make_engine(sim, active_config(), fast_dir)
    bid, _ = engine.market.book()
    cid = f"eb-ETHBTC-{BAR}-BL0"
    engine.market.place_order(cid, "BUY", "LIMIT_MAKER", Decimal("0.5"), bid)
    real = engine.market.open_orders

    def open_orders() -> list[object]:  # the market trades through the bid between the two reads
        for _ in range(50):
            info = engine.market.get_order(cid)
            if info is not None and not info.is_open:
                break
            sim.advance(0.1)
        return real()  # type: ignore[return-value]

    engine.market.open_orders = open_orders  # type: ignore[method-assign]
    engine.start()
    info = engine.market.get_order(cid)
    assert info is not None and info.status == "FILLED"
    rows = [r for r in engine.ledger.rows() if r["client_order_id"] == cid]
    assert sum((Decimal(r["qty"]) for r in rows), Decimal(0)) == info.executed_qty == Decimal("0.5")


def test_r31_a_restart_does_not_reread_the_trades_of_orders_already_in_the_ledger(sim: SimServer,
                                                                                   fast_dir: Path) -> None:
    """SPEC R31 (restart: fills of our orders missing from the ledger are adopted): only orders
    whose executed quantity the ledger lacks are asked for their trades. A restart after a
    session of trading re-reads none: every order's trades cost request weight (myTrades, 20),
    and the account's recent orders (up to 1000) would exceed the per-minute limit at start."""
    from tests.support.live_harness import active_config, drive, make_engine

    first = make_engine(sim, active_config(), fast_dir)
    first.start()
    drive(sim, first, 30)
    assert len({r["client_order_id"] for r in first.ledger.rows()}) >= 3, "the active config trades within 30 bars"
    again = make_engine(sim, active_config(), fast_dir)
    asked: list[str] = []
    real = again.account.order_fills

    def order_fills(info: object) -> list[object]:
        asked.append(info.client_id)  # type: ignore[attr-defined]
        return real(info)  # type: ignore[arg-type]

    again.account.order_fills = order_fills  # type: ignore[method-assign]
    again.start()
    assert asked == []
    # a fill the ledger lacks is still adopted (the check is not simply switched off)
    path = fast_dir / "trades_log.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    third = make_engine(sim, active_config(), fast_dir)
    third.start()
    assert len(third.ledger.rows()) == len(lines) - 1
