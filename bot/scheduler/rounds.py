"""What the scheduled jobs do: the pre-market report round, the official close, the intraday
watch, and the start-up catch-up (issue 7).

A round fetches the market once, evaluates every subscribed user's positions together (one
`core.evaluate.evaluate` call per distinct set of parameter overrides), then fans out through
`bot.scheduler.delivery`. The store's report log and alert log make each report and each alert
at most once per user. The rounds take `now` as an argument, so tests drive them with an
injected clock and never sleep; when they run is `bot.scheduler.triggers`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from bot.marketdata.history import OFFICIAL_CLOSE_COLUMNS
from bot.render import render
from bot.scheduler.alerts import book_alerts, market_alerts, position_alerts
from bot.scheduler.delivery import Delivery, RoundResult, error_text, summary
from bot.scheduler.settings import JobSettings
from bot.scheduler.triggers import due_today, in_quiet_hours, report_decision, report_session
from bot.services import ReportRetry, report_retry_due
from core import calendar as cal
from core.models import MarketSnapshot
from core.params import DEFAULT_PARAMS

log = logging.getLogger(__name__)

KIND_PREMARKET = "premarket"
MARKET_UNAVAILABLE = "MARKET_DATA_UNAVAILABLE"
MARKET_FALLBACK = "MARKET_DATA_FALLBACK"
# A VIX quote this much older than the official close is not the close print (a delayed feed
# at 16:15 still shows ~16:00); the offline sample's close print is stamped 16:14.
VIX_CLOSE_PRINT_TOLERANCE = timedelta(minutes=2)
REPORT_CHART_CAPTION = ("EDR at the last 120 official closes, with the state bands and the "
                        "trigger line; the diamond is this morning's reading.")


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


def _book_hedges_of(book_hedges: Any, key: Any) -> Any:
    """One user's book hedge, still lazy when the engine's are (`LazyBookHedges.subset`): the
    record is built when that user's report is rendered, not before the first one is sent."""
    subset = getattr(book_hedges, "subset", None)
    if subset is not None:
        return subset((key,))
    return {key: book_hedges[key]} if key in book_hedges else {}


class Scheduler:
    """The rounds. `bot` is PTB's (rate-limited) bot, `services` the `bot.services.Services`
    (store, provider, data clock); sending goes through `self.delivery`. `sleep` is injectable
    so tests never wait."""

    def __init__(self, bot: Any, services: Any, settings: JobSettings | None = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 evaluate: Callable[..., Any] | None = None):
        self.services = services
        self.settings = settings or JobSettings()
        self.delivery = Delivery(bot, self.settings,
                                 lambda user_id: self.store.unsubscribe(user_id), sleep=sleep)
        self._evaluate = evaluate
        self._last_market: Any = None  # the last good MarketData, for an outage
        self.last_round: dict[str, RoundResult] = {}  # kind → the latest round (ops, tests)
        self.evaluate_calls = 0  # evaluate calls made (the one-pass promise is checked on it)
        self.market_note = ""  # the last round's data note ("" or MARKET_DATA_*)
        self.close_pending: date | None = None  # a close whose data were not there yet

    @property
    def bot(self) -> Any:
        return self.delivery.bot

    @property
    def retry_policy(self) -> ReportRetry:
        st = self.settings
        return ReportRetry(lease_s=st.report_lease_s, retry_base_s=st.report_retry_base_s,
                           retry_max_s=st.report_retry_max_s)

    async def _claimable(self, to_send: list[tuple[Any, date]], kind: str, now: datetime
                         ) -> list[tuple[Any, date]]:
        """The due reports not yet claimed, or whose last attempt may be retried (a stale
        pending claim, a failure past its backoff): one query per session, before anything
        is evaluated, so a retry pass over users already served costs no evaluation."""
        claims: dict[date, dict[int, Any]] = {}
        for session in {s for _, s in to_send}:
            claims[session] = await asyncio.to_thread(self.store.report_claims, session, kind)
        policy = self.retry_policy
        out = []
        for b, session in to_send:
            row = claims[session].get(b.settings.tg_user_id)
            if row is None or report_retry_due(row, now, policy):
                out.append((b, session))
        return out

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
        # §6b: each user's positions are one book (key: the user id), with its book-level layers
        book_of = [b.settings.tg_user_id for b in members for _ in b.positions]
        layers = {b.settings.tg_user_id: list(b.book_hedges) for b in members if b.book_hedges}
        self.evaluate_calls += 1
        ev = await asyncio.to_thread(self.evaluate_fn(), positions, snapshot, history, events,
                                     params, asof, book_of=book_of, book_layers=layers)
        views: dict[int, Any] = {}
        start = 0
        # a lazy window per user: records are built when that user's message is rendered
        window = getattr(ev.positions, "view", None)
        for b in members:
            n = len(b.positions)
            if not n:
                records = []
            elif window is not None:
                records = window(start, start + n)
            else:
                records = ev.positions[start:start + n]
            start += n
            uid = b.settings.tg_user_id
            views[uid] = dataclasses.replace(ev, positions=records,
                                             book_hedges=_book_hedges_of(ev.book_hedges, uid))
        return ev.market, views

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
        claimable = await self._claimable(to_send, kind, now)
        result.duplicate = len(to_send) - len(claimable)  # sent, or being sent, already
        to_send = claimable
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
            if not await asyncio.to_thread(partial(self.store.claim_report, uid, session, kind,
                                                   now=now, policy=self.retry_policy)):
                return "duplicate"  # sent, or being sent, by another run (a restart, say)
            if uid not in per_user:  # the engine failed on this book (logged above)
                await asyncio.to_thread(self.store.report_sent, uid, session, kind, ok=False,
                                        error="evaluation failed")
                return "failed"
            try:
                check = CheckResult(asof, per_user[uid], list(book.positions), provider,
                                    self.services.offline, session=session)
                html = render("report", result=check)
            except Exception as exc:
                log.exception("report for user %s could not be built", uid)
                await asyncio.to_thread(self.store.report_sent, uid, session, kind, ok=False,
                                        error=f"report: {error_text(exc)}")
                return "failed"
            chat = book.settings.chat_id or uid
            outcome, error = await self.delivery.send_detailed(uid, chat, html)
            await asyncio.to_thread(self.store.report_sent, uid, session, kind,
                                    ok=outcome == "sent", error=error or None)
            if outcome == "sent" and getattr(book.settings, "report_chart", False):
                # the report is delivered and recorded; the picture only adds to it
                png = await chart_for(book)
                if png is not None:
                    photo = await self.delivery.send_photo(uid, chat, png, REPORT_CHART_CAPTION)
                    if photo == "sent":
                        result.charts += 1
                    else:
                        log.warning("EDR chart for user %s not delivered: %s", uid, photo)
            return outcome

        t1 = loop.time()
        await self.delivery.fan_out([b for b, _ in to_send], deliver, result)
        result.deliver_s = loop.time() - t1
        log.info("report round %s: %s", result.session, summary(result))
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
            if ev is not None:
                candidates += book_alerts(ev.book_hedge, session)
            fresh = [a for a in candidates
                     if await asyncio.to_thread(self.store.record_alert, uid, a.key)]
            if not fresh:
                return "duplicate"
            html = render("alert", alerts=fresh, market=market)
            return await self.delivery.send(uid, book.settings.chat_id or uid, html)

        await self.delivery.fan_out(books, deliver, result)
        if result.sent or result.failed or result.blocked:
            log.info("intraday round %s: %s", now.isoformat(timespec="minutes"),
                     summary(result))
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
