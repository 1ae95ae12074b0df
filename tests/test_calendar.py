"""core.calendar: expected values are worked out by hand from the NYSE holiday list, the Cboe VIX
expiry rule and the CFE settlement sample; no test echoes the code's own output."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.calendar import (
    ET,
    CalendarRangeError,
    SessionPhase,
    is_session,
    last_official_close,
    next_session,
    previous_session,
    session_open_close,
    session_phase,
    sessions_in_range,
    sessions_to_expiry,
    sessions_to_expiry_many,
    settlement_moment,
    spx_expiries,
    vix_close_time,
    vix_expiries,
    vix_settlement_moment,
    years_to_expiry_many,
    years_to_settlement,
)

HOUR = 3600.0
YEAR_HOURS = 365 * 24


def et(y, m, d, hh=0, mm=0, ss=0):
    return datetime(y, m, d, hh, mm, ss, tzinfo=ET)


# --- sessions and holidays -------------------------------------------------------------------

@pytest.mark.parametrize(
    "d, expected",
    [
        (date(2024, 7, 4), False),  # Independence Day
        (date(2025, 4, 18), False),  # Good Friday
        (date(2025, 1, 9), False),  # national day of mourning, President Carter
        (date(2026, 6, 19), False),  # Juneteenth
        (date(2025, 3, 8), False),  # Saturday
        (date(2024, 7, 5), True),
        (date(2025, 4, 17), True),
        (date(2024, 11, 29), True),  # early close, still a session
    ],
)
def test_is_session(d, expected):
    assert is_session(d) is expected


def test_next_previous_and_range_skip_holidays():
    assert next_session(date(2024, 7, 3)) == date(2024, 7, 5)
    assert previous_session(date(2025, 4, 21)) == date(2025, 4, 17)  # over Good Friday + weekend
    assert next_session(date(2025, 4, 17)) == date(2025, 4, 21)
    assert sessions_in_range(date(2024, 7, 1), date(2024, 7, 7)) == [
        date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5),
    ]


@pytest.mark.parametrize("d", [date(2024, 11, 29), date(2025, 12, 24), date(2024, 7, 3)])
def test_early_closes_at_13(d):
    o, c = session_open_close(d)
    assert (o.hour, o.minute) == (9, 30)
    assert (c.hour, c.minute) == (13, 0)
    assert c.utcoffset() is not None


def test_regular_close_and_dst_offsets():
    _, c = session_open_close(date(2025, 3, 10))  # first session after spring-forward
    assert (c.hour, c.minute) == (16, 0)
    assert c.astimezone(UTC).hour == 20  # EDT = UTC−4
    _, c = session_open_close(date(2025, 3, 7))
    assert c.astimezone(UTC).hour == 21  # EST = UTC−5


def test_open_close_of_a_holiday_is_an_error():
    with pytest.raises(ValueError, match="not an NYSE session"):
        session_open_close(date(2024, 7, 4))


# --- session phase ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "ts, phase",
    [
        (datetime(2025, 3, 7, 13, 30, tzinfo=UTC), SessionPhase.PRE_MARKET),  # 08:30 EST
        (datetime(2025, 3, 10, 13, 30, tzinfo=UTC), SessionPhase.REGULAR),  # 09:30 EDT
        (datetime(2025, 3, 9, 15, 0, tzinfo=UTC), SessionPhase.CLOSED),  # DST Sunday
        (datetime(2025, 10, 31, 13, 30, tzinfo=UTC), SessionPhase.REGULAR),  # 09:30 EDT
        (datetime(2025, 11, 3, 13, 30, tzinfo=UTC), SessionPhase.PRE_MARKET),  # 08:30 EST
        (datetime(2025, 11, 3, 14, 30, tzinfo=UTC), SessionPhase.REGULAR),  # 09:30 EST
        (datetime(2025, 11, 2, 12, 0, tzinfo=UTC), SessionPhase.CLOSED),  # DST Sunday
        (et(2025, 3, 10, 3, 59), SessionPhase.CLOSED),
        (et(2025, 3, 10, 4, 0), SessionPhase.PRE_MARKET),
        (et(2025, 3, 10, 9, 29, 59), SessionPhase.PRE_MARKET),
        (et(2025, 3, 10, 15, 59), SessionPhase.REGULAR),
        (et(2025, 3, 10, 16, 0), SessionPhase.AFTER_HOURS),
        (et(2025, 3, 10, 19, 59), SessionPhase.AFTER_HOURS),
        (et(2025, 3, 10, 20, 0), SessionPhase.CLOSED),
        (et(2024, 11, 29, 12, 59), SessionPhase.REGULAR),
        (et(2024, 11, 29, 13, 0), SessionPhase.AFTER_HOURS),  # early close
        (et(2024, 7, 4, 11, 0), SessionPhase.CLOSED),  # holiday
        (et(2025, 4, 18, 8, 0), SessionPhase.CLOSED),  # Good Friday
    ],
)
def test_session_phase(ts, phase):
    assert session_phase(ts) is phase


def test_naive_datetime_rejected():
    with pytest.raises(ValueError, match="time zone"):
        session_phase(datetime(2025, 3, 10, 10, 0))
    with pytest.raises(ValueError, match="time zone"):
        years_to_settlement(datetime(2025, 3, 10), et(2025, 3, 11))


def test_vix_close_and_last_official_close():
    assert vix_close_time(date(2025, 3, 10)) == et(2025, 3, 10, 16, 15)
    assert vix_close_time(date(2024, 11, 29)) == et(2024, 11, 29, 13, 15)
    # Saturday after Thanksgiving Friday (early close)
    assert last_official_close(et(2024, 11, 30, 12)) == et(2024, 11, 29, 13)
    assert last_official_close(et(2024, 11, 30, 12), vix=True) == et(2024, 11, 29, 13, 15)
    # mid-session: yesterday's close; at the close itself: today's
    assert last_official_close(et(2025, 3, 11, 11)) == et(2025, 3, 10, 16)
    assert last_official_close(et(2025, 3, 11, 16)) == et(2025, 3, 11, 16)
    assert last_official_close(et(2025, 3, 11, 16, 10), vix=True) == et(2025, 3, 10, 16, 15)
    # Easter Monday pre-market → Thursday before Good Friday
    assert last_official_close(et(2025, 4, 21, 8)) == et(2025, 4, 17, 16)


# --- settlement and years --------------------------------------------------------------------

def test_settlement_moments():
    assert settlement_moment("SPX", date(2025, 3, 21)) == et(2025, 3, 21, 9, 30)
    assert settlement_moment("SPXW", date(2025, 3, 21)) == et(2025, 3, 21, 16)
    assert settlement_moment("XSP", date(2024, 11, 29)) == et(2024, 11, 29, 13)  # early close
    assert settlement_moment("SPXW", date(2025, 12, 24)) == et(2025, 12, 24, 13)
    assert vix_settlement_moment(date(2025, 3, 18)) == et(2025, 3, 18, 9, 30)
    with pytest.raises(ValueError, match="not an NYSE session"):
        settlement_moment("SPXW", date(2025, 4, 18))
    with pytest.raises(ValueError, match="unknown option root"):
        settlement_moment("NDX", date(2025, 3, 21))


def test_years_to_settlement_counts_real_hours_across_dst():
    # Fri 16:00 EST → Mon 16:00 EDT: the clock springs forward, 71 real hours.
    y = years_to_settlement(et(2025, 3, 7, 16), et(2025, 3, 10, 16))
    assert y == pytest.approx(71 / YEAR_HOURS, rel=1e-12)
    # Fri 16:00 EDT → Mon 16:00 EST: falls back, 73 real hours.
    y = years_to_settlement(et(2025, 10, 31, 16), et(2025, 11, 3, 16))
    assert y == pytest.approx(73 / YEAR_HOURS, rel=1e-12)
    # floored at 0 after settlement
    assert years_to_settlement(et(2025, 3, 11), et(2025, 3, 10, 16)) == 0.0


def test_years_to_expiry_many_am_pm_and_dst():
    asof = et(2025, 3, 7, 16)  # Fri, EST
    expiries = [date(2025, 3, 10), date(2025, 3, 10), date(2025, 3, 21)]
    got = years_to_expiry_many(asof, expiries, [False, True, True])
    # PM Mon 16:00 EDT = 71 h; AM Mon 09:30 EDT = 64.5 h; AM Fri 21st 09:30 = 14 days − 6.5 h − 1 h
    expected = np.array([71.0, 64.5, 14 * 24 - 6.5 - 1.0]) / YEAR_HOURS
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# --- sessions to expiry ----------------------------------------------------------------------

# Week of Good Friday 2025: Mon 14 … Thu 17 are sessions, Fri 18 is a holiday.
@pytest.mark.parametrize(
    "asof, expiry, am, expected",
    [
        (et(2025, 4, 14, 8), date(2025, 4, 17), False, 4.0),  # before open: Mon..Thu
        (et(2025, 4, 14, 12), date(2025, 4, 17), False, 3 + 4 / 6.5),  # mid-session
        (et(2025, 4, 14, 17), date(2025, 4, 17), False, 3.0),  # after close
        (et(2025, 4, 12, 12), date(2025, 4, 17), False, 4.0),  # Saturday
        (et(2025, 4, 17, 12), date(2025, 4, 17), False, 4 / 6.5),  # expiry day, PM
        (et(2025, 4, 17, 17), date(2025, 4, 17), False, 0.0),
        (et(2025, 4, 21, 12), date(2025, 4, 17), False, 0.0),  # expired
        # AM (SPX monthly Fri 2025-03-21): the expiry session is excluded
        (et(2025, 3, 17, 8), date(2025, 3, 21), True, 4.0),  # Mon..Thu
        (et(2025, 3, 17, 12), date(2025, 3, 21), True, 3 + 4 / 6.5),
        (et(2025, 3, 20, 17), date(2025, 3, 21), True, 0.0),  # Thu after close
        (et(2025, 3, 21, 8), date(2025, 3, 21), True, 0.0),  # expiry morning
        # early close: 11:00 on 2024-11-29, 2 h of a 3.5 h session ahead
        (et(2024, 11, 29, 11), date(2024, 11, 29), False, 2 / 3.5),
        (et(2024, 11, 27, 8), date(2024, 12, 2), False, 3.0),  # Wed, Fri (half day), Mon
        # DST Mondays: 12:00 local is 4 h before the close whatever the UTC offset
        (datetime(2025, 3, 10, 16, 0, tzinfo=UTC), date(2025, 3, 10), False, 4 / 6.5),  # EDT
        (datetime(2025, 11, 3, 17, 0, tzinfo=UTC), date(2025, 11, 3), False, 4 / 6.5),  # EST
    ],
)
def test_sessions_to_expiry(asof, expiry, am, expected):
    assert sessions_to_expiry(asof, expiry, am) == pytest.approx(expected, abs=1e-12)


def _brute_sessions(asof: datetime, expiry: date, am: bool) -> float:
    """Independent day-by-day count (plain loop over calendar days)."""
    local = asof.astimezone(ET)
    today = local.date()
    last = expiry - timedelta(days=1) if am else expiry
    n = 0.0
    d = today + timedelta(days=1)
    while d <= last:
        n += is_session(d)
        d += timedelta(days=1)
    if is_session(today) and today <= last:
        o, c = session_open_close(today)
        n += min(1.0, max(0.0, (c - local).total_seconds() / (c - o).total_seconds()))
    return n


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31)),
    offsets=st.lists(st.integers(-5, 60), min_size=1, max_size=6),
    am=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_sessions_to_expiry_many_matches_day_by_day_count(start, offsets, am):
    asof = start.replace(tzinfo=ET)
    base = asof.date()
    expiries = [base + timedelta(days=k) for k in offsets]
    flags = am[: len(expiries)]
    got = sessions_to_expiry_many(asof, expiries, flags)
    expected = [_brute_sessions(asof, e, a) for e, a in zip(expiries, flags, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-12)


# --- expiries --------------------------------------------------------------------------------

def test_spx_monthly_expiries_move_before_holidays():
    got = spx_expiries(date(2025, 1, 1), date(2025, 12, 31), "SPX")
    assert len(got) == 12
    assert date(2025, 4, 17) in got  # third Friday 04-18 is Good Friday → Thursday
    assert date(2025, 3, 21) in got and date(2025, 1, 17) in got
    assert date(2026, 6, 18) in spx_expiries(date(2026, 6, 1), date(2026, 6, 30), "SPX")


def test_spxw_expires_every_session():
    got = spx_expiries(date(2024, 7, 1), date(2024, 7, 7), "SPXW")
    assert got == [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5)]
    assert spx_expiries(date(2024, 7, 1), date(2024, 7, 7), "XSP") == got


# Cboe VIX monthly expiries, each checked by hand against the rule "Wednesday 30 days before the
# next month's SPX expiry":
#   2024-06-18 Tue: July SPX Fri 07-19 − 30 d = Wed 06-19 = Juneteenth → preceding session.
#   2025-03-18 Tue: April SPX third Friday 04-18 is Good Friday → Thu 04-17 − 30 d = Tue 03-18.
#   2026-05-19 Tue: June SPX Fri 06-19 is Juneteenth → Thu 06-18 − 30 d = Tue 05-19.
#   All others: the Wednesday, e.g. 2026-06-17 = July SPX Fri 07-17 − 30 d.
VIX_MONTHLY_2024_2026 = [
    date(2024, 1, 17), date(2024, 2, 14), date(2024, 3, 20), date(2024, 4, 17),
    date(2024, 5, 22), date(2024, 6, 18), date(2024, 7, 17), date(2024, 8, 21),
    date(2024, 9, 18), date(2024, 10, 16), date(2024, 11, 20), date(2024, 12, 18),
    date(2025, 1, 22), date(2025, 2, 19), date(2025, 3, 18), date(2025, 4, 16),
    date(2025, 5, 21), date(2025, 6, 18), date(2025, 7, 16), date(2025, 8, 20),
    date(2025, 9, 17), date(2025, 10, 22), date(2025, 11, 19), date(2025, 12, 17),
    date(2026, 1, 21), date(2026, 2, 18), date(2026, 3, 18), date(2026, 4, 15),
    date(2026, 5, 19), date(2026, 6, 17), date(2026, 7, 22), date(2026, 8, 19),
    date(2026, 9, 16), date(2026, 10, 21), date(2026, 11, 18), date(2026, 12, 16),
]


def test_vix_monthly_expiries_2024_2026():
    got = vix_expiries(date(2024, 1, 1), date(2026, 12, 31), weeklies=False)
    assert [v.date for v in got] == VIX_MONTHLY_2024_2026
    assert all(v.monthly for v in got)


def test_vix_expiries_match_cfe_settlement_sample():
    # Expiries and symbols of the CFE sample (shared/data/VX_settlement_curve_sample.csv):
    # `VX/..` monthly, `VXnn/..` weekly.
    sample = {
        date(2026, 7, 29): False, date(2026, 8, 5): False, date(2026, 8, 12): False,
        date(2026, 8, 19): True, date(2026, 8, 26): False, date(2026, 9, 2): False,
        date(2026, 9, 16): True, date(2026, 10, 21): True, date(2026, 11, 18): True,
        date(2026, 12, 16): True, date(2027, 1, 20): True, date(2027, 2, 17): True,
        date(2027, 3, 17): True,
    }
    got = {v.date: v.monthly for v in vix_expiries(date(2026, 7, 23), date(2027, 3, 31))}
    for d, monthly in sample.items():
        assert got.get(d) is monthly, d
    # weeklies skip the monthly week, and a holiday Wednesday moves to the Tuesday
    assert date(2026, 8, 19) in got and not any(
        d for d in got if d != date(2026, 8, 19) and d.isocalendar()[1] == 34 and d.year == 2026
    )
    weeks_2024 = {v.date: v.monthly for v in vix_expiries(date(2024, 12, 23), date(2025, 1, 3))}
    # Christmas and New Year's Day 2024/25 fall on Wednesdays → the Tuesdays before
    assert weeks_2024 == {date(2024, 12, 24): False, date(2024, 12, 31): False}


# --- range -----------------------------------------------------------------------------------

def test_out_of_range_dates_raise_calendar_range_error():
    with pytest.raises(CalendarRangeError, match="outside the trading calendar range"):
        is_session(date(1989, 12, 29))
    with pytest.raises(CalendarRangeError):
        sessions_to_expiry(et(2028, 12, 1, 10), date(2029, 1, 19), False)
    with pytest.raises(CalendarRangeError):
        sessions_to_expiry_many(et(2028, 12, 1, 10), [date(2028, 12, 15), date(2029, 3, 16)],
                                [False, True])
    with pytest.raises(CalendarRangeError):
        next_session(date(2028, 12, 29))
    with pytest.raises(CalendarRangeError):
        spx_expiries(date(2028, 1, 1), date(2029, 6, 30), "SPX")
    # the last VIX monthly needs January 2029's SPX expiry: dropped, not an error
    assert vix_expiries(date(2028, 11, 1), date(2028, 12, 31), weeklies=False)[-1].date == date(
        2028, 11, 15)
    with pytest.raises(CalendarRangeError):
        session_phase(et(2031, 1, 2, 10))
    assert issubclass(CalendarRangeError, ValueError)


def test_am_settlement_epochs_are_0930_new_york_on_every_kind_of_day():
    from zoneinfo import ZoneInfo

    from core import calendar as cal

    ny = ZoneInfo("America/New_York")
    days = [date(1990, 1, 2), date(2018, 3, 9), date(2018, 3, 12), date(2018, 11, 2),
            date(2018, 11, 5), date(2026, 7, 17), date(2026, 11, 27)]
    got = cal.settlement_epochs(days, True)
    want = [datetime(d.year, d.month, d.day, 9, 30, tzinfo=ny).timestamp() for d in days]
    assert got.tolist() == want
    both = cal.settlement_epochs(np.array(days[:2], dtype="datetime64[D]"), [True, False])
    assert both[0] == want[0] and both[1] == cal.settlement_epochs([days[1]], False)[0]
