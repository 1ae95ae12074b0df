"""NYSE sessions, settlement moments, SPX/VIX expiries and the session phase (METHOD.md §1, §9).

Pure: the calendar is the exchange_calendars XNYS schedule for a fixed range
[`CALENDAR_START`, `CALENDAR_END`], built once and cached; nothing here reads the clock (`asof`
is always an argument). Dates outside the range raise `CalendarRangeError`.

Conventions
- Dates are exchange (America/New_York) calendar dates. Datetimes must be tz-aware; they are
  converted to ET for the calendar date and to UTC epoch seconds for arithmetic (so a DST change
  between two instants is counted in real elapsed time).
- Years to settlement: ACT/365 in seconds, `(settle − asof) / (365·86400)`, floored at 0.
- Sessions to expiry `n` (§1): the fraction of today's session still ahead plus every later
  session up to expiry; the expiry session counts for PM settlement, not for AM settlement.

Kept whole: every function reads the one cached XNYS schedule under the conventions above, and
the per-date caches sit on that schedule; sessions, settlement moments, expiries and the phase
split apart would each repeat the range checks and the schedule access.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core.params import (
    CALENDAR_CACHE_SIZE,
    FLOAT_TOL,
    SETTLEMENT_CACHE_MAX_EXPIRIES,
    SETTLEMENT_CACHE_SIZE,
)

ET = ZoneInfo("America/New_York")

CALENDAR_START = date(1990, 1, 1)
CALENDAR_END = date(2028, 12, 31)

SECONDS_PER_YEAR = 365 * 86400  # ACT/365
SECONDS_PER_DAY = 86400

# Market facts (not method parameters): index options settlement and extended-hours windows.
AM_SETTLEMENT_TIME = time(9, 30)  # SPX monthlies and VIX options settle on opening prints
PRE_MARKET_START = time(4, 0)
AFTER_HOURS_END = time(20, 0)
VIX_CLOSE_DELAY = timedelta(minutes=15)  # VIX official close 16:15 ET (13:15 on early closes)
VIX_SETTLEMENT_OFFSET_DAYS = 30  # VIX expiry = 30 days before the next month's SPX expiry
THIRD_FRIDAY_WEEK = 3
FRIDAY, WEDNESDAY = 4, 2

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

PM_ROOTS = ("SPXW", "XSP")
AM_ROOTS = ("SPX",)


class CalendarRangeError(ValueError):
    """A date outside the range the calendar was built for."""


@dataclass(frozen=True)
class _Cal:
    sessions: np.ndarray  # datetime64[D], ascending
    opens: np.ndarray  # int64 UTC epoch seconds
    closes: np.ndarray  # int64 UTC epoch seconds
    session_set: frozenset[date]
    vix_closes: np.ndarray  # float64 UTC epoch seconds of the VIX close (closes + 15 min)


@cache
def _cal() -> _Cal:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars' own pandas-4 deprecation noise, not ours
        warnings.simplefilter("ignore")
        xnys = xcals.get_calendar("XNYS", start=CALENDAR_START.isoformat(),
                                  end=CALENDAR_END.isoformat())
        sched = xnys.schedule
    sessions = sched.index.values.astype("datetime64[D]")
    opens = sched["open"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    closes = (sched["close"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
              .astype(np.int64))
    return _Cal(
        sessions=sessions,
        opens=opens,
        closes=closes,
        session_set=frozenset(pd.DatetimeIndex(sched.index).date),
        vix_closes=closes + VIX_CLOSE_DELAY.total_seconds(),
    )


# Per-date caches below: each cached function is pure in its (hashable) date or instant, over a
# calendar fixed at import; an evaluation asks for the same few dates many times (every held
# layer's review date, each expiry's last trading day, the next session), a backtest day again.
# Bounded by CALENDAR_CACHE_SIZE; results are immutable (dates, datetimes, tuples).
_date_cache = lru_cache(maxsize=CALENDAR_CACHE_SIZE)


# --- conversions and range checks ---------------------------------------------------------

def _check_date(d: date, what: str = "date") -> date:
    if isinstance(d, datetime):
        raise TypeError(f"{what} must be a date, not a datetime ({d!r})")
    if not isinstance(d, date):
        raise TypeError(f"{what} must be a date (got {d!r})")
    if not CALENDAR_START <= d <= CALENDAR_END:
        raise CalendarRangeError(
            f"{what} {d} is outside the trading calendar range "
            f"{CALENDAR_START}..{CALENDAR_END}"
        )
    return d


def _check_aware(ts: datetime, what: str = "time") -> datetime:
    if not isinstance(ts, datetime):
        raise TypeError(f"{what} must be a datetime (got {ts!r})")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} {ts} must carry a time zone")
    return ts


def _epoch(ts: datetime) -> float:
    return _check_aware(ts).timestamp()


def _from_epoch(sec: float) -> datetime:
    return datetime.fromtimestamp(float(sec), tz=UTC).astimezone(ET)


def et_date(ts: datetime) -> date:
    """The ET calendar date of a tz-aware instant (range-checked)."""
    return _check_date(_check_aware(ts).astimezone(ET).date(), "date of " + ts.isoformat())


def _to_day64(dates: Iterable[date] | np.ndarray) -> np.ndarray:
    arr = np.asarray(dates)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[D]")
    else:
        flat = arr.ravel()
        if not all(isinstance(d, date) for d in flat):
            raise TypeError(f"expiries must be dates (got {flat[:3].tolist()!r})")
        # ordinals are ~15x faster than numpy's object → datetime64 cast
        ords = np.fromiter((d.toordinal() for d in flat), np.int64, flat.size)
        out = (ords - _EPOCH_ORDINAL).astype("datetime64[D]").reshape(arr.shape)
    if out.size:
        lo, hi = out.min(), out.max()
        if np.isnat(lo) or np.isnat(hi):
            raise ValueError("dates contain a missing value (NaT)")
        if lo < np.datetime64(CALENDAR_START) or hi > np.datetime64(CALENDAR_END):
            bad = lo if lo < np.datetime64(CALENDAR_START) else hi
            raise CalendarRangeError(
                f"date {bad} is outside the trading calendar range "
                f"{CALENDAR_START}..{CALENDAR_END}"
            )
    return out


def _d64(d: date) -> np.datetime64:
    return np.datetime64(d, "D")


def _as_date(d64: np.datetime64) -> date:
    return d64.astype("datetime64[D]").astype(object)


def _index(d: date) -> int:
    """Position of session d in the session array; ValueError if d is not a session."""
    c = _cal()
    i = int(np.searchsorted(c.sessions, _d64(d)))
    if i >= len(c.sessions) or c.sessions[i] != _d64(d):
        raise ValueError(f"{d} is not an NYSE session")
    return i


# --- sessions ------------------------------------------------------------------------------

def is_session(d: date) -> bool:
    return _check_date(d) in _cal().session_set


def sessions_in_range(start: date, end: date) -> list[date]:
    """NYSE sessions with start ≤ session ≤ end, ascending."""
    _check_date(start, "start")
    _check_date(end, "end")
    s = _cal().sessions
    lo, hi = np.searchsorted(s, _d64(start)), np.searchsorted(s, _d64(end), side="right")
    return s[lo:hi].astype(object).tolist()


@_date_cache
def next_session(d: date) -> date:
    """The first session strictly after d."""
    s = _cal().sessions
    i = int(np.searchsorted(s, _d64(_check_date(d)), side="right"))
    if i >= len(s):
        raise CalendarRangeError(f"no session after {d} within the calendar (ends {CALENDAR_END})")
    return _as_date(s[i])


@_date_cache
def previous_session(d: date) -> date:
    """The last session strictly before d."""
    s = _cal().sessions
    i = int(np.searchsorted(s, _d64(_check_date(d)))) - 1
    if i < 0:
        raise CalendarRangeError(
            f"no session before {d} within the calendar (starts {CALENDAR_START})"
        )
    return _as_date(s[i])


def session_or_previous(d: date) -> date:
    """d if it is a session, else the preceding session."""
    return d if is_session(d) else previous_session(d)


@_date_cache
def session_open_close(d: date) -> tuple[datetime, datetime]:
    """(open, close) of session d, tz-aware ET; early closes at 13:00. ValueError off-session."""
    c = _cal()
    i = _index(_check_date(d))
    return _from_epoch(c.opens[i]), _from_epoch(c.closes[i])


def is_early_close(d: date) -> bool:
    _, close = session_open_close(d)
    return close.time() < time(16, 0)


def vix_close_time(d: date) -> datetime:
    """VIX official close of session d: 15 minutes after the NYSE close (16:15, 13:15 early)."""
    return session_open_close(d)[1] + VIX_CLOSE_DELAY


@_date_cache
def last_official_close(ts: datetime, vix: bool = False) -> datetime:
    """The most recent session close at or before ts (VIX: its 16:15 close if `vix`)."""
    c = _cal()
    t = _epoch(ts)
    et_date(ts)  # range check
    closes = c.vix_closes if vix else c.closes
    i = int(np.searchsorted(closes, t, side="right")) - 1
    if i < 0:
        raise CalendarRangeError(f"no session close at or before {ts} within the calendar")
    return _from_epoch(closes[i])


# --- settlement and time to expiry ---------------------------------------------------------

def is_am_settled(root: str) -> bool:
    if root in AM_ROOTS:
        return True
    if root in PM_ROOTS:
        return False
    raise ValueError(f"unknown option root {root!r} (expected one of {AM_ROOTS + PM_ROOTS})")


def settlement_moment(root: str, expiry: date) -> datetime:
    """SPX (AM): 09:30 ET on expiry; SPXW, XSP (PM): the session close (16:00, or 13:00)."""
    am = is_am_settled(root)
    _check_date(expiry, "expiry")
    if not is_session(expiry):
        raise ValueError(f"{root} expiry {expiry} is not an NYSE session")
    if am:
        return datetime.combine(expiry, AM_SETTLEMENT_TIME, tzinfo=ET)
    return session_open_close(expiry)[1]


def vix_settlement_moment(expiry: date) -> datetime:
    """VIX options and futures settle on the SPX opening prints, 09:30 ET on their expiry."""
    _check_date(expiry, "VIX expiry")
    if not is_session(expiry):
        raise ValueError(f"VIX expiry {expiry} is not an NYSE session")
    return datetime.combine(expiry, AM_SETTLEMENT_TIME, tzinfo=ET)


def settlement_epochs(expiries: Sequence[date] | np.ndarray, am_settled) -> np.ndarray:
    """Vectorised settlement moments as UTC epoch seconds (float64).

    AM: 09:30 ET = the session open on a regular session; PM: the session close. Expiries must
    be sessions.
    """
    days = np.asarray(expiries)
    if days.dtype != np.dtype("datetime64[D]"):
        days = _to_day64(days)
    am = np.asarray(am_settled, dtype=bool)
    if days.size <= SETTLEMENT_CACHE_MAX_EXPIRIES:
        return _settlement_epochs_cached(days.tobytes(), days.shape, am.tobytes(),
                                         am.shape).copy()
    return _settlement_epochs(days, am)


@lru_cache(maxsize=SETTLEMENT_CACHE_SIZE)
def _settlement_epochs_cached(days: bytes, shape: tuple, am: bytes, am_shape: tuple
                              ) -> np.ndarray:
    """`_settlement_epochs` per small expiry set, by value (bytes and shapes): a backtest asks
    for the same held expiries every day, an evaluation for the same few several times. The
    caller gets a copy (the cached array is never handed out)."""
    return _settlement_epochs(np.frombuffer(days, "datetime64[D]").reshape(shape),
                              np.frombuffer(am, bool).reshape(am_shape))


def _settlement_epochs(days: np.ndarray, am_settled: np.ndarray) -> np.ndarray:
    c = _cal()
    days = _to_day64(days)
    am = np.broadcast_to(am_settled, days.shape)
    idx = np.searchsorted(c.sessions, days)
    ok = (idx < len(c.sessions)) & (c.sessions[np.minimum(idx, len(c.sessions) - 1)] == days)
    if not ok.all():
        bad = days[~ok][0]
        raise ValueError(f"expiry {bad} is not an NYSE session")
    am_moment = _am_settlement_epochs()[idx]
    return np.where(am, am_moment, c.closes[idx].astype(np.float64))


@cache
def _am_settlement_epochs() -> np.ndarray:
    """09:30 ET of every session as UTC epoch seconds, once: the time-zone conversion per call
    was ~14 % of a backtest."""
    return _et_wall_epochs(_cal().sessions, AM_SETTLEMENT_TIME)


def _et_wall_epochs(days: np.ndarray, wall: time) -> np.ndarray:
    """UTC epoch seconds of ET wall-clock time `wall` on each day (DST-aware)."""
    local = pd.DatetimeIndex(days.ravel()) + pd.Timedelta(hours=wall.hour, minutes=wall.minute)
    utc = local.tz_localize(ET).tz_convert("UTC").tz_localize(None)
    return (utc.values.astype("datetime64[s]").astype(np.int64).astype(np.float64)
            .reshape(days.shape))


def years_to_settlement(asof: datetime, settle: datetime) -> float:
    """ACT/365 years from asof to settle, in real elapsed seconds, floored at 0."""
    return max(0.0, (_epoch(settle) - _epoch(asof)) / SECONDS_PER_YEAR)


def years_to_settlement_many(asof: datetime, settle_epochs: np.ndarray) -> np.ndarray:
    """Vectorised `years_to_settlement` over settlement moments given as UTC epoch seconds."""
    return np.maximum(0.0, (np.asarray(settle_epochs, float) - _epoch(asof)) / SECONDS_PER_YEAR)


def years_to_expiry_many(asof: datetime, expiries, am_settled) -> np.ndarray:
    """ACT/365 years to each expiry's settlement moment (AM 09:30, PM the close)."""
    return years_to_settlement_many(asof, settlement_epochs(expiries, am_settled))


