"""Scheduled work: the pre-market report, the official close, the intraday watch (issue 7).

Everything runs on PTB's JobQueue (APScheduler 3). The triggers are pure objects whose next
fire times can be computed for any moment (tested directly); the rounds take `now` as an
argument, so tests drive them with an injected clock and never sleep.

A round fetches the market once, evaluates every subscribed user's positions together (one
`core.evaluate.evaluate` call per distinct set of parameter overrides), then fans out through
the application's rate limiter. The store's report log and alert log make each report and each
alert at most once per user.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import warnings
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from html import escape as html_escape
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from telegram.error import Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.marketdata.history import OFFICIAL_CLOSE_COLUMNS
from bot.render import render, split_message
from core import calendar as cal
from core.models import MarketSnapshot
from core.params import DEFAULT_PARAMS

log = logging.getLogger(__name__)

KIND_PREMARKET = "premarket"
REPORT_JOB_PREFIX = "report:"
CLOSE_JOB = "official-close"
CLOSE_RETRY_JOB = "official-close-retry"
INTRADAY_JOB = "intraday-watch"
CATCHUP_JOB = "startup-catch-up"
CALENDAR_SEARCH_DAYS = 15  # longest NYSE closure (2001, 2012) is far shorter
# Roll verdicts worth a message the moment they appear (METHOD §8): act now or stop waiting.
ALERT_OUTCOMES = ("HEDGE_FIRST", "CLEARED", "TAKE_PROFIT", "EXIT_LOSS_LIMIT", "SETTLE_OR_CLOSE")
STATE_ORDER = ("CALM", *(name for name, _ in DEFAULT_PARAMS.state_levels()))
MARKET_UNAVAILABLE = "MARKET_DATA_UNAVAILABLE"
MARKET_FALLBACK = "MARKET_DATA_FALLBACK"
# A VIX quote this much older than the official close is not the close print (a delayed feed
# at 16:15 still shows ~16:00); the offline sample's close print is stamped 16:14.
VIX_CLOSE_PRINT_TOLERANCE = timedelta(minutes=2)
REPORT_CHART_CAPTION = ("EDR at the last 120 official closes, with the state bands and the "
                        "trigger line; the diamond is this morning's reading.")


# --- settings ------------------------------------------------------------------------------


class JobConfigError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid scheduler settings:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class JobSettings:
    """Scheduler settings (ALVH_* in .env / the environment; see .env.example)."""

    intraday_minutes: int = 15  # intraday watch period; must divide 60 (runs on :00, :15, ...)
    misfire_grace_s: int = 3600  # a job may start this late (after a stall) and still run
    retry_after_max_s: float = 60.0  # a longer 429 "retry after" fails that user's send
    send_attempts: int = 3  # sends per message when Telegram answers 429 (after the limiter's)
    concurrent_sends: int = 64  # sends in flight; the rate limiter sets the actual pace
    intraday_enabled: bool = True
    close_retry_minutes: int = 5  # the close job tries again while the close print is missing

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None) -> JobSettings:
        env = env or {}
        problems: list[str] = []

        def number(name: str, default: float, kind: type = int, low: float = 1) -> Any:
            text = (env.get(name) or "").strip()
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                value = None
            if value is None or value < low:
                problems.append(f"{name} {text!r} must be a {kind.__name__} of at least {low}")
                return default
            return value

        minutes = number("ALVH_INTRADAY_MINUTES", cls.intraday_minutes)
        if 60 % minutes:
            problems.append(f"ALVH_INTRADAY_MINUTES {minutes} must divide 60 (1, 5, 15, 30...)")
        enabled_text = (env.get("ALVH_INTRADAY_ALERTS") or "on").strip().lower()
        if enabled_text not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
            problems.append(f"ALVH_INTRADAY_ALERTS {enabled_text!r} must be on or off")
        result = cls(
            intraday_minutes=minutes,
            misfire_grace_s=number("ALVH_JOB_MISFIRE_GRACE_S", cls.misfire_grace_s),
            retry_after_max_s=number("ALVH_RETRY_AFTER_MAX_S", cls.retry_after_max_s, float, 0),
            send_attempts=number("ALVH_SEND_ATTEMPTS", cls.send_attempts),
            concurrent_sends=number("ALVH_CONCURRENT_SENDS", cls.concurrent_sends),
            intraday_enabled=enabled_text in ("on", "1", "true", "yes"),
            close_retry_minutes=number("ALVH_CLOSE_RETRY_MINUTES", cls.close_retry_minutes),
        )
        if problems:
            raise JobConfigError(problems)
        return result


# --- when things run (pure) ----------------------------------------------------------------


def _hhmm(text: str) -> dtime:
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
    return report_moment(now.astimezone(ZoneInfo(tz)).date(), _hhmm(report_time), tz)


def in_quiet_hours(quiet_start: str | None, quiet_end: str | None, tz: str,
                   now: datetime) -> bool:
    """[start, end) in the user's zone; a window may wrap midnight (22:00–07:00)."""
    if not quiet_start or not quiet_end:
        return False
    t = now.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
    start, end = _hhmm(quiet_start), _hhmm(quiet_end)
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def state_rank(state: str) -> int:
    return STATE_ORDER.index(state) if state in STATE_ORDER else -1


