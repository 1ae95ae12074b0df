"""Invariant I3 (METHOD §8) end to end at the services level, with the real engine on the
offline sample (2026-07-08): a CLEARED proposal, recorded through the service `/roll <id> done`
uses, leaves a condor that the same snapshot calls neither TESTED nor due another roll. The
recorded roll carries the proposal's legs and expiry, opened = the roll date, C0 unchanged and
ΣR += R. The sample has no CLEARED case as entered: this tested condor first gets HEDGE_FIRST,
and following the bot's own hedge advice clears it (the advice never ends in a contradiction)."""

from __future__ import annotations

from datetime import date

import pytest

from bot import parsing
from bot.marketdata.offline import OfflineProvider
from bot.parsing import HedgeSpec
from bot.services import Services, UserRef
from bot.store import Store
from core.models import HedgeKind
from core.records import RollOutcome

ANN = UserRef(801, 801, "Ann")
# shorts 40 points below spot (7,482.71) and 300 above, 16 DTE, opened mid-life
TESTED_CONDOR = "SPXW 2026-07-24 7390/7440/7780/7830 @16.67 opened 2026-06-01"


@pytest.fixture
def svc(make_database_url):
    offline = OfflineProvider()
    clock = lambda: offline.asof  # noqa: E731 - the sample's moment
    store = Store.open(make_database_url("i3"), clock=clock)
    yield Services(store=store, provider=offline, clock=clock)
    store.close()


async def _one(svc):
    (item,) = (await svc.check(ANN)).items()
    return item


async def test_i3_recorded_roll_is_not_tested_and_not_rolled_again(svc):
    await svc.start(ANN)
    await svc.add_position(ANN, TESTED_CONDOR)
    pos, rec = await _one(svc)
    assert rec.wpr.level.value == "TESTED"
    if rec.roll.outcome is RollOutcome.HEDGE_FIRST:  # follow the bot's own hedge advice
        # §6b: the one recommendation is the book's (a book of one here)
        assert rec.second_engine.recommendation is None
        adv = (await svc.check(ANN)).book_hedge.recommendation
        assert adv is not None and adv.qty > 0
        spread = len(adv.strikes) == 2
        await svc.hedge_add(ANN, pos.id, HedgeSpec(
            kind=HedgeKind.VIX_CALL_SPREAD if spread else HedgeKind.VIX_CALL, qty=int(adv.qty),
            expiry=adv.expiry, cost=round(float(adv.unit_cost), 2),
            strike=float(adv.strikes[0]), strike2=float(adv.strikes[1]) if spread else None))
        pos, rec = await _one(svc)
    assert rec.roll.outcome is RollOutcome.CLEARED, (rec.roll.rule, rec.roll.reason)
    prop = rec.roll.proposal
    assert prop is not None

    net = round(float(prop.r), 2)  # what a trader types: points to the cent
    old, new = await svc.record_roll(ANN, parsing.RollCommand(
        pos.id, True, prop.expiry, tuple(float(k) for k in prop.strikes), net))
    assert (new.expiry, (new.k1, new.k2, new.k3, new.k4)) == (
        prop.expiry, tuple(float(k) for k in prop.strikes))
    assert new.opened == date(2026, 7, 8)  # the roll date
    assert new.entry_credit == pytest.approx(old.entry_credit)  # C0 unchanged
    assert new.roll_credits == pytest.approx(old.roll_credits + net)  # ΣR += R

    pos2, rec2 = await _one(svc)  # the same snapshot (the sample does not move)
    assert pos2.id == new.id
    assert len(pos2.hedges) == len(old.hedges)  # the hedge moved with the campaign
    assert rec2.wpr.level.value != "TESTED", rec2.wpr
    assert rec2.roll.outcome is not RollOutcome.CLEARED and rec2.roll.proposal is None, (
        rec2.roll.outcome, rec2.roll.rule, rec2.roll.reason)