@_date_cache
def _session_fraction_ahead(asof: datetime) -> tuple[np.datetime64, float, bool]:
    """(today as datetime64[D], fraction of today's session ahead, today is a session)."""
    c = _cal()
    today = _d64(et_date(asof))
    i = int(np.searchsorted(c.sessions, today))
    if i < len(c.sessions) and c.sessions[i] == today:
        t = _epoch(asof)
        o, cl = c.opens[i], c.closes[i]
        return today, float(np.clip((cl - t) / (cl - o), 0.0, 1.0)), True
    return today, 0.0, False


def sessions_to_expiry_many(asof: datetime, expiries, am_settled) -> np.ndarray:
    """METHOD §1 `n` for many expiries at once (searchsorted on the session array).

    n = f·[today is a session and counted] + #{sessions s : today < s ≤ expiry (PM) / < expiry
    (AM)}, where f is the fraction of today's session still ahead (1 before the open, 0 after
    the close). Today counts when today ≤ expiry (PM) or today < expiry (AM). Past expiries → 0.
    """
    c = _cal()
    days = _to_day64(expiries)
    am = np.broadcast_to(np.asarray(am_settled, dtype=bool), days.shape)
    today, frac, today_is_session = _session_fraction_ahead(asof)
    lo = np.searchsorted(c.sessions, today, side="right")
    hi = np.where(
        am,
        np.searchsorted(c.sessions, days, side="left"),
        np.searchsorted(c.sessions, days, side="right"),
    )
    later = np.maximum(hi - lo, 0).astype(np.float64)
    today_counts = np.where(am, today < days, today <= days) & today_is_session
    return later + np.where(today_counts, frac, 0.0)