# --- alerts (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    key: str  # record_alert key: the same key is never sent twice to a user
    kind: str  # state, roll, exit, breach
    data: dict[str, Any] = field(default_factory=dict)


def market_alerts(market: Any, session: date) -> list[Alert]:
    """The EDR state moved up from the official (last close) state."""
    state, official = getattr(market, "state", ""), getattr(market, "official_state", "")
    if state_rank(state) > state_rank(official) >= 0:
        return [Alert(f"state:{session.isoformat()}:{state}", "state",
                      {"state": state, "official": official, "edr_pct": market.edr_pct})]
    return []


def position_alerts(record: Any, spx: float | None, session: date) -> list[Alert]:
    """Roll verdicts worth acting on, hedge exit signals, and breached short strikes."""
    out: list[Alert] = []
    s = session.isoformat()
    pid = record.position_id
    base = {"position_id": pid, "label": record.label, "strikes": record.strikes}
    roll = record.roll
    if roll is not None and str(roll.outcome) in ALERT_OUTCOMES:
        out.append(Alert(f"roll:{pid}:{roll.outcome}:{s}", "roll",
                         {**base, "outcome": str(roll.outcome), "rule": roll.rule,
                          "reason": roll.reason}))
    se = record.second_engine
    for signal in (se.exit_signals if se is not None else ()):
        out.append(Alert(f"exit:{pid}:{signal[:60]}:{s}", "exit", {**base, "signal": signal}))
    if spx is not None and record.problems == ():
        k2, k3 = record.strikes[1], record.strikes[2]
        if spx < k2:
            out.append(Alert(f"breach:{pid}:put:{s}", "breach",
                             {**base, "side": "put", "strike": k2, "spx": spx}))
        elif spx > k3:
            out.append(Alert(f"breach:{pid}:call:{s}", "breach",
                             {**base, "side": "call", "strike": k3, "spx": spx}))
    return out


def _close_values(market: Any) -> dict[str, float | None]:
    """The closes the engine accepted for the official close (SPX, VIX, VIX9D, VIX3M, VVIX);
    a missing or stale quote is None (unknown), so it never fills the close history."""
    out: dict[str, float | None] = {}
    for name in OFFICIAL_CLOSE_COLUMNS:
        value = getattr(getattr(market, name, None), "value", None)
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value) and value > 0)
        out[name] = float(value) if ok else None
    return out


def _edr_chart_png(history: Any, asof: datetime, params: Any, today_pct: float | None,
                   today_state: str | None) -> bytes:
    """The /market EDR chart (bot.charts), drawn without touching the event loop."""
    from bot import charts

    if history is None:
        raise ValueError("no close history to draw")
    data = charts.edr_history(history, asof, params, today_pct=today_pct,
                              today_state=today_state)
    return charts.edr_history_png(data, asof)


# --- delivery ------------------------------------------------------------------------------


