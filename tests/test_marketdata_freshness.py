"""Staleness flags in each session phase (METHOD.md §9), hand-checked against the calendar."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bot.marketdata.freshness import build_snapshot, quote_flag, settlement_flag
from core.calendar import ET
from core.models import Quote
from core.params import Params

P = Params()  # 20-minute live window


def q(y, mo, d, h, mi, s=0):
    return Quote(value=16.0, asof=datetime(y, mo, d, h, mi, s, tzinfo=ET), source="test")


def at(y, mo, d, h, mi):
    return datetime(y, mo, d, h, mi, tzinfo=ET)


@pytest.mark.parametrize(
    ("phase", "now", "quote", "name", "flag"),
    [
        # regular session (Tue 2026-08-18): ≤ 20 min old
        ("regular, 10 min old", at(2026, 8, 18, 11, 0), q(2026, 8, 18, 10, 50), "vix", None),
        ("regular, 20 min old", at(2026, 8, 18, 11, 0), q(2026, 8, 18, 10, 40), "vix", None),
        ("regular, 21 min old", at(2026, 8, 18, 11, 0), q(2026, 8, 18, 10, 39), "vix",
         "STALE_VIX"),
        ("regular, yesterday's close", at(2026, 8, 18, 10, 0), q(2026, 8, 17, 16, 14, 59),
         "vix", "STALE_VIX"),
        # pre-market: yesterday's official close expected
        ("pre-market, last close", at(2026, 8, 18, 8, 0), q(2026, 8, 17, 16, 14, 59), "vix",
         None),
        ("pre-market, SPX 16:00", at(2026, 8, 18, 8, 0), q(2026, 8, 17, 16, 0), "spx", None),
        ("pre-market, two days old", at(2026, 8, 18, 8, 0), q(2026, 8, 14, 16, 14, 59), "vix",
         "STALE_VIX"),
        # after hours, same day
        ("after hours, 16:14:59 VIX", at(2026, 8, 18, 18, 0), q(2026, 8, 18, 16, 14, 59),
         "vix", None),
        ("after hours, VIX frozen at 15:00", at(2026, 8, 18, 18, 0), q(2026, 8, 18, 15, 0),
         "vix", "STALE_VIX"),
        ("after hours, SPX at 15:45", at(2026, 8, 18, 18, 0), q(2026, 8, 18, 15, 45), "spx",
         None),
        ("after hours, SPX at 15:30", at(2026, 8, 18, 18, 0), q(2026, 8, 18, 15, 30), "spx",
         "STALE_SPX"),
        # weekend: Friday's close
        ("weekend, Friday close", at(2026, 8, 16, 12, 0), q(2026, 8, 14, 16, 14, 59), "vix9d",
         None),
        ("weekend, Thursday close", at(2026, 8, 16, 12, 0), q(2026, 8, 13, 16, 14, 59),
         "vix9d", "STALE_VIX9D"),
        # holiday: Fri 2026-07-03 (Independence Day observed): Thursday's close
        ("holiday, day-before close", at(2026, 7, 3, 12, 0), q(2026, 7, 2, 16, 14, 59),
         "vvix", None),
        ("holiday, Wednesday close", at(2026, 7, 3, 12, 0), q(2026, 7, 1, 16, 14, 59), "vvix",
         "STALE_VVIX"),
        # early close (Fri 2026-11-27, 13:00; VIX 13:15)
        ("early close, 13:14 VIX", at(2026, 11, 27, 17, 0), q(2026, 11, 27, 13, 14), "vix",
         None),
        ("early close, 12:30 VIX", at(2026, 11, 27, 17, 0), q(2026, 11, 27, 12, 30), "vix",
         "STALE_VIX"),
        ("missing", at(2026, 8, 18, 11, 0), None, "vix3m", "MISSING_VIX3M"),
    ],
)
def test_quote_flag_by_phase(phase, now, quote, name, flag):
    assert quote_flag(name, quote, now, P) == flag, phase


def test_window_is_a_parameter():
    now, old = at(2026, 8, 18, 11, 0), q(2026, 8, 18, 10, 30)
    assert quote_flag("vix", old, now, P) == "STALE_VIX"
    assert quote_flag("vix", old, now, Params(live_quote_max_age_minutes=45)) is None


@pytest.mark.parametrize(
    ("now", "settled", "flag"),
    [
        (at(2026, 8, 18, 11, 0), date(2026, 8, 17), None),  # yesterday's settlement
        (at(2026, 8, 18, 11, 0), date(2026, 8, 14), None),  # not yet out: the one before
        (at(2026, 8, 18, 11, 0), date(2026, 8, 13), "STALE_VIX_FUTURES"),
        (at(2026, 8, 18, 17, 0), date(2026, 8, 18), None),
        (at(2026, 8, 18, 11, 0), None, "MISSING_VIX_FUTURES"),
    ],
)
def test_settlement_flag(now, settled, flag):
    assert settlement_flag(settled, now) == flag


def test_snapshot_flags_missing_pieces_never_zero():
    now = at(2026, 8, 18, 11, 0)
    snap = build_snapshot(now, {"spx": q(2026, 8, 18, 10, 55), "vix": None}, P)
    assert snap.vix is None and snap.vix9d is None
    assert snap.flags == ("MISSING_VIX", "MISSING_VIX9D", "MISSING_VIX3M", "MISSING_VVIX",
                          "MISSING_CHAIN", "MISSING_VIX_FUTURES", "MISSING_RATE")


def test_rate_older_than_a_week_is_flagged():
    now = at(2026, 8, 18, 11, 0)
    quotes = {n: q(2026, 8, 18, 10, 55) for n in ("spx", "vix", "vix9d", "vix3m", "vvix")}
    old = Quote(0.036, datetime(2026, 7, 8, tzinfo=ET), "fred")
    snap = build_snapshot(now, quotes, P, rate=old)
    assert "STALE_RATE" in snap.flags
    fresh = Quote(0.036, datetime(2026, 8, 17, tzinfo=ET), "fred")
    assert "STALE_RATE" not in build_snapshot(now, quotes, P, rate=fresh).flags
