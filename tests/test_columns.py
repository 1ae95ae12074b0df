"""The column screen (core/columns.py): a position it passes as clean has no problem at all, and
the Book built from its columns is the Book built position by position. Hypothesis draws fields
of every type a caller could hand the engine (bools, numpy scalars, NaN, inf, huge ints,
strings, datetimes for dates, bad hedges), so the screen is checked where it must say "no"."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import calendar as cal
from core.columns import book_from_columns, position_columns
from core.condor import Book
from core.evaluate import position_problems
from core.models import HedgeKind, HedgeLayer, Layer, Position

ET = cal.ET
ASOF = datetime(2026, 7, 8, 16, 30, tzinfo=ET)
TODAY = date(2026, 7, 8)
SESSIONS = [date(2026, 7, 17), date(2026, 8, 21), date(2026, 9, 18)]
VIX_SESSIONS = [date(2026, 7, 22), date(2026, 8, 19)]


def _good(i: int, **kw) -> Position:
    base = dict(id=i, root="SPXW", expiry=SESSIONS[i % 3], k1=6900.0, k2=6950, k3=7900.0,
                k4=7950.0, qty=1 + i % 3, entry_credit=6.5, opened=date(2026, 7, 1),
                roll_credits=0.25 * (i % 2))
    base.update(kw)
    return Position(**base)


def _same_book(a: Book, b: Book) -> bool:
    return a.positions == b.positions and all(
        getattr(a, f).dtype == getattr(b, f).dtype and np.array_equal(getattr(a, f), getattr(b, f))
        for f in ("strikes", "qty", "net_credit", "expiry", "opened", "am", "scale"))


def test_ordinary_positions_pass_and_build_the_same_book():
    hedge = HedgeLayer(HedgeKind.VIX_CALL, VIX_SESSIONS[0], 2, 0.45, 20.0)
    spread = HedgeLayer(HedgeKind.VIX_CALL_SPREAD, VIX_SESSIONS[1], 1, 0.6, 20.0, 25.0, Layer.L1)
    future = HedgeLayer(HedgeKind.VIX_FUTURE, VIX_SESSIONS[1], 1, 17.2)
    ps = [_good(0), _good(1, root="SPX"), _good(2, root="XSP", k1=690, k2=695, k3=790, k4=795,
                                                    entry_credit=0.65),
          _good(3, hedges=(hedge, spread, future)), _good(4, entry_delta=0.16),
          _good(5, expiry=TODAY)]
    cols = position_columns(ps, TODAY)
    assert cols.clean.all() and cols.plain.all()
    rows = np.arange(len(ps))
    assert _same_book(book_from_columns(ps, cols, rows), Book.from_positions(ps))
    assert _same_book(book_from_columns(ps, cols, rows[1::2]), Book.from_positions(ps[1::2]))


def test_each_problem_keeps_the_position_off_the_clean_list():
    bad = [
        _good(0, root="NDX"), _good(1, k2=6890.0), _good(2, k3=6950), _good(3, qty=0),
        _good(4, qty=True), _good(5, qty=1.0), _good(6, entry_credit=0.0),
        _good(7, entry_credit=50.0), _good(8, roll_credits=float("nan")),
        _good(9, entry_delta=0.5), _good(10, entry_delta=0.0),
        _good(11, opened=date(2026, 9, 30)), _good(12, expiry=date(2026, 7, 7)),
        _good(13, expiry=date(2026, 7, 4)),  # a Saturday
        _good(14, hedges=(HedgeLayer(HedgeKind.VIX_CALL, date(2026, 7, 1), 1, 0.4, 20.0),)),
        _good(15, hedges=(HedgeLayer(HedgeKind.VIX_CALL, date(2026, 7, 25), 1, 0.4, 20.0),)),
        _good(16, hedges=(HedgeLayer(HedgeKind.VIX_CALL_SPREAD, VIX_SESSIONS[0], 1, 0.4, 20.0,
                                     20.0),)),
        _good(17, hedges=(HedgeLayer(HedgeKind.VIX_CALL, VIX_SESSIONS[0], 1, -0.4, 20.0),)),
        _good(18, hedges=(HedgeLayer(HedgeKind.VIX_CALL, VIX_SESSIONS[0], 1, 0.4, None),)),
        _good(19, hedges=(HedgeLayer(HedgeKind.VIX_CALL, VIX_SESSIONS[0], 1, 0.4, 20.0,
                                     qty_sold=-1),)),
        _good(20, hedges=(HedgeLayer(HedgeKind.VIX_CALL, VIX_SESSIONS[0], 1, 0.4, 20.0,
                                     qty_sold=True),)),
    ]
    cols = position_columns([*bad, _good(21)], TODAY)
    assert cols.clean.tolist() == [False] * len(bad) + [True]
    assert all(position_problems(p, ASOF) for p in bad)


_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
    st.sampled_from([0, 1, 5, 6900, 6950.0, 7900, 7950.0, 6.5, 0.25, -0.0, 2**53 + 1,
                     float(2**53), 1e-300, 0.16, 0.4999999, 0.5]),
    st.builds(np.float64, st.floats(-1e4, 1e4)), st.booleans(), st.none(), st.just("6900"),
)
_DATE = st.one_of(st.sampled_from([*SESSIONS, TODAY, date(2026, 7, 4), date(2026, 6, 1)]),
                  st.just(datetime(2026, 8, 21, 16, 0)), st.none(), st.just("2026-08-21"))
_HEDGE = st.builds(HedgeLayer, st.sampled_from([*HedgeKind, "VIX_CALL"]),
                   st.sampled_from([*VIX_SESSIONS, date(2026, 7, 1), date(2026, 7, 25)]),
                   st.one_of(st.integers(-1, 3), st.just(True)), _NUMBER, _NUMBER, _NUMBER,
                   qty_sold=st.one_of(st.integers(-1, 4), st.sampled_from([True, 1.0, None])))


@st.composite
def _position(draw, i: int = 0) -> Position:
    """Mostly sane positions with one or two fields replaced by anything."""
    p = _good(draw(st.integers(0, 5)), root=draw(st.sampled_from(["SPXW", "SPX", "XSP"])))
    fields = draw(st.sets(st.sampled_from(["k1", "k2", "k3", "k4", "qty", "entry_credit",
                                           "roll_credits", "entry_delta", "opened", "expiry",
                                           "hedges", "root"]), max_size=2))
    kw = {}
    for f in fields:
        if f in ("opened", "expiry"):
            kw[f] = draw(_DATE)
        elif f == "hedges":
            kw[f] = tuple(draw(st.lists(_HEDGE, max_size=3)))
        elif f == "root":
            kw[f] = draw(st.sampled_from(["SPXW", "XSP", "spx", "", None]))
        else:
            kw[f] = draw(_NUMBER)
    return dataclasses.replace(p, **kw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_position(), min_size=1, max_size=6))
def test_clean_means_no_problem_and_the_same_book(ps):
    cols = position_columns(ps, TODAY)
    for p, clean in zip(ps, cols.clean.tolist(), strict=True):
        if clean:
            assert position_problems(p, ASOF) == [], p
    rows = np.flatnonzero(cols.plain & np.array([not position_problems(p, ASOF) for p in ps]))
    if rows.size:
        assert _same_book(book_from_columns(ps, cols, rows),
                          Book.from_positions([ps[i] for i in rows]))