@dataclass
class RoundResult:
    """What a round did, for logs, tests and the benchmark."""

    kind: str
    session: date | None = None
    users: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    duplicate: int = 0
    blocked: int = 0
    evaluate_s: float = 0.0
    deliver_s: float = 0.0
    evaluate_calls: int = 0
    charts: int = 0  # EDR-history photos delivered after reports (users with report_chart)
    chart_renders: int = 0  # charts drawn this round (one per parameter group at most)
    market_note: str = ""
    outcomes: dict[int, str] = field(default_factory=dict)  # user → sent/failed/...


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Scheduler:
    """The rounds. `bot` is PTB's (rate-limited) bot, `services` the `bot.services.Services`
    (store, provider, data clock). `sleep` is injectable so tests never wait."""

    def __init__(self, bot: Any, services: Any, settings: JobSettings | None = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 evaluate: Callable[..., Any] | None = None):
        self.bot = bot
        self.services = services
        self.settings = settings or JobSettings()
        self.sleep = sleep
        self._evaluate = evaluate
        self._last_market: Any = None  # the last good MarketData, for an outage
        self.last_round: dict[str, RoundResult] = {}  # kind → the latest round (ops, tests)
        self.evaluate_calls = 0  # evaluate calls made (the one-pass promise is checked on it)
        self.market_note = ""  # the last round's data note ("" or MARKET_DATA_*)
        self.close_pending: date | None = None  # a close whose data were not there yet

    @property
    def store(self) -> Any:
        return self.services.store

    def evaluate_fn(self) -> Callable[..., Any]:
        if self._evaluate is None:
            from core.evaluate import evaluate

            self._evaluate = evaluate
        return self._evaluate

    # --- market data and evaluation ----------------------------------------------------------

    async def market(self) -> tuple[Any, Any, Any, str]:
        """(snapshot, history, events, note). An outage falls back to the last good data (its
        quotes then read as stale to the engine), else an empty snapshot (the engine reports
        the missing quotes); the report still goes out."""
        from bot.services import UserError

        try:
            m = await self.services.market_data()
        except UserError as exc:
            log.warning("scheduled round without fresh market data: %s", exc)
            if self._last_market is not None:
                m = self._last_market
                snap = dataclasses.replace(m.snapshot, flags=(*m.snapshot.flags, MARKET_FALLBACK))
                return snap, m.history, m.events, MARKET_FALLBACK
            empty = MarketSnapshot(asof=self.services.now(), spx=None, vix=None,
                                   flags=(MARKET_UNAVAILABLE,))
            history = await self.services.with_official_closes(
                await self._maybe(self.services.provider.history))
            events = await self._maybe(self.services.provider.events)
            return empty, history, events, MARKET_UNAVAILABLE
        self._last_market = m
        return m.snapshot, m.history, m.events, ""

    @staticmethod
    async def _maybe(fetch: Callable[[], Awaitable[Any]]) -> Any:
        """History or events on their own (often cached) when the snapshot failed; None if
        they fail too (the engine then says what it lacks)."""
        try:
            return await fetch()
        except Exception as exc:
            log.warning("%s unavailable too: %s", getattr(fetch, "__name__", "data"), exc)
            return None

    async def evaluate_books(self, books: Sequence[Any]) -> tuple[dict[int, Any], Any, int]:
        """One `evaluate` call per distinct parameter overrides over every book in it.
        Returns ({user: per-user Evaluation}, market record, number of evaluate calls)."""
        per_user, market, calls, _ = await self._evaluate_round(books)
        return per_user, market, calls

    async def _evaluate_round(self, books: Sequence[Any]
                              ) -> tuple[dict[int, Any], Any, int, Any]:
        """`evaluate_books`, plus the close history the round used (for the EDR chart)."""
        snapshot, history, events, self.market_note = await self.market()
        calls_before = self.evaluate_calls
        asof = self.services.now()
        groups: dict[str, list[Any]] = {}
        for b in books:
            key = json.dumps(b.settings.param_overrides, sort_keys=True)
            groups.setdefault(key, []).append(b)
        per_user: dict[int, Any] = {}
        market = None
        for members in groups.values():
            try:
                params = members[0].settings.params()
            except Exception:  # overrides the store took but Params refuses: defaults
                log.exception("parameter overrides of users %s refused; defaults used",
                              [b.settings.tg_user_id for b in members])
                params = DEFAULT_PARAMS
            try:
                batches = [await self._evaluate_batch(members, snapshot, history, events,
                                                      params, asof)]
            except Exception:  # one bad book must not cost everyone their report
                log.exception("group evaluation failed; evaluating its users one by one")
                batches = []
                for b in members:
                    try:
                        batches.append(await self._evaluate_batch(
                            [b], snapshot, history, events, params, asof))
                    except Exception:
                        log.exception("evaluation failed for user %s", b.settings.tg_user_id)
            for ev_market, views in batches:
                market = ev_market
                per_user.update(views)
        if market is None:  # nobody to evaluate: the market block alone
            ev = await asyncio.to_thread(self.evaluate_fn(), [], snapshot, history, events,
                                         DEFAULT_PARAMS, asof)
            market = ev.market
        return per_user, market, self.evaluate_calls - calls_before, history

    async def _evaluate_batch(self, members: Sequence[Any], snapshot: Any, history: Any,
                              events: Any, params: Any, asof: datetime
                              ) -> tuple[Any, dict[int, Any]]:
        """ONE evaluate call over all members' positions; each member gets an Evaluation view
        holding only their records (built lazily, when their report is rendered)."""
        positions = [p for b in members for p in b.positions]
        self.evaluate_calls += 1
        ev = await asyncio.to_thread(self.evaluate_fn(), positions, snapshot, history, events,
                                     params, asof)
        views: dict[int, Any] = {}
        start = 0
        for b in members:
            n = len(b.positions)
            records = ev.positions[start:start + n] if n else []
            start += n
            views[b.settings.tg_user_id] = dataclasses.replace(ev, positions=records)
        return ev.market, views

    # --- sending -------------------------------------------------------------------------------

    async def send(self, user_id: int, chat_id: int, html: str) -> str:
        """Send one message (split if long): "sent", "blocked" (Forbidden: unsubscribed) or
        "failed". 429s are retried after the delay Telegram asks for, within bounds."""

        async def parts() -> None:
            for part in split_message(html):
                await self._send_part(chat_id, part)

        return await self._delivered(user_id, parts)

    async def send_photo(self, user_id: int, chat_id: int, png: bytes, caption: str) -> str:
        """Send one PNG as a photo with a plain-text caption; outcomes and 429/Forbidden
        handling as `send` (the same rate-limited bot)."""
        text = html_escape(caption, quote=False)

        async def photo() -> None:
            await self._retrying(chat_id, lambda: self.bot.send_photo(chat_id, png, caption=text))

        return await self._delivered(user_id, photo)

    async def _delivered(self, user_id: int, attempt: Callable[[], Awaitable[None]]) -> str:
        try:
            await attempt()
        except Forbidden as exc:
            log.info("user %s blocked the bot (%s): unsubscribed", user_id, exc.message)
            try:
                await asyncio.to_thread(self.store.unsubscribe, user_id)
            except Exception:
                log.exception("could not unsubscribe user %s", user_id)
            return "blocked"
        except TelegramError as exc:
            log.warning("send to user %s failed: %s", user_id, exc)
            return "failed"
        except Exception:  # a bug or a dead connection: this user only
            log.exception("send to user %s failed", user_id)
            return "failed"
        return "sent"

    async def _send_part(self, chat_id: int, text: str) -> None:
        await self._retrying(chat_id, lambda: self.bot.send_message(chat_id, text))

    async def _retrying(self, chat_id: int, call: Callable[[], Awaitable[Any]]) -> None:
        attempts = max(1, self.settings.send_attempts)
        for attempt in range(1, attempts + 1):
            try:
                await call()
                return
            except RetryAfter as exc:
                wait = _retry_seconds(exc)
                if attempt == attempts or wait > self.settings.retry_after_max_s:
                    raise
                log.info("Telegram asked to retry after %.0f s (chat %s)", wait, chat_id)
                await self.sleep(wait)

    async def _fan_out(self, items: Iterable[Any], work: Callable[[Any], Awaitable[str]],
                       result: RoundResult) -> None:
        gate = asyncio.Semaphore(self.settings.concurrent_sends)

        async def one(item: Any) -> None:
            async with gate:
                user_id = item.settings.tg_user_id
                try:
                    outcome = await work(item)
                except Exception:  # one user's failure never stops the others
                    log.exception("scheduled delivery to user %s failed", user_id)
                    outcome = "failed"
                result.outcomes[user_id] = outcome
                if outcome == "duplicate":
                    result.duplicate += 1
                elif outcome in ("sent", "failed", "blocked", "skipped"):
                    setattr(result, outcome, getattr(result, outcome) + 1)

        await asyncio.gather(*(one(i) for i in items))

    # --- the pre-market report -------------------------------------------------------------------

    async def report_round(self, now: datetime, *, only: Callable[[Any], bool] | None = None,
                           kind: str = KIND_PREMARKET) -> RoundResult:
        """Send every due report (`only` narrows the users, e.g. one job's time and zone).
        A report due before the open but reached after it is claimed as skipped, with the
        reason, so it is logged once and never sent late."""
        loop = asyncio.get_running_loop()
        result = RoundResult(kind, session=None)
        books = await asyncio.to_thread(self.store.subscriber_books)
        to_send, to_skip = [], []
        for b in books:
            s = b.settings
            if only is not None and not only(s):
                continue
            moment = due_today(s.report_time, s.timezone, now)
            decision = report_decision(moment, now)
            if decision == "send":
                to_send.append((b, report_session(moment)))
            elif decision == "skip":
                to_skip.append((b, report_session(moment)))
        result.users = len(to_send) + len(to_skip)
        if to_send:
            result.session = to_send[0][1]
        for b, session in to_skip:
            uid = b.settings.tg_user_id
            if await asyncio.to_thread(self.store.record_report, uid, session, kind):
                reason = f"missed until after the open of {session.isoformat()}"
                await asyncio.to_thread(self.store.report_skipped, uid, session, kind, reason)
                log.warning("report for user %s skipped: %s", uid, reason)
                result.skipped += 1
        if not to_send:
            self.last_round[kind] = result
            return result

        t0 = loop.time()
        per_user, _, result.evaluate_calls, history = await self._evaluate_round(
            [b for b, _ in to_send])
        result.evaluate_s = loop.time() - t0
        result.market_note = self.market_note
        provider = getattr(self.services.provider, "name", "provider")
        asof = self.services.now()
        from bot.services import CheckResult

        sessions = {b.settings.tg_user_id: s for b, s in to_send}
        # The EDR chart is drawn once per parameter group (state bands and trigger line come
        # from the parameters; with no overrides that is once per round) on first need, and
        # the same PNG bytes go to every user of the group.
        charts: dict[str, asyncio.Task] = {}

        def chart_for(book: Any) -> Awaitable[bytes | None]:
            key = json.dumps(book.settings.param_overrides, sort_keys=True)
            if key not in charts:  # no await between the test and the insert: one task
                market = per_user[book.settings.tg_user_id].market
                charts[key] = asyncio.ensure_future(
                    self._report_chart(book.settings, history, market, asof, result))
            return charts[key]

        async def deliver(book: Any) -> str:
            uid = book.settings.tg_user_id
            session = sessions[uid]
            if not await asyncio.to_thread(self.store.record_report, uid, session, kind):
                return "duplicate"  # sent by an earlier run (before a restart, say)
            if uid not in per_user:  # the engine failed on this book (logged above)
                await asyncio.to_thread(self.store.report_sent, uid, session, kind, ok=False,
                                        error="evaluation failed")
                return "failed"
            try:
                check = CheckResult(asof, per_user[uid], list(book.positions), provider,
                                    self.services.offline)
                html = render("report", result=check)
            except Exception as exc:
                log.exception("report for user %s could not be built", uid)
                await asyncio.to_thread(self.store.report_sent, uid, session, kind, ok=False,
                                        error=f"report: {type(exc).__name__}")
                return "failed"
            chat = book.settings.chat_id or uid
            outcome = await self.send(uid, chat, html)
            await asyncio.to_thread(self.store.report_sent, uid, session, kind,
                                    ok=outcome == "sent", error=None if outcome == "sent"
                                    else outcome)
            if outcome == "sent" and getattr(book.settings, "report_chart", False):
                # the report is delivered and recorded; the picture only adds to it
                png = await chart_for(book)
                if png is not None:
                    photo = await self.send_photo(uid, chat, png, REPORT_CHART_CAPTION)
                    if photo == "sent":
                        result.charts += 1
                    else:
                        log.warning("EDR chart for user %s not delivered: %s", uid, photo)
            return outcome

        t1 = loop.time()
        await self._fan_out([b for b, _ in to_send], deliver, result)
        result.deliver_s = loop.time() - t1
        log.info("report round %s: %s", result.session, _summary(result))
        self.last_round[kind] = result
        return result

    async def _report_chart(self, settings: Any, history: Any, market: Any, asof: datetime,
                            result: RoundResult) -> bytes | None:
        """The EDR-history PNG for the report (drawn in a worker thread), or None, logged,
        when it cannot be drawn: the report never depends on its picture."""
        try:
            params = settings.params()
        except Exception:  # as in the evaluation: refused overrides fall back to the defaults
            params = DEFAULT_PARAMS
        result.chart_renders += 1
        try:
            return await asyncio.to_thread(_edr_chart_png, history, asof, params,
                                           getattr(market, "edr_pct", None),
                                           getattr(market, "state", None))
        except Exception as exc:
            log.warning("EDR chart for the report not drawn: %s", exc,
                        exc_info=not isinstance(exc, ValueError))
            return None

    # --- the official close ----------------------------------------------------------------------

    async def close_round(self, now: datetime) -> tuple[date, float, str] | None:
        """Record the EDR and state of the latest VIX close at or before `now` (the job runs
        at the close; a start-up catch-up the next morning records a missed one). Only data
        taken between that close and the next open counts as the close. Idempotent: a reading
        already stored is kept. None when there is nothing to record."""
        try:
            close = cal.last_official_close(now, vix=True)
            session = cal.et_date(close)
            next_open = cal.session_open_close(cal.next_session(session))[0]
        except cal.CalendarRangeError:
            return None
        asof = self.services.now()  # the data's clock (offline: the sample's moment)
        if not close <= asof < next_open:
            log.info("official close of %s not recorded: the data is as of %s", session, asof)
            return None
        self.close_pending = None
        snapshot, history, events, note = await self.market()
        if note:
            log.warning("official close of %s not recorded: market data unavailable", session)
            self.close_pending = session
            return None
        vix = snapshot.vix
        if vix is not None and vix.asof < close - VIX_CLOSE_PRINT_TOLERANCE:
            # a delayed feed has not reached the close print yet: try again a little later
            log.info("official close of %s: VIX quote is from %s, before the close; retrying",
                     session, vix.asof)
            self.close_pending = session
            return None
        from core.evaluate import evaluate_market

        ctx = await asyncio.to_thread(evaluate_market, snapshot, history, events,
                                      DEFAULT_PARAMS, asof)
        market = getattr(ctx, "record", ctx)
        edr, state = getattr(market, "edr_pct", None), getattr(market, "state", None)
        if edr is None or not state:
            log.warning("official close of %s not recorded: no EDR (%s)", session,
                        "; ".join(getattr(market, "problems", ()) or ()))
            return None
        source = getattr(market, "edr_source", "") or "close"
        stored = await asyncio.to_thread(partial(
            self.store.record_edr_reading, session, float(edr), str(state), source[:32],
            **_close_values(market)))
        log.info("official close %s: EDR %.2f %% %s%s", session, edr, state,
                 "" if stored else " (already recorded)")
        return session, float(edr), str(state)

    # --- the intraday watch -------------------------------------------------------------------

    async def intraday_round(self, now: datetime) -> RoundResult:
        result = RoundResult("alert")
        if cal.session_phase(now) is not cal.SessionPhase.REGULAR:
            return result
        session = cal.et_date(now)
        result.session = session
        books = [b for b in await asyncio.to_thread(self.store.subscriber_books)
                 if b.settings.alerts_enabled and not in_quiet_hours(
                     b.settings.quiet_start, b.settings.quiet_end, b.settings.timezone, now)]
        result.users = len(books)
        if not books:
            return result
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        per_user, market, result.evaluate_calls = await self.evaluate_books(books)
        result.evaluate_s = loop.time() - t0
        result.market_note = self.market_note
        spx = getattr(getattr(market, "spx", None), "value", None)
        common = market_alerts(market, session)

        async def deliver(book: Any) -> str:
            uid = book.settings.tg_user_id
            ev = per_user.get(uid)
            candidates = list(common)
            for record in (ev.positions if ev is not None else ()):
                candidates += position_alerts(record, spx, session)
            fresh = [a for a in candidates
                     if await asyncio.to_thread(self.store.record_alert, uid, a.key)]
            if not fresh:
                return "duplicate"
            html = render("alert", alerts=fresh, market=market)
            return await self.send(uid, book.settings.chat_id or uid, html)

        await self._fan_out(books, deliver, result)
        if result.sent or result.failed or result.blocked:
            log.info("intraday round %s: %s", now.isoformat(timespec="minutes"),
                     _summary(result))
        return result

    # --- start-up ---------------------------------------------------------------------------

    async def catch_up(self, now: datetime) -> RoundResult:
        """After a restart or downtime: today's missed reports go out if the market has not
        opened; otherwise they are recorded as skipped (and logged). Also records a missed
        official close."""
        result = await self.report_round(now)
        try:
            await self.close_round(now)
        except Exception:
            log.exception("official close catch-up failed")
        return result


