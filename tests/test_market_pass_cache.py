"""The market pass keeps its history part per (history object, last close, params): a cached
pass must read exactly like a fresh one, and a different history or day must not reuse it."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from core import evaluate as ev_mod
from core.evaluate import evaluate, evaluate_market
from core.params import DEFAULT_PARAMS
from tests.test_evaluate import ASOF, CPI, ET, condor, make_history, snapshot, worked_history


@pytest.fixture(autouse=True)
def empty_cache():
    ev_mod._HISTORY_PASSES.clear()
    yield
    ev_mod._HISTORY_PASSES.clear()


def fresh_market(hist, asof=ASOF, params=DEFAULT_PARAMS):
    ev_mod._HISTORY_PASSES.clear()
    return evaluate_market(snapshot(asof=asof), hist, [CPI], params, asof=asof)


def test_cached_pass_reads_like_a_fresh_one():
    hist = worked_history()
    first = evaluate_market(snapshot(), hist, [CPI], asof=ASOF)
    again = evaluate_market(snapshot(), hist, [CPI], asof=ASOF)
    assert len(ev_mod._HISTORY_PASSES) == 1
    assert again.record.to_dict() == first.record.to_dict() == fresh_market(hist).record.to_dict()
    assert again.record.state == "BREACHED" and again.closes == first.closes > 0
    a = evaluate([condor()], snapshot(), hist, [CPI], asof=ASOF).positions[0].to_dict()
    b = evaluate([condor()], snapshot(), hist, [CPI], asof=ASOF).positions[0].to_dict()
    assert a == b


def test_another_history_object_is_not_served_from_the_cache():
    calm = make_history(date(2026, 11, 13), [5060.0], [12.5])
    stressed = worked_history()
    m_calm = evaluate_market(snapshot(), calm, [CPI], asof=ASOF).record
    m_stressed = evaluate_market(snapshot(), stressed, [CPI], asof=ASOF).record
    assert m_calm.official_state != m_stressed.official_state
    assert m_stressed.to_dict() == fresh_market(stressed).record.to_dict()


def test_another_day_or_params_recomputes():
    hist = worked_history()
    evaluate_market(snapshot(), hist, [CPI], asof=ASOF)
    earlier = datetime(2026, 11, 12, 17, 0, tzinfo=ET)
    m = evaluate_market(snapshot(asof=earlier), hist, [CPI], asof=earlier).record
    assert m.indicators_asof == date(2026, 11, 12)
    assert m.to_dict() == fresh_market(hist, earlier).record.to_dict()
    other = dataclasses.replace(DEFAULT_PARAMS, market_history_closes=3)
    m3 = evaluate_market(snapshot(), hist, [CPI], other, asof=ASOF).record
    assert len(m3.history) == 3


def test_indicators_handed_out_are_copies():
    hist = worked_history()
    m = evaluate_market(snapshot(), hist, [CPI], asof=ASOF).record
    m.indicators.clear()
    assert evaluate_market(snapshot(), hist, [CPI], asof=ASOF).record.indicators
