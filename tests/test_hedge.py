"""Second engine decision tables (METHOD.md §6) checked cell by cell, by hand."""

from datetime import date, datetime

import numpy as np
import pytest

from core import calendar as cal
from core.edr import EdrState
from core.hedge import (
    applicable,
    beta_f,
    black_vol,
    choose_vix_expiry,
    exit_signals,
    h_target,
    model_future,
    put_side_safe,
    strike_band,
)

S = EdrState


@pytest.mark.parametrize(
    ("state", "score", "tested", "expected"),
    [
        (S.CALM, -2, False, 0.0), (S.CALM, 3, True, 0.0), (S.CALM, 6, False, 0.0),
        (S.APPROACHING, 1, False, 0.0), (S.APPROACHING, 2, False, 0.33),
        (S.APPROACHING, 3, False, 0.33), (S.APPROACHING, 4, False, 0.50),
        (S.BREACHED, 1, False, 0.33), (S.BREACHED, -3, False, 0.33),
        (S.BREACHED, 1, True, 0.50), (S.BREACHED, 2, False, 0.50), (S.BREACHED, 3, True, 0.50),
        (S.BREACHED, 4, False, 0.67),
        (S.ELEVATED, 0, False, 0.67), (S.ELEVATED, 5, False, 0.67), (S.EXTREME, 2, False, 0.67),
    ],
)
def test_h_table(state, score, tested, expected):
    got = h_target(int(state), False, np.array([score]), np.array([tested]))
    assert got.tolist() == [expected]


def test_fast_rise_reads_as_approaching():
    assert h_target(int(S.CALM), True, np.array([2]), np.array([False])).tolist() == [0.33]
    assert h_target(int(S.BREACHED), True, np.array([2]), np.array([False])).tolist() == [0.50]


def test_call_side_applicability():
    put_side = np.array([True, False, False])
    assert applicable(put_side, 1).tolist() == [True, True, True]
    assert applicable(put_side, 0).tolist() == [True, False, False]
    assert applicable(put_side, -1).tolist() == [True, False, False]
    assert applicable(put_side, None).tolist() == [True, False, False]


@pytest.mark.parametrize(("d_put", "d_call", "safe"), [
    (-0.05, 0.20, True), (-0.0999, 0.20, True),
    (-0.10, 0.20, False),  # |Δ_K2| = ½·|Δ_K3|: balanced, hedged for the put side
    (-0.19, 0.20, False),  # the 20Δ twin of a 16Δ condor: a hair more call delta
    (-0.20, 0.10, False),
])
def test_not_applicable_only_when_the_put_side_is_clearly_safe(d_put, d_call, safe):
    got = put_side_safe(np.array([d_put]), np.array([d_call]))
    assert got.tolist() == [safe]
    put_side = np.array([abs(d_put) >= abs(d_call)])
    # NOT_APPLICABLE (V1 ≤ 0) exactly on a call-side threat whose put side is clearly safe
    assert applicable(put_side, 0, got).tolist() == [not safe]
    assert applicable(put_side, 1, got).tolist() == [True]  # V1 > 0 always applies


ET = cal.ET


def _vix_choice(asof, vix_dates, condors):
    """condors: [(expiry, am)]; returns the chosen VIX dates (None: none qualifies)."""
    v_ep = cal.settlement_epochs(vix_dates, True)
    v_sess = cal.sessions_to_expiry_many(asof, vix_dates, True)
    exp = [c[0] for c in condors]
    am = np.array([c[1] for c in condors])
    c_ep = cal.settlement_epochs(exp, am)
    c_sess = cal.sessions_to_expiry_many(asof, exp, am)
    got = choose_vix_expiry(v_ep, v_sess, asof.timestamp(), c_ep, c_sess)
    return [None if g < 0 else vix_dates[g] for g in got]


def test_vix_expiry_choice():
    asof = datetime(2026, 11, 25, 9, 0, tzinfo=ET)  # Wednesday before the open
    vix = [date(2026, 11, 30), date(2026, 12, 2), date(2026, 12, 9), date(2026, 12, 16),
           date(2026, 12, 23), date(2027, 1, 20)]
    # DTE to the 09:30 settlements: 5.0, 7.0, 14.0, 21.0, 28.0, 56.0
    got = _vix_choice(asof, vix, [(date(2026, 12, 1), False), (date(2026, 12, 4), False),
                                  (date(2026, 12, 11), False), (date(2026, 12, 31), False)])
    # outlives 12-01 PM → 12-02 (7 d); 12-04 → 12-09 (14 d); 12-11: none in 7–14 outlives →
    # latest in 7–14 = 12-09; 12-31 likewise
    assert got == [date(2026, 12, 2), date(2026, 12, 9), date(2026, 12, 9), date(2026, 12, 9)]
    # no 7–14: nearest inside 15–35 (21 d); never under 5
    cond = [(date(2026, 12, 1), False)]
    assert _vix_choice(asof, [date(2026, 11, 30), date(2026, 12, 16), date(2026, 12, 23)],
                       cond) == [date(2026, 12, 16)]
    assert _vix_choice(asof, [date(2026, 11, 27)], cond) == [None]


def test_outlives_compares_settlement_moments():
    # a PM condor expiring Wed 9 Dec: the VIX option settling 09:30 that morning does not
    # outlive it (v1 compared dates and picked it); the next Wednesday does
    asof = datetime(2026, 12, 2, 16, 30, tzinfo=ET)
    vix = [date(2026, 12, 9), date(2026, 12, 16), date(2026, 12, 23)]
    assert _vix_choice(asof, vix, [(date(2026, 12, 9), False)]) == [date(2026, 12, 16)]
    # the same date AM-settled (09:30): the same settlement moment covers its whole life
    asof = datetime(2026, 12, 1, 9, 0, tzinfo=ET)
    assert _vix_choice(asof, vix, [(date(2026, 12, 9), True)]) == [date(2026, 12, 9)]


