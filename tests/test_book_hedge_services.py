"""§6b through the application: `/check` evaluates a user's open positions as one book with the
layers recorded against the whole book, and the report round keeps every user's book apart
(book key = the user id), with the real engine on the offline sample (2026-07-08, BREACHED)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.marketdata.offline import OfflineProvider
from bot.parsing import HedgeSpec
from bot.scheduler.rounds import Scheduler
from bot.services import Services, UserRef
from bot.store import HedgeInput, Store
from core.models import HedgeKind

ANN = UserRef(811, 811, "Ann")
BOB = UserRef(812, 812, "Bob")
# the four condors of issue 14's session (the README's "Trying it")
CONDORS = ("SPXW 2026-08-21 6950/7000/7850/7900 x1 @22.50",
           "SPXW 2026-08-21 6700/6750/7700/7750 x2 @12.10",
           "SPXW 2026-07-17 7200/7250/7600/7650 x1 @18.40",
           "SPXW 2026-09-18 6900/6950/7750/7800 x3 @30.00")


@pytest.fixture
def env(make_database_url):
    offline = OfflineProvider()
    clock = lambda: offline.asof  # noqa: E731 - the sample's moment
    store = Store.open(make_database_url("book"), clock=clock)
    yield Services(store=store, provider=offline, clock=clock), store
    store.close()


async def test_check_shows_one_hedge_for_the_book(env):
    svc, store = env
    await svc.start(ANN)
    for c in CONDORS:
        await svc.add_position(ANN, c)
    res = await svc.check(ANN)
    bh = res.book_hedge
    assert bh is not None and bh.members
    assert sum(m.share for m in bh.members) == pytest.approx(1.0)
    ids = {p.id for p, _ in res.items()}
    assert set(bh.member_ids) <= ids
    for _, rec in res.items():
        # no position carries a purchase of its own
        assert rec.second_engine.recommendation is None or rec.second_engine.book_share is None
    # /check <id> judges the position within its whole book: same share, same book figures
    first = bh.members[0].position_id
    one = await svc.check(ANN, first)
    assert [p.id for p, _ in one.items()] == [first]
    assert one.book_hedge == bh
    assert one.items()[0][1].second_engine.book_share == pytest.approx(bh.members[0].share)

    # a layer recorded against the whole book counts toward the book's coverage
    rec = bh.recommendation
    assert rec is not None and rec.qty > 0
    store.add_hedge(ANN.user_id, None, HedgeInput(HedgeKind.VIX_CALL, rec.expiry, rec.qty,
                                                  round(rec.unit_cost, 2), strike=rec.strikes[0]))
    after = (await svc.check(ANN)).book_hedge
    assert after.layers_counted == 1
    assert after.coverage_held == pytest.approx(rec.coverage, rel=1e-6)
    assert after.recommendation is None or after.recommendation.qty == 0


async def test_a_layer_on_one_member_counts_for_the_book(env):
    svc, _ = env
    await svc.start(ANN)
    for c in CONDORS[:2]:
        await svc.add_position(ANN, c)
    bh = (await svc.check(ANN)).book_hedge
    rec = bh.recommendation
    member = bh.members[0].position_id
    await svc.hedge_add(ANN, member, HedgeSpec(kind=HedgeKind.VIX_CALL, qty=1, expiry=rec.expiry,
                                               cost=round(rec.unit_cost, 2),
                                               strike=rec.strikes[0]))
    after = (await svc.check(ANN)).book_hedge
    assert after.layers_counted == 1 and after.coverage_held > 0
    assert after.coverage_held == pytest.approx(rec.u / bh.vega_book, rel=1e-6)


async def test_the_report_round_keeps_each_users_book_apart(env):
    svc, store = env
    for u in (ANN, BOB):
        await svc.start(u)
        store.subscribe(u.user_id)
    for c in CONDORS[:2]:
        await svc.add_position(ANN, c)
    await svc.add_position(BOB, CONDORS[3])
    store.add_hedge(BOB.user_id, None, HedgeInput(HedgeKind.VIX_CALL, date(2026, 7, 22), 1,
                                                  0.8, strike=20.0))
    sched = Scheduler(None, svc, None)
    books = store.subscriber_books()
    per_user, _, calls = await sched.evaluate_books(books)
    assert calls == 1  # one evaluate for both users
    alone = {u.user_id: (await svc.check(u)).book_hedge for u in (ANN, BOB)}
    for uid in (ANN.user_id, BOB.user_id):
        got = per_user[uid].book_hedge
        assert got is not None and got.book == uid
        assert got.member_ids == alone[uid].member_ids
        assert got.recommendation == alone[uid].recommendation
        assert got.coverage_held == pytest.approx(alone[uid].coverage_held)
    assert per_user[BOB.user_id].book_hedge.layers_counted == 1
    assert per_user[ANN.user_id].book_hedge.layers_counted == 0
