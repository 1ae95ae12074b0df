"""/add's METHOD v2 extras at the services level, with the real engine on the offline sample
(2026-07-08): `opened` and `delta` reach the stored position and core's Position, and the
credit check warns (never refuses) beyond `Params.credit_check_frac` of today's mark."""

from __future__ import annotations

from datetime import date

import pytest

from bot.marketdata.offline import OfflineProvider
from bot.render import render
from bot.services import Services, UserError, UserRef
from bot.store import Store

ANN = UserRef(701, 701, "Ann")
CONDOR = "SPX 2026-08-21 6950/7000/7850/7900 x2"


@pytest.fixture
def svc(make_database_url):
    offline = OfflineProvider()
    clock = lambda: offline.asof  # noqa: E731 - the sample's moment
    store = Store.open(make_database_url("addv2"), clock=clock)
    yield Services(store=store, provider=offline, clock=clock)
    store.close()


async def test_opened_and_delta_are_stored_and_reach_core(svc):
    await svc.start(ANN)
    done = await svc.add_position(ANN, f"{CONDOR} @10.95 opened 2026-06-01 delta 0.16 Aug")
    (pos,) = await svc.list_positions(ANN)
    assert (pos.opened, pos.entry_delta, pos.label) == (date(2026, 6, 1), 0.16, "Aug")
    assert done.credit_check is None  # opened on an earlier day: its credit is from then
    html = render("add_done", preview=done)
    assert "entry Δ 0.16" in html and "opened 2026-06-01" in html
    # the engine sees the opened date: 2026-06-01 → 2026-08-21 is 81 days, TIME at
    # round(0.47 × 81) = 38 DTE, and 44 DTE remain on 2026-07-08, so no TIME flag yet; the
    # entry delta 0.16 sets Δ_W = max(0.25, 0.21) and Δ_T = max(0.30, 0.26)
    result = await svc.check(ANN)
    (_, rec), = result.items()
    assert rec.dte == 44
    assert "TIME" not in rec.roll.flags


async def test_opened_in_the_future_or_after_expiry_is_refused(svc):
    await svc.start(ANN)
    with pytest.raises(UserError, match="in the future"):
        await svc.add_position(ANN, f"{CONDOR} @10.95 opened 2026-07-09")
    with pytest.raises(UserError, match="after expiry"):
        await svc.add_position(ANN, f"{CONDOR} @10.95 opened 2026-08-24")
    assert await svc.list_positions(ANN) == []


async def test_credit_check_warns_beyond_30_percent_and_saves_anyway(svc):
    await svc.start(ANN)
    far = await svc.preview_position(ANN, f"{CONDOR} @30")
    cc = far.credit_check
    assert cc is not None and cc.entered == 30.0
    assert 0 < cc.fair < 50  # a 50-wide condor is worth between nothing and its width
    assert abs(30 - cc.fair) > 0.30 * cc.fair
    assert cc.source == "chain mid"  # the offline sample quotes the chain
    html = render("add_preview", preview=far)
    assert "Check the credit: the chain mid says" in html and "you entered 30.00" in html
    # the rule's edge, on the mark just read: 29 % away passes, 31 % warns (either side)
    fair = cc.fair
    for frac, warns in ((1.29, False), (1.31, True), (0.71, False), (0.69, True)):
        got = await svc.preview_position(ANN, f"{CONDOR} @{fair * frac:.4f}")
        assert (got.credit_check is not None) is warns, frac
    # a warning, not a refusal: the one-liner saves as entered
    saved = await svc.add_position(ANN, f"{CONDOR} @30")
    assert saved.credit_check is not None and saved.position.entry_credit == 30.0
    assert [p.entry_credit for p in await svc.list_positions(ANN)] == [30.0]


async def test_a_short_at_the_tested_level_at_entry_is_warned_with_the_delta_to_state(svc):
    """Δ_T = max(0.30, Δ_e + 0.10) (METHOD §8): a condor sold at ~30Δ with the default entry
    delta 0.20 reads TESTED at its first /check. /add says so, with the delta to state; given
    that delta, or a condor at the default delta, nothing is said."""
    await svc.start(ANN)
    near = "SPX 2026-08-21 7250/7300/7900/7950 x3 @20"
    warned = await svc.add_position(ANN, near)
    dc = warned.delta_check
    assert dc is not None and (dc.side, dc.strike) == ("put", 7300.0)
    assert dc.delta >= dc.tested_level == pytest.approx(0.30) and dc.entry_delta == 0.20
    # the engine agrees: the first /check calls it TESTED by that delta
    (_, rec), = (await svc.check(ANN, warned.position.id)).items()
    assert "TESTED" in rec.roll.flags
    assert "7300 is at 0.30 delta, at or past the tested level 0.30" in rec.roll.reason
    assert abs(rec.shorts.put.delta) == pytest.approx(dc.delta)
    html = render("add_done", preview=warned)
    assert (f"The short put 7300 is at Δ {dc.delta:.2f}, at or past the tested level 0.30" in html)
    assert f"with <code>delta {dc.suggested:.2f}</code>" in html
    # stating that delta lifts Δ_T to 0.40, above the short: no warning, and the delta no
    # longer tests it (its wing pressure may still: WPR is another matter)
    stated = await svc.add_position(ANN, f"{near} delta {dc.suggested:.2f}")
    assert stated.delta_check is None
    (_, rec), = (await svc.check(ANN, stated.position.id)).items()
    assert "at or past the tested level" not in rec.roll.reason
    # a condor at the default delta is not warned
    assert (await svc.preview_position(ANN, f"{CONDOR} @10.95")).delta_check is None


async def test_the_same_condor_sent_twice_is_saved_and_named(svc):
    """A double send (two taps, a resent message) saved a second position without a word.
    A second lot is a real trade too, so it is saved, and the reply names the twin."""
    await svc.start(ANN)
    first = await svc.add_position(ANN, f"{CONDOR} @10.95")
    assert first.same_as == ()
    second = await svc.add_position(ANN, f"{CONDOR} @10.95")
    third = await svc.add_position(ANN, f"{CONDOR} @10.95")
    assert second.same_as == (first.position.id,)
    assert third.same_as == (first.position.id, second.position.id)
    html = render("add_done", preview=third)
    assert (f"You already hold the same condor (#{first.position.id}, #{second.position.id})"
            in html)
    assert f"<code>/close {third.position.id}</code>" in html
    # another credit, quantity or opened date is another trade: nothing said
    assert (await svc.add_position(ANN, f"{CONDOR} @11")).same_as == ()
    assert (await svc.add_position(ANN, "SPX 2026-08-21 6950/7000/7850/7900 x3 @10.95")
            ).same_as == ()
    assert len(await svc.list_positions(ANN)) == 5
