"""The caches kept per input object (core/memo.py): the events list sorted, its epochs and
multipliers (core.edr.horizon_edr), its high-impact times, a snapshot chain's copy, VIX asks
and strike index (core.evaluate). A cached result reads like a fresh one; another object, a
changed length or other params are never served from the cache; the cache stays bounded;
shared arrays are read-only."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import numpy as np
import pytest

from core import edr
from core import evaluate as ev_mod
from core.evaluate import evaluate
from core.memo import IdentityCache
from core.models import Event, EventKind, OptionQuote
from core.params import DEFAULT_PARAMS
from tests.test_evaluate import ASOF, CPI, ET, SPX_CLOSE, condor, snapshot, worked_history

CACHES = (edr._EVENT_TERMS, ev_mod._HIGH_IMPACT, ev_mod._CHAIN_PARTS, ev_mod._CHAIN_INDEX,
          ev_mod._SORTED_EVENTS)
FOMC = Event(datetime(2026, 11, 18, 14, 0, tzinfo=ET), EventKind.FOMC, "FOMC")


@pytest.fixture(autouse=True)
def empty_caches():
    for c in CACHES:
        c.clear()
    yield
    for c in CACHES:
        c.clear()


def test_identity_cache_keys_on_identity_length_and_extras_and_stays_bounded():
    cache, calls = IdentityCache(size=2), []

    def get(obj, *extra):
        return cache.get(obj, extra, lambda: calls.append(1) or (id(obj), len(obj), extra))

    a, b = [1, 2], [1, 2]  # equal, not the same object
    assert get(a, "p") == get(a, "p") and len(calls) == 1
    get(b, "p")  # an equal list is another input
    get(a, "q")  # other params
    assert len(calls) == 3 and len(cache) == 2  # bounded: the oldest went
    a.append(3)  # changed in place: its length tells
    assert get(a, "q")[1] == 3 and len(calls) == 4


def test_horizon_edr_cached_terms_follow_the_events_and_params():
    ends = np.array([datetime(2026, 11, 20, 16, 0, tzinfo=ET).timestamp()])
    events = [CPI, FOMC]
    first = edr.horizon_edr(48.0, [5.0], ends, events, "VIX", ASOF)
    assert len(edr._EVENT_TERMS) == 1
    assert edr.horizon_edr(48.0, [5.0], ends, events, "VIX", ASOF) == first  # served
    assert len(edr._EVENT_TERMS) == 1
    # another list without the FOMC inside the window: recomputed, smaller
    fewer = edr.horizon_edr(48.0, [5.0], ends, [CPI], "VIX", ASOF)
    assert fewer < first and len(edr._EVENT_TERMS) == 2
    # other multipliers: recomputed, not served for the same list
    bigger = dataclasses.replace(DEFAULT_PARAMS, event_multipliers={
        **DEFAULT_PARAMS.event_multipliers, "FOMC": 3.0})
    assert edr.horizon_edr(48.0, [5.0], ends, events, "VIX", ASOF, bigger) > first
    edr._EVENT_TERMS.clear()
    assert edr.horizon_edr(48.0, [5.0], ends, events, "VIX", ASOF) == first  # fresh = cached
    t_ev, _ = edr._EVENT_TERMS._entries[0][3]
    with pytest.raises(ValueError):
        t_ev[0] = 0.0  # shared: read-only


def test_a_changed_calendar_or_chain_is_not_served_from_the_cache():
    hist = worked_history()
    quote = OptionQuote(0.40, 1.0, 1.2, SPX_CLOSE)
    snap = dataclasses.replace(snapshot(), chain={("SPXW", date(2026, 11, 20), 4870.0, "P"): quote})
    events = [CPI, FOMC]
    base = evaluate([condor()], snap, hist, events, asof=ASOF).positions[0]
    again = evaluate([condor()], snap, hist, events, asof=ASOF).positions[0]
    assert again == base and len(ev_mod._CHAIN_PARTS) == 1 and len(ev_mod._HIGH_IMPACT) == 1
    assert len(ev_mod._SORTED_EVENTS) == 1 and len(edr._EVENT_TERMS) == 1
    assert base.shorts.put.iv == 0.40  # the chain's line is used
    # a new snapshot with another IV for the same line: recomputed
    snap2 = dataclasses.replace(snap, chain={("SPXW", date(2026, 11, 20), 4870.0, "P"):
                                             dataclasses.replace(quote, iv=0.30)})
    assert evaluate([condor()], snap2, hist, events, asof=ASOF).positions[0].shorts.put.iv == 0.30
    # a calendar without the FOMC (a new list): its event term is gone
    no_fomc = evaluate([condor()], snap, hist, [CPI], asof=ASOF).positions[0]
    assert no_fomc.edr.horizon_pts < base.edr.horizon_pts
    # the same list changed in place (one event more): its length tells
    events.append(Event(datetime(2026, 11, 19, 8, 30, tzinfo=ET), EventKind.PPI, "PPI"))
    more = evaluate([condor()], snap, hist, events, asof=ASOF).positions[0]
    assert more.edr.horizon_pts > base.edr.horizon_pts
    events.pop()
    # and every cached run reads like a run with empty caches
    for c in CACHES:
        c.clear()
    assert evaluate([condor()], snap, hist, events, asof=ASOF).positions[0] == base
