"""Confirmation votes V1–V7 checked rule by rule against METHOD.md §4 (hand-derived cases)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.confirm import (
    MarketSignals,
    Momentum,
    breadth_flags,
    confirm,
    level_of,
    threat_side_put,
    vote_v1,
    vote_v2,
    vote_v3,
    vote_v4,
    vote_v5,
    vote_v7,
)

PUT = np.array([True])
CALL = np.array([False])


def sig(**kw) -> MarketSignals:
    base = dict(
        vix_momentum=None, spx_momentum=None, rsi=None, hv10=None, sigma_impl=15.5, vix=15.5,
        vix9d=None, vix3m=None, front_future=None, breadth_bearish=None, breadth_bullish=None,
    )
    base.update(kw)
    return MarketSignals(**base)


def test_levels_table():
    got = level_of(np.array([-3, -1, 0, 1, 2, 3, 4, 9])).tolist()
    assert got == ["CONTRA", "CONTRA", "NONE", "NONE", "CONFIRMED", "CONFIRMED", "STRONG", "STRONG"]


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (Momentum(1.0, 0.5, 0.5, 0.3), 1),  # above signal, histogram rising
        (Momentum(1.0, 0.5, 0.5, 0.7), 0),  # above signal but histogram falling
        (Momentum(0.2, 0.5, -0.3, -0.1), -1),  # below signal, histogram falling
        (Momentum(0.2, 0.5, -0.3, -0.5), 0),  # below signal but histogram rising
    ],
)
def test_v1_vix_momentum(m, expected):
    assert vote_v1(sig(vix_momentum=m)) == expected


def test_v1_abstains_without_history():
    assert vote_v1(sig()) is None


def test_v2_direction_depends_on_threat_side():
    falling = sig(spx_momentum=Momentum(-1.0, -0.5, -0.5, -0.4))  # below signal, hist falling
    assert vote_v2(falling, PUT).tolist() == [1]
    assert vote_v2(falling, CALL).tolist() == [-1]
    rising = sig(spx_momentum=Momentum(1.0, 0.5, 0.5, 0.4))  # above signal, hist rising
    assert vote_v2(rising, PUT).tolist() == [-1]
    assert vote_v2(rising, CALL).tolist() == [1]
    # above the signal but histogram falling: moving toward the put side, not away → 0
    fading = sig(spx_momentum=Momentum(1.0, 0.5, 0.5, 0.6))
    assert vote_v2(fading, PUT).tolist() == [0]


@pytest.mark.parametrize(
    ("rsi", "put", "call", "stretched_put", "stretched_call"),
    [
        (25.0, 0, -1, True, False),
        (30.0, 1, -1, False, False),
        (44.9, 1, -1, False, False),
        (45.0, 0, 0, False, False),
        (50.0, 0, 0, False, False),
        (55.1, -1, 0, False, False),
        (60.0, -1, 0, False, False),
        (60.1, -1, 1, False, False),
        (70.0, -1, 1, False, False),
        (75.0, -1, 0, False, True),
    ],
)
def test_v3_rsi_zones(rsi, put, call, stretched_put, stretched_call):
    sides = np.array([True, False])
    votes, stretched = vote_v3(sig(rsi=rsi), sides)
    assert votes.tolist() == [put, call]
    assert stretched.tolist() == [stretched_put, stretched_call]


@pytest.mark.parametrize(
    ("kw", "vote", "cap"),
    [
        ({}, None, 0),
        ({"vix3m": 17.0}, 1, 2),  # 15.5/17 = 0.912 < 0.917 → 0 ... see below
        ({"vix3m": 16.8}, 1, 2),  # 0.923 ≥ 0.917 → +1
        ({"vix3m": 15.5}, 2, 2),  # 1.0 → +2
        ({"vix3m": 19.0}, -1, 2),  # 0.816 < 0.85 → −1
        ({"vix9d": 16.0}, 1, 1),  # no VIX3M: VIX9D/VIX ≥ 1 → +1
        ({"vix9d": 15.0}, 0, 1),
        # VIX/VIX3M decides: the VIX9D reading only without VIX3M (v1 took the larger of the
        # two and so dropped the steep-contango −1 whenever VIX9D ≥ VIX)
        ({"vix3m": 19.0, "vix9d": 16.0}, -1, 2),
        ({"vix3m": 17.0, "vix9d": 16.0}, 0, 2),
        ({"vix3m": 16.8, "vix9d": 12.0}, 1, 2),
        ({"vix3m": 18.6, "vix9d": 12.5}, -1, 2),  # examples/market.json: 15.5/18.6 = 0.833
        ({"front_future": 15.0}, 1, 1),  # backwardated front future → +1
        ({"vix3m": 15.0, "front_future": 15.0}, 2, 2),  # capped at +2
        ({"vix3m": 16.8, "front_future": 15.0}, 2, 2),
    ],
)
def test_v4_term_structure(kw, vote, cap):
    if kw == {"vix3m": 17.0}:
        vote = 0  # 15.5 / 17 = 0.9118: between 0.85 and 0.917 → 0
    assert vote_v4(sig(**kw)) == (vote, cap)


def test_v5_realised_vs_implied():
    assert vote_v5(sig()) is None
    assert vote_v5(sig(hv10=15.5)) == 1
    assert vote_v5(sig(hv10=12.0)) == 0


def test_v7_breadth():
    assert vote_v7(sig()) is None
    assert vote_v7(sig(breadth_bearish=True, breadth_bullish=False)) == 1
    assert vote_v7(sig(breadth_bearish=False, breadth_bullish=True)) == -1
    assert vote_v7(sig(breadth_bearish=False, breadth_bullish=False)) == 0


def test_breadth_flags_ad_line_divergence():
    spx = np.linspace(4900, 5000, 30)  # rising
    ad = np.linspace(1000, 900, 30)  # falling: divergence
    assert breadth_flags(spx, ad_line=ad) == (True, False)
    assert breadth_flags(spx, ad_line=spx.copy()) == (False, True)  # both at 20-day highs
    assert breadth_flags(spx) == (None, None)
    rsp, spy = np.linspace(180, 170, 30), np.linspace(500, 510, 30)
    assert breadth_flags(spx, rsp=rsp, spy=spy)[0] is True


def test_threat_side():
    assert threat_side_put(np.array([-0.2]), np.array([0.1]), np.array([100.0]),
                           np.array([50.0])).tolist() == [True]
    assert threat_side_put(np.array([-0.1]), np.array([0.2]), np.array([50.0]),
                           np.array([100.0])).tolist() == [False]
    # tie on delta: the smaller cushion decides
    assert threat_side_put(np.array([-0.2]), np.array([0.2]), np.array([120.0]),
                           np.array([100.0])).tolist() == [False]


def test_score_and_max_available_over_votes_with_data():
    s = sig(vix_momentum=Momentum(1.0, 0.5, 0.5, 0.3), rsi=40.0, vix3m=15.0, hv10=16.0)
    c = confirm(s, np.array([True, False]), np.array([True, False]))
    # put: V1 +1, V2 abstain, V3 +1, V4 +2, V5 +1, V6 +1, V7 abstain → 6 of 1+1+2+1+1 = 6
    assert c.score.tolist() == [6, 1 - 1 + 2 + 1 + 0]
    assert c.max_available.tolist() == [6, 6]
    assert c.level.tolist() == ["STRONG", "CONFIRMED"]
    assert c.votes_of(0)["V2"] is None and c.votes_of(1)["V3"] == -1


positive_vote = st.sampled_from([0, 1])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    v1=st.booleans(), rsi=st.floats(20, 80), v3m=st.floats(12, 25), hv=st.floats(5, 40),
    v9=st.floats(12, 25), fut=st.floats(12, 25), side=st.booleans(), ev=st.booleans(),
    drop=st.sets(st.sampled_from(["vix_momentum", "spx_momentum", "rsi", "hv10", "vix9d",
                                  "vix3m", "front_future", "breadth"])),
)
def test_missing_data_never_makes_confirmation_easier(v1, rsi, v3m, hv, v9, fut, side, ev, drop):
    mom = Momentum(1.0, 0.5, 0.5, 0.3) if v1 else Momentum(-1.0, -0.5, -0.5, -0.3)
    full = sig(vix_momentum=mom, spx_momentum=mom, rsi=rsi, hv10=hv, vix9d=v9, vix3m=v3m,
               front_future=fut, breadth_bearish=ev, breadth_bullish=not ev)
    kw = {k: getattr(full, k) for k in full.__dataclass_fields__}
    for k in drop:
        if k == "breadth":
            kw["breadth_bearish"] = kw["breadth_bullish"] = None
        else:
            kw[k] = None
    partial = MarketSignals(**kw)
    sides, events = np.array([side]), np.array([ev])
    c_full, c_part = confirm(full, sides, events), confirm(partial, sides, events)
    # abstaining votes can only remove positive potential: the max never grows …
    assert c_part.max_available[0] <= c_full.max_available[0]
    # … and the positive part of the score (what confirms) never grows either
    def pos(c, skip=()):
        return sum(max(0, int(v[0])) for k, v in c.votes.items() if v is not None
                   and k not in skip)

    if "vix3m" in drop and c_part.votes["V4"] is not None:
        # the one named exception (docs/engine.md Decision 2): as §4's table says, VIX/VIX3M
        # decides and VIX9D/VIX ≥ 1 counts only without VIX3M, so losing VIX3M drops the
        # steep-contango −1 and may add the fallback's +1 — V4 alone may rise, by at most 2
        assert pos(c_part, ("V4",)) <= pos(c_full, ("V4",))
        v4_full, v4_part = c_full.votes["V4"][0], c_part.votes["V4"][0]
        assert v4_part <= v4_full + 2
    else:
        assert pos(c_part) <= pos(c_full)
