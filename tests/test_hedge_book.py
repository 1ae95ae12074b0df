"""`/hedge book`: VIX layers recorded against the whole book (METHOD §6b) — the parser (`book`
where the id goes), the store on a real database file (listed, counted, removed, never seen by
another user), and the advice that follows itself: the four-condor session's book hedge says
the command that records its purchase, and once it is recorded the book has nothing more to buy.
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import parsing as P
from bot.marketdata.offline import OfflineProvider
from bot.parsing import HedgeSpec, ParseError, format_hedge, parse_hedge
from bot.render import render
from bot.services import Services, UserError, UserRef
from bot.store import NotFound, Store
from bot.telegram.botapi_server import html_to_text
from core.models import HedgeKind, Layer

FOUR_CONDORS = (
    "SPXW 2026-08-21 6950/7000/7850/7900 x1 @22.50",
    "SPXW 2026-08-21 6700/6750/7700/7750 x2 @12.10",
    "SPXW 2026-07-17 7200/7250/7600/7650 x1 @18.40",
    "SPXW 2026-09-18 6900/6950/7750/7800 x3 @30.00",
)
ANN = UserRef(1402, 1402, "Ann")
BOB = UserRef(1403, 1403, "Bob")


# --- parser ------------------------------------------------------------------------------------


def test_book_takes_the_place_of_the_id():
    assert parse_hedge("book") == P.HedgeCommand(None, "list")
    add = parse_hedge("Book add 1 VIX 2026-07-22 20/25C @0.50 L3")
    assert (add.position_id, add.action) == (None, "add")
    assert add.spec == HedgeSpec(HedgeKind.VIX_CALL_SPREAD, 1, date(2026, 7, 22), 0.5, 20.0, 25.0,
                                 Layer.L3)
    assert parse_hedge("BOOK add 2 VX 2026-07-22 @18.50").spec.kind is HedgeKind.VIX_FUTURE
    rm = parse_hedge("book remove 1 @0.70")
    assert (rm.position_id, rm.index, rm.price) == (None, 1, 0.7)
    # the same errors as /hedge <id> …
    for text, fragment in (("book buy 1 VIX 2026-07-22 20C @1", "unknown hedge action"),
                           ("book add 1 VIX 2026-07-22 20P @1", "must end in C"),
                           ("book remove", "remove needs the hedge number"),
                           ("books", "position id 'books'")):
        with pytest.raises(ParseError, match=fragment):
            parse_hedge(text)


def _spec(kind, qty, expiry, k, width, cost, layer) -> HedgeSpec:
    if kind is HedgeKind.VIX_FUTURE:
        return HedgeSpec(kind, qty, expiry, cost, layer=layer)
    if kind is HedgeKind.VIX_CALL_SPREAD:
        return HedgeSpec(kind, qty, expiry, cost, k, k + width, layer)
    return HedgeSpec(kind, qty, expiry, cost, k, layer=layer)


_specs = st.builds(
    _spec,
    st.sampled_from(list(HedgeKind)), st.integers(1, 1000),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.decimals(min_value="1", max_value="200", places=1).map(float),
    st.decimals(min_value="0.5", max_value="50", places=1).map(float),
    st.decimals(min_value="0.05", max_value="99999", places=2).map(float),
    st.sampled_from(list(Layer)))
# "book" in any case: every upper/lower mix of its four letters
_book_word = st.tuples(*[st.sampled_from([c, c.upper()]) for c in "book"]).map("".join)


@settings(max_examples=150, deadline=None)
@given(spec=_specs, word=_book_word)
def test_book_add_round_trip(spec, word):
    cmd = parse_hedge(f"{word} add {format_hedge(spec)}")
    assert cmd.position_id is None and cmd.action == "add" and cmd.spec == spec


_book_garbage = st.lists(st.sampled_from(
    ["add", "remove", "VIX", "VX", "20C", "20/25C", "25/20C", "@0.50", "@", "@-1", "@nan", "1",
     "0", "#1", "L1", "L4", "2026-07-22", "22Jul26", "1e9", "book", "💥", "\x00", "<b>"]),
    max_size=7).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(word=_book_word, rest=_book_garbage | st.text(max_size=300))
def test_book_garbage_only_raises_parse_error(word, rest):
    try:
        cmd = parse_hedge(f"{word} {rest}")
    except ParseError as e:
        assert e.message and isinstance(e.usage, str)
        return
    assert cmd.position_id is None and cmd.action in ("list", "add", "remove")


# --- store and services on a real database file ------------------------------------------------


def services(url: str) -> tuple[Services, Store]:
    offline = OfflineProvider()
    clock = lambda: offline.asof  # noqa: E731 - the sample's moment, as the console runs
    store = Store.open(url, clock=clock)
    return Services(store=store, provider=offline, clock=clock), store


def shown(html: str) -> str:
    return html_to_text(html)


def test_book_layer_listed_counted_removed_and_private(database_url):
    svc, store = services(database_url)

    async def run() -> None:
        for condor in FOUR_CONDORS:
            await svc.add_position(ANN, condor)
        await svc.add_position(BOB, FOUR_CONDORS[0])
        before = await svc.check(ANN)
        assert before.totals.coverage == pytest.approx(0.0)

        spec = parse_hedge("book add 1 VIX 2026-07-22 20C @0.50").spec
        owner, layer = await svc.hedge_add(ANN, None, spec)
        assert owner is None and layer.strike == 20.0 and layer.cost == pytest.approx(0.5)
        # stored with no position, for Ann only
        (row,) = store.list_hedges(ANN.user_id, book_only=True)
        assert row.position_id is None and row.status == "open"
        assert store.list_hedges(BOB.user_id, book_only=True) == []
        assert (await svc.hedge_list(BOB, None)) == (None, [])
        assert store.book_hedges(BOB.user_id) == ()
        # not attached to any position
        assert all(not p.hedges for p in await svc.list_positions(ANN))

        after = await svc.check(ANN)
        assert after.book_hedge.layers_counted == 1
        assert after.totals.coverage > 0  # the book layer's vega counts in the totals
        assert after.book_hedge.coverage_held > before.book_hedge.coverage_held
        bob = await svc.check(BOB)
        assert bob.totals.coverage == pytest.approx(0.0)
        assert bob.book_hedge.layers_counted == 0

        # Bob can neither close Ann's layer by its number nor by its row id
        with pytest.raises(UserError, match="your book has no hedges; there is no hedge 1"):
            await svc.hedge_remove(BOB, None, 1)
        with pytest.raises(NotFound):
            store.close_hedge(BOB.user_id, row.id)
        with pytest.raises(UserError, match="more than a VIX option or future can be worth"):
            await svc.hedge_remove(ANN, None, 1, 900.0)

        _, removed, realised = await svc.hedge_remove(ANN, None, 1, 0.70)
        assert realised == pytest.approx((0.70 - 0.50) * 100)
        assert removed.id == row.id
        assert (await svc.hedge_list(ANN, None)) == (None, [])
        (closed,) = store.list_hedges(ANN.user_id, book_only=True, status="closed")
        assert float(closed.realised_pnl) == pytest.approx((0.70 - 0.50) * 100)
        assert (await svc.check(ANN)).totals.coverage == pytest.approx(0.0)

    try:
        asyncio.run(run())
    finally:
        store.close()


def test_book_add_is_validated_like_a_position_hedge(database_url):
    svc, store = services(database_url)

    async def run() -> None:
        await svc.add_position(ANN, FOUR_CONDORS[0])
        for text, fragment in (("book add 1 VIX 2026-07-23 20C @0.50", "not a listed VIX expiry"),
                               ("book add 1 VIX 2026-07-01 20C @0.50", "in the past"),
                               ("book add 1 VIX 2026-07-22 20/25C @6", "spread is 5 wide")):
            with pytest.raises(UserError, match=fragment):
                await svc.hedge_add(ANN, None, parse_hedge(text).spec)
        assert (await svc.hedge_list(ANN, None)) == (None, [])

    try:
        asyncio.run(run())
    finally:
        store.close()


def test_the_shown_command_records_the_book_hedge_and_it_is_not_asked_again(database_url):
    """The four-condor session: /check shows the book's purchase and the command that records
    it; running that command at the price paid, /check reads nothing more to buy (or held layers
    are enough) for the book, with coverage up, and never asks to buy the same calls again."""
    svc, store = services(database_url)

    async def run() -> None:
        for condor in FOUR_CONDORS:
            await svc.add_position(ANN, condor)
        first = await svc.check(ANN)
        rec = first.book_hedge.recommendation
        assert rec is not None and rec.qty > 0
        text = shown(render("check", result=first))
        buy = next(line for line in text.splitlines() if line.startswith("VIX hedge for the book"))
        assert "buy 1 VIX 2026-07-22 20C" in buy
        # the line a trader acts on points at the purchase (#1 is the one it covers)
        hints = [line.split(" ")[0] for line in text.splitlines()
                 if line.endswith("; buy the VIX hedge below")]
        assert hints == ["#1"]
        prefix = "After you buy: /hedge "
        (after,) = [line for line in text.splitlines() if line.startswith(prefix)]
        assert after.endswith(" @<cost>")
        command = after[len(prefix):].replace("@<cost>", "@0.50")
        cmd = parse_hedge(command)
        assert cmd.position_id is None and cmd.action == "add"
        assert (cmd.spec.qty, cmd.spec.expiry, cmd.spec.strike) == (rec.qty, rec.expiry,
                                                                    rec.strikes[0])
        await svc.hedge_add(ANN, cmd.position_id, cmd.spec)

        second = await svc.check(ANN)
        bh = second.book_hedge
        assert bh.coverage_held > first.book_hedge.coverage_held
        assert second.totals.coverage > first.totals.coverage
        assert bh.recommendation is None or bh.recommendation.qty == 0
        again = shown(render("check", result=second))
        assert ("nothing more to buy" in again) or ("held layers are enough" in again)
        assert "After you buy" not in again and "buy 1 VIX" not in again
        assert "buy the VIX hedge below" not in again
        for _, r in second.items():
            assert r.roll.outcome.value != "HEDGE_FIRST"
        report = shown(render("report", result=await svc.report(ANN)))
        assert "After you buy" not in report and "buy 1 VIX" not in report

    try:
        asyncio.run(run())
    finally:
        store.close()


def test_the_hedge_list_shows_each_layer_at_the_model_mark_and_survives_no_data(database_url):
    svc, store = services(database_url)

    async def run() -> None:
        await svc.add_position(ANN, FOUR_CONDORS[0])
        await svc.hedge_add(ANN, None, parse_hedge("book add 4 VIX 2026-07-22 20C @0.52").spec)
        await svc.hedge_add(ANN, None, parse_hedge("book add 1 VX 2026-08-19 @18.50").spec)
        view = await svc.hedge_view(ANN, None)
        text = shown(render("hedge_list", view=view, action=None, changed=None))
        lines = text.splitlines()
        # 4 calls at ~0.50 against 0.52 paid; the VX future at its quoted 19.51 against 18.50
        call, fut = view.marks
        assert lines[1] == (f"1. 4 VIX 2026-07-22 20C @ 0.52 pts (L2) · now ~{call.mark:.2f} "
                            f"pts, −${abs(call.pnl_usd):,.0f}")
        assert call.pnl_usd == pytest.approx(400 * (call.mark - 0.52))
        assert lines[2].startswith("2. 1 VX future 2026-08-19 @ 18.50 pts (L2) · now ~")
        assert fut.pnl_usd == pytest.approx(1000 * (fut.mark - 18.50))
        assert "data as of 2026-07-08 16:00 ET (offline sample)" in text  # the SPX close
        # the book's totals carry the same P&L
        totals = (await svc.check(ANN)).totals
        assert totals.hedge_pnl_usd == pytest.approx(call.pnl_usd + fut.pnl_usd)

        # no market data: the layers are still listed, without marks, and nothing is lost
        async def dead(asof):
            from bot.marketdata.errors import MarketDataError
            raise MarketDataError("cboe _SPX", "http", "503 Service Unavailable")

        svc.provider.snapshot = dead
        svc._market = None
        view = await svc.hedge_view(ANN, None)
        assert view.marks == [None, None] and view.data_asof is None
        text = shown(render("hedge_list", view=view, action=None, changed=None))
        assert "1. 4 VIX 2026-07-22 20C @ 0.52 pts (L2)\n2. 1 VX future" in text
        assert "now ~" not in text and "data as of" not in text

    try:
        asyncio.run(run())
    finally:
        store.close()
