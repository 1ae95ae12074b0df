"""When things run (pure): report moments in each user's zone on NYSE sessions, the official VIX
close, the intraday grid, quiet hours, and what to do with a report reached late.

The triggers are APScheduler 3 triggers whose next fire times can be computed for any moment
(tested directly); nothing here sends, reads the store or looks at the clock.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from core import calendar as cal

CALENDAR_SEARCH_DAYS = 15  # longest NYSE closure (2001, 2012) is far shorter


def hhmm(text: str) -> dtime:
    hours, minutes = text.split(":")
    return dtime(int(hours), int(minutes))


def report_session(moment: datetime) -> date | None:
    """The session a report at `moment` prepares: the New York date, if it is a session."""
    d = cal.et_date(moment)
    return d if cal.is_session(d) else None


def report_moment(day: date, report_time: dtime, tz: str) -> datetime:
    """`report_time` on the local `day` in `tz` (DST handled by zoneinfo)."""
    return datetime.combine(day, report_time, tzinfo=ZoneInfo(tz))


def next_report_moment(after: datetime, report_time: dtime, tz: str,
                       inclusive: bool = False) -> datetime | None:
    """The first moment after `after` (or at it, if `inclusive`) at `report_time` in `tz` whose
    New York date is an NYSE session. None when the calendar ends first."""
    zone = ZoneInfo(tz)
    start = after.astimezone(zone).date() - timedelta(days=1)  # a day back: zone offsets
    for offset in range(CALENDAR_SEARCH_DAYS):
        moment = datetime.combine(start + timedelta(days=offset), report_time, tzinfo=zone)
        if moment < after or (moment == after and not inclusive):
            continue
        try:
            if report_session(moment) is not None:
                return moment
        except cal.CalendarRangeError:
            return None
    return None


def next_close_run(after: datetime, inclusive: bool = False) -> datetime | None:
    """The next official VIX close (NYSE close + 15 min: 16:15 ET, 13:15 on early closes)."""
    try:
        d = cal.et_date(after)
        for _ in range(CALENDAR_SEARCH_DAYS):
            if cal.is_session(d):
                moment = cal.vix_close_time(d)
                if moment > after or (inclusive and moment == after):
                    return moment
            d += timedelta(days=1)
    except cal.CalendarRangeError:
        return None
    return None


def next_intraday_run(after: datetime, minutes: int, inclusive: bool = False) -> datetime | None:
    """The next multiple of `minutes` past the hour inside a regular session (open included,
    close excluded)."""
    step = timedelta(minutes=minutes)
    try:
        d = cal.et_date(after)
        for _ in range(CALENDAR_SEARCH_DAYS):
            if cal.is_session(d):
                open_, close = cal.session_open_close(d)
                t = max(open_, after)
                # round up to the grid of `minutes` (the grid is anchored at the hour)
                base = t.replace(minute=0, second=0, microsecond=0)
                k = -(-(t - base) // step)
                t = base + k * step
                if t == after and not inclusive:
                    t += step
                if t < close:
                    return t.astimezone(cal.ET)
            d += timedelta(days=1)
    except cal.CalendarRangeError:
        return None
    return None


class _Trigger(BaseTrigger):
    """An APScheduler 3 trigger from a `next(after, inclusive)` function: the scheduler's
    `get_next_fire_time(previous, now)` contract (first run ≥ now; later runs > previous)."""

    @abstractmethod
    def _next(self, after: datetime, inclusive: bool) -> datetime | None:
        """The first run at or after `after` (`inclusive`) or strictly after it."""

    def get_next_fire_time(self, previous_fire_time, now):
        if previous_fire_time is None:
            return self._next(now, True)
        return self._next(previous_fire_time, False)


class ReportTrigger(_Trigger):
    """Fires at `report_time` in `tz` on the days whose New York date is an NYSE session."""

    def __init__(self, report_time: dtime, tz: str):
        self.report_time = report_time
        self.tz = tz
        ZoneInfo(tz)  # fail now on a bad zone

    def _next(self, after, inclusive):
        return next_report_moment(after, self.report_time, self.tz, inclusive)

    def __str__(self) -> str:
        return f"report[{self.report_time:%H:%M} {self.tz}, NYSE sessions]"


class CloseTrigger(_Trigger):
    """Fires at each session's official VIX close."""

    def _next(self, after, inclusive):
        return next_close_run(after, inclusive)

    def __str__(self) -> str:
        return "official-close[NYSE close + 15 min]"


class IntradayTrigger(_Trigger):
    def __init__(self, minutes: int):
        self.minutes = minutes

    def _next(self, after, inclusive):
        return next_intraday_run(after, self.minutes, inclusive)

    def __str__(self) -> str:
        return f"intraday[every {self.minutes} min, regular hours]"


def report_decision(moment: datetime, now: datetime) -> str:
    """What to do with a report scheduled at `moment` when we get to it at `now`:
    "send", "skip" (it was due before the open and the market is open now), or "wait"."""
    session = report_session(moment)
    if session is None or moment > now:
        return "wait"
    open_ = cal.session_open_close(session)[0]
    if moment < open_ <= now:
        return "skip"
    vix_close = cal.vix_close_time(session)
    if moment < vix_close <= now:
        return "skip"  # an in-session report reached only after the close is stale
    return "send"  # on time, late within the same phase, or an evening report by choice


def due_today(report_time: str, tz: str, now: datetime) -> datetime:
    """The user's report moment of their local today."""
    return report_moment(now.astimezone(ZoneInfo(tz)).date(), hhmm(report_time), tz)


def in_quiet_hours(quiet_start: str | None, quiet_end: str | None, tz: str,
                   now: datetime) -> bool:
    """[start, end) in the user's zone; a window may wrap midnight (22:00–07:00)."""
    if not quiet_start or not quiet_end:
        return False
    t = now.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
    start, end = hhmm(quiet_start), hhmm(quiet_end)
    if start <= end:
        return start <= t < end
    return t >= start or t < end