def test_the_pick_always_passes_b4():
    # Wed 16:30: the next Wednesday is 6.7 days away (under 7), the one after 13.7 — the 7-DTE
    # PM condor of Wed 9 Dec needs ≥ 5 sessions of hedge life; every pick must give that
    asof = datetime(2026, 12, 2, 16, 30, tzinfo=ET)
    vix = [date(2026, 12, 9), date(2026, 12, 16), date(2026, 12, 23), date(2027, 1, 20)]
    condors = [(date(2026, 12, 3), False), (date(2026, 12, 9), False), (date(2026, 12, 18), True),
               (date(2027, 1, 15), True)]
    got = _vix_choice(asof, vix, condors)
    v_sess = dict(zip(vix, cal.sessions_to_expiry_many(asof, vix, True), strict=True))
    for (exp, am), pick in zip(condors, got, strict=True):
        n = cal.sessions_to_expiry(asof, exp, am)
        assert pick is not None and v_sess[pick] >= min(n, 5)
    # when nothing in the windows passes B4, the earliest listed one that does (decision)
    only_far = [date(2026, 12, 9), date(2027, 1, 20)]  # 6.7 d fails B4; 48.7 d is outside 35
    assert _vix_choice(asof, only_far, [(date(2026, 12, 18), True)]) == [date(2027, 1, 20)]


def test_model_future_rules():
    f, src = model_future(np.array([10.0, 93.0, 200.0]), 15.5, 17.0)
    assert src == "VIX3M"
    assert f == pytest.approx([15.5 + 1.5 * 10 / 93, 17.0, 17.0])
    f, src = model_future(np.array([15.0, 30.0, 60.0]), 15.5, None)
    assert src == "regime"
    assert f == pytest.approx([15.5 * 1.04, 15.5 * 1.08, 15.5 * 1.08])
    f, _ = model_future(np.array([15.0]), 22.0, None)
    assert f == pytest.approx([22.0])
    f, _ = model_future(np.array([15.0]), 30.0, None)
    assert f == pytest.approx([30.0 * (1 - 0.025)])


def test_black_vol_and_beta():
    assert black_vol(np.array([30.0]), None) == pytest.approx([0.9])
    assert black_vol(np.array([10.0]), 100.0) == pytest.approx([1.0 * 3 ** 0.15])
    assert black_vol(np.array([30.0]), 50.0) == pytest.approx([0.6])  # clamp low
    assert black_vol(np.array([1.0]), 180.0) == pytest.approx([2.0])  # clamp high
    assert beta_f(np.array([30.0, 0.0])) == pytest.approx([np.exp(-30 / 35), 1.0])
    assert beta_f(np.array([30.0]))[0] == pytest.approx(0.424, abs=0.001)


def test_strike_band():
    assert strike_band(15.5).tolist() == [18.0, 19.0, 20.0, 21.0, 22.0, 23.0]  # 17.8 … 23.25


def test_exit_signals():
    assert exit_signals(31.0, int(S.ELEVATED), 1.1, [("L2 19C", 1.0, 0.3, 6, False)]) == (
        "VIX 31.0 ≥ 30: sell half of the L2 calls",
        "L2 19C: mark 1.00 ≥ 3 × cost 0.30: sell half",
    )
    sell_all = exit_signals(55.0, int(S.EXTREME), 1.2, [("x", 0.5, 0.4, 2, False)])[0]
    assert sell_all.endswith("sell all L2 calls")
    expiring = [("x", 0.5, 0.4, 2, False)]
    assert "close or roll" in exit_signals(15.0, int(S.BREACHED), 0.9, expiring)[0]
    calm = exit_signals(12.0, int(S.CALM), 0.85, [("x", 0.5, 0.4, 9, False)])
    assert calm == ("state CALM and VIX/VIX3M 0.850 < 0.9: no new VIX-call buys",)
    assert exit_signals(12.0, int(S.CALM), 0.95, [("x", 0.5, 0.4, 9, False)]) == ()
    # held L2 layers only (docs/engine.md decision 22): nothing to signal without one
    assert exit_signals(12.0, int(S.CALM), 0.85, []) == ()


def test_sell_half_is_asked_once_per_line():
    """Decision 42: a line already half sold gets no second "sell half" (neither rule), while
    "sell all" and "close or roll" still apply to it."""
    fresh, halved = ("L2 19C", 1.0, 0.3, 6, False), ("L2 21C", 1.0, 0.3, 6, True)
    assert exit_signals(31.0, int(S.ELEVATED), 1.1, [halved]) == ()
    assert exit_signals(31.0, int(S.ELEVATED), 1.1, [fresh, halved]) == (
        "VIX 31.0 ≥ 30: sell half of the L2 calls not yet half sold",
        "L2 19C: mark 1.00 ≥ 3 × cost 0.30: sell half",
    )
    assert exit_signals(55.0, int(S.EXTREME), 1.2, [halved]) == (
        "VIX 55.0 ≥ 50: sell all L2 calls",)
    assert exit_signals(15.0, int(S.BREACHED), 0.9, [("x", 0.5, 0.4, 2, True)]) == (
        "x: 2 session(s) to VIX expiry: close or roll",)