def _summary(r: RoundResult) -> str:
    return (f"{r.users} users, {r.sent} sent, {r.failed} failed, {r.blocked} blocked, "
            f"{r.skipped} skipped, {r.duplicate} already done; evaluation {r.evaluate_s:.2f} s "
            f"in {r.evaluate_calls} call(s), delivery {r.deliver_s:.2f} s"
            + (f", {r.charts} EDR chart(s) from {r.chart_renders} render(s)"
               if r.chart_renders else ""))


# --- the JobQueue --------------------------------------------------------------------------


def _real_now() -> datetime:
    return datetime.now(UTC)


def _clock(application: Any) -> Callable[[], datetime]:
    """The rounds' clock: the application's (live: the real time; offline: the sample's
    moment, a close, so an offline bot sends no surprise reports or alerts). Tests may put
    their own in bot_data["jobs_clock"]."""
    clock = application.bot_data.get("jobs_clock")
    if clock is None:
        clock = getattr(application.bot_data.get("services"), "clock", None) or _real_now
    return clock


def scheduler_of(application: Any) -> Scheduler:
    sched = application.bot_data.get("scheduler")
    if sched is None:
        settings = application.bot_data.get("settings")
        env = getattr(settings, "subsystem_env", None)
        sched = Scheduler(application.bot, application.bot_data["services"],
                          JobSettings.from_env(env))
        application.bot_data["scheduler"] = sched
    return sched