def sessions_to_expiry(asof: datetime, expiry: date, am_settled: bool) -> float:
    return float(sessions_to_expiry_many(asof, np.array([_check_date(expiry, "expiry")]),
                                         np.array([am_settled]))[0])


def close_after_sessions(asof: datetime, n_sessions: float) -> float:
    """UTC epoch of the close of the session in which a count of `n_sessions` sessions from
    `asof` ends, counted as §1's n (the fraction of today's session still ahead first, then
    whole later sessions). n ≤ 0 gives asof itself."""
    if n_sessions <= 0:
        return _epoch(asof)
    c = _cal()
    today, frac, _ = _session_fraction_ahead(asof)
    if frac > 0 and n_sessions <= frac + 1e-12:
        later = 0  # ends within today's session
    else:
        later = math.ceil(n_sessions - frac - FLOAT_TOL)
    # today's index if today is a session, else the last session before it; then `later` on
    i = int(np.searchsorted(c.sessions, today, side="right")) - 1 + later
    if i >= len(c.sessions):
        raise CalendarRangeError(f"{n_sessions} sessions from {asof} run past the calendar")
    return float(c.closes[i])


# --- expiries ------------------------------------------------------------------------------

def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (FRIDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (THIRD_FRIDAY_WEEK - 1))


def _months(start: date, end: date) -> list[tuple[int, int]]:
    out = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _add_month(y: int, m: int, k: int) -> tuple[int, int]:
    n = y * 12 + (m - 1) + k
    return n // 12, n % 12 + 1