def report_job_name(report_time: str, tz: str) -> str:
    return f"{REPORT_JOB_PREFIX}{tz}@{report_time}"


def _job_kwargs(application: Any, trigger: BaseTrigger) -> dict[str, Any]:
    grace = scheduler_of(application).settings.misfire_grace_s
    return {"trigger": trigger, "misfire_grace_time": grace, "coalesce": True}


async def _report_job(context: Any) -> None:
    report_time, tz = context.job.data
    now = _clock(context.application)()
    if report_session(now) is None:  # belt and braces: the trigger already skips them
        return
    await scheduler_of(context.application).report_round(
        now, only=lambda s: s.report_time == report_time and s.timezone == tz)


async def _close_job(context: Any) -> None:
    """The close; while its data are missing, again every ALVH_CLOSE_RETRY_MINUTES until the
    next open (after which live data can no longer be taken for the close)."""
    sched = scheduler_of(context.application)
    now = _clock(context.application)()
    await sched.close_round(now)
    pending = sched.close_pending
    if pending is None or context.application.job_queue is None:
        return
    retry = timedelta(minutes=sched.settings.close_retry_minutes)
    if now + retry < cal.session_open_close(cal.next_session(pending))[0]:
        context.application.job_queue.run_once(_close_job, when=retry, name=CLOSE_RETRY_JOB)