def spx_monthly_expiry(year: int, month: int) -> date:
    """Standard SPX expiry: the third Friday, or the preceding session if it is a holiday."""
    return session_or_previous(third_friday(year, month))


def spx_expiries(start: date, end: date, root: str = "SPX") -> list[date]:
    """Expiries of `root` in [start, end].

    SPX: monthly (third Friday, preceding session on a holiday). SPXW and XSP: every session —
    daily expiries exist since 2022; earlier years had fewer (Mon/Wed/Fri, quarterlies), which
    this simplification ignores.
    """
    return list(_spx_expiries(start, end, root))


@_date_cache
def _spx_expiries(start: date, end: date, root: str) -> tuple[date, ...]:
    _check_date(start, "start")
    _check_date(end, "end")
    if is_am_settled(root):
        out = [spx_monthly_expiry(y, m) for y, m in _months(start, end)]
        return tuple(d for d in out if start <= d <= end)
    return tuple(sessions_in_range(start, end))


@dataclass(frozen=True, order=True)
class VixExpiry:
    date: date
    monthly: bool


def vix_monthly_expiry(year: int, month: int) -> date:
    """Cboe rule: the Wednesday 30 days before the SPX standard expiry of the next month.

    If that third Friday is a holiday, count 30 days back from the session before it; if the
    resulting day is not a session, take the preceding session.
    """
    ny, nm = _add_month(year, month, 1)
    spx = spx_monthly_expiry(ny, nm)
    return session_or_previous(spx - timedelta(days=VIX_SETTLEMENT_OFFSET_DAYS))