async def _intraday_job(context: Any) -> None:
    await scheduler_of(context.application).intraday_round(_clock(context.application)())


async def _catch_up_job(context: Any) -> None:
    await scheduler_of(context.application).catch_up(_clock(context.application)())


async def sync_report_jobs(application: Any) -> dict[str, Any]:
    """One report job per distinct (report time, zone) among subscribers; each job's round
    covers all of its users at once. Adds the missing jobs and removes the unused ones.
    Serialised: two /settings at once must not both add the same job."""
    lock = application.bot_data.setdefault("jobs_sync_lock", asyncio.Lock())
    async with lock:
        return await _sync_report_jobs(application)


async def _sync_report_jobs(application: Any) -> dict[str, Any]:
    jq = application.job_queue
    store = application.bot_data["services"].store
    subscribers = await asyncio.to_thread(store.list_subscribers)
    wanted = {report_job_name(s.report_time, s.timezone): (s.report_time, s.timezone)
              for s in subscribers}
    existing = {j.name: j for j in jq.jobs() if (j.name or "").startswith(REPORT_JOB_PREFIX)}
    for name, job in existing.items():
        if name not in wanted:
            job.schedule_removal()
    jobs: dict[str, Any] = {}
    for name, (report_time, tz) in wanted.items():
        if name in existing:
            jobs[name] = existing[name]
            continue
        trigger = ReportTrigger(_hhmm(report_time), tz)
        jobs[name] = jq.run_custom(_report_job, job_kwargs=_job_kwargs(application, trigger),
                                   name=name, data=(report_time, tz))
    return jobs