def vix_expiries(start: date, end: date, weeklies: bool = True) -> list[VixExpiry]:
    """VIX expiries in [start, end], sorted. Weeklies: every other Wednesday (preceding session
    on a holiday), except in a week that holds a monthly expiry."""
    return list(_vix_expiries(start, end, weeklies))


@_date_cache
def _vix_expiries(start: date, end: date, weeklies: bool) -> tuple[VixExpiry, ...]:
    _check_date(start, "start")
    _check_date(end, "end")
    first = _add_month(start.year, start.month, -1)
    months = _months(date(*first, 1), end)
    monthlies = []
    for y, m in months:
        try:
            monthlies.append(vix_monthly_expiry(y, m))
        except CalendarRangeError:
            continue  # next month's SPX expiry beyond the calendar
    out = {d: VixExpiry(d, True) for d in monthlies if start <= d <= end}
    if weeklies:
        monthly_weeks = {d.isocalendar()[:2] for d in monthlies}
        wed = start + timedelta(days=(WEDNESDAY - start.weekday()) % 7)
        while wed <= end:
            if wed.isocalendar()[:2] not in monthly_weeks:
                d = session_or_previous(wed)
                if start <= d <= end and d not in out:
                    out[d] = VixExpiry(d, False)
            wed += timedelta(days=7)
    return tuple(sorted(out.values()))


# --- session phase -------------------------------------------------------------------------

class SessionPhase(StrEnum):
    PRE_MARKET = "PRE_MARKET"
    REGULAR = "REGULAR"
    AFTER_HOURS = "AFTER_HOURS"
    CLOSED = "CLOSED"


def session_phase(ts: datetime) -> SessionPhase:
    """Pre-market 04:00–09:30 ET on a session, regular open→close, after hours close→20:00;
    CLOSED otherwise (nights, weekends, holidays). Intervals are [start, end)."""
    d = et_date(ts)
    if not is_session(d):
        return SessionPhase.CLOSED
    t = _epoch(ts)
    o, c = session_open_close(d)
    pre = datetime.combine(d, PRE_MARKET_START, tzinfo=ET)
    post = datetime.combine(d, AFTER_HOURS_END, tzinfo=ET)
    if pre.timestamp() <= t < o.timestamp():
        return SessionPhase.PRE_MARKET
    if o.timestamp() <= t < c.timestamp():
        return SessionPhase.REGULAR
    if c.timestamp() <= t < post.timestamp():
        return SessionPhase.AFTER_HOURS
    return SessionPhase.CLOSED