async def schedule_all(application: Any) -> None:
    """Start-up: report jobs rebuilt from the store, the close and intraday jobs, and a
    catch-up pass for what was missed while the bot was down."""
    jq = application.job_queue
    if jq is None:
        log.warning("no JobQueue (install python-telegram-bot[job-queue]): no scheduled reports")
        return
    if getattr(application.bot_data.get("services"), "store", None) is None:
        log.warning("no store in the application: no scheduled reports")  # e.g. stub services
        return
    sched = scheduler_of(application)
    await sync_report_jobs(application)
    jq.run_custom(_close_job, job_kwargs=_job_kwargs(application, CloseTrigger()),
                  name=CLOSE_JOB)
    if sched.settings.intraday_enabled:
        trigger = IntradayTrigger(sched.settings.intraday_minutes)
        jq.run_custom(_intraday_job, job_kwargs=_job_kwargs(application, trigger),
                      name=INTRADAY_JOB)
    jq.run_once(_catch_up_job, when=0, name=CATCHUP_JOB)


setup = schedule_all  # the hook `bot.app` calls from post_init


def next_run(application: Any, report_time: str, tz: str) -> datetime | None:
    """The next run of the report job for (report_time, tz), from the JobQueue (its trigger
    skips non-sessions, so this run sends). None if no such job is scheduled."""
    jq = getattr(application, "job_queue", None)
    if jq is None:
        return None
    for job in jq.get_jobs_by_name(report_job_name(report_time, tz)):
        if job.next_t is not None and not job.removed:
            return job.next_t
    return None


async def on_settings_changed(application: Any, view: Any) -> Any:
    """After /settings, /subscribe, /unsubscribe: reschedule at once and show the next run
    from the JobQueue. `view` is the services' settings view; returns it with `next_report`."""
    data = application.bot_data
    if (getattr(application, "job_queue", None) is None
            or getattr(data.get("services"), "store", None) is None
            or not data.get("install_jobs", True)):
        return view
    try:
        await sync_report_jobs(application)
    except Exception:
        log.exception("rescheduling the reports failed")
        return view
    if not getattr(view, "subscribed", False):
        return view
    hhmm = view.report_time.strftime("%H:%M")
    when = next_run(application, hhmm, view.timezone)
    if when is None:
        return view
    return dataclasses.replace(view, next_report=when)
