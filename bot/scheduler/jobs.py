"""The JobQueue side: install the report, official-close and intraday jobs on PTB's JobQueue,
keep one report job per (report time, zone) in step with the subscribers, and run each job's
round with the application's clock.

Several bot processes on one PostgreSQL database: only the leader runs rounds
(`Store.leadership()`, an advisory lock; bot/store/leader.py). Every process installs the jobs;
each job first asks whether this process leads, and a standby tries for the lock every
`LEADER_POLL_S` and, on taking over, runs the catch-up pass (the reports the dead leader had not
sent yet, while the session has not opened). On SQLite every process leads (one is assumed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from bot.scheduler.rounds import Scheduler
from bot.scheduler.settings import JobSettings
from bot.scheduler.triggers import (
    CloseTrigger,
    IntradayTrigger,
    ReportTrigger,
    due_today,
    hhmm,
    report_decision,
    report_session,
)
from core import calendar as cal

log = logging.getLogger(__name__)

REPORT_JOB_PREFIX = "report:"
CLOSE_JOB = "official-close"
CLOSE_RETRY_JOB = "official-close-retry"
INTRADAY_JOB = "intraday-watch"
CATCHUP_JOB = "startup-catch-up"
REPORT_RETRY_JOB = "report-retry"
LEADER_JOB = "scheduler-leader"
LEADER_POLL_S = 15  # a standby takes over within this long after the leader's session ends


def _leadership(application: Any) -> Any | None:
    store = getattr(application.bot_data.get("services"), "store", None)
    return store.leadership() if store is not None and hasattr(store, "leadership") else None


async def is_leader(application: Any) -> bool:
    """Whether this process runs the scheduled rounds now (tries for the lock if not)."""
    leadership = _leadership(application)
    if leadership is None:
        return True
    was = leadership.held
    try:
        now = await asyncio.to_thread(leadership.try_acquire)
    except Exception:  # the database is away: run nothing, try again at the next poll
        log.exception("could not reach the database for the scheduler lock")
        return False
    if now and not was:
        log.info("this process now runs the scheduled rounds")
    return now


async def _leader_job(context: Any) -> None:
    """A standby's poll: on taking over, catch up on what the old leader left unsent."""
    leadership = _leadership(context.application)
    if leadership is None or leadership.held:
        if leadership is not None:
            await is_leader(context.application)  # a held lock: check it is still ours
        return
    if await is_leader(context.application):
        await scheduler_of(context.application).catch_up(_clock(context.application)())



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


def sends_reports(application: Any) -> bool:
    """Whether scheduled reports go out. An offline bot sends none and promises none: its data
    are a fixed sample and its clock is the sample's close (docs/commands.md, "Offline bot");
    rounds driven by an injected `jobs_clock` run as that clock says."""
    services = application.bot_data.get("services")
    return not getattr(services, "offline", False) or "jobs_clock" in application.bot_data


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
    if not sends_reports(context.application) or not await is_leader(context.application):
        return
    report_time, tz = context.job.data
    now = _clock(context.application)()
    if report_session(now) is None:  # belt and braces: the trigger already skips them
        return
    await scheduler_of(context.application).report_round(
        now, only=lambda s: s.report_time == report_time and s.timezone == tz)


async def _close_job(context: Any) -> None:
    """The close; while its data are missing, again every ALVH_CLOSE_RETRY_MINUTES until the
    next open (after which live data can no longer be taken for the close)."""
    if not await is_leader(context.application):
        return
    sched = scheduler_of(context.application)
    now = _clock(context.application)()
    await sched.close_round(now)
    pending = sched.close_pending
    if pending is None or context.application.job_queue is None:
        return
    retry = timedelta(minutes=sched.settings.close_retry_minutes)
    if now + retry < cal.session_open_close(cal.next_session(pending))[0]:
        context.application.job_queue.run_once(_close_job, when=retry, name=CLOSE_RETRY_JOB,
                                               job_kwargs=dict(ONE_SHOT_JOB_KWARGS))


# One-shot catch-up and close retries run however late they start (APScheduler's default grace
# is 1 s, and a busy start-up misses it): the rounds themselves decide, from the clock, whether
# a report is still due before the open or must be recorded as skipped.
ONE_SHOT_JOB_KWARGS: dict[str, Any] = {"misfire_grace_time": None}


async def _report_retry_job(context: Any) -> None:
    """Reports whose claim went stale (a crash mid-send) or whose send failed, retried with
    backoff while they are still due (`Scheduler.report_round` picks only those, before
    evaluating); the leader's rounds only, like every other job. Before the open every report
    of the day is looked at; from the open on, only reports set for the open or later (an
    in-session or evening report, still "send" by `report_decision`): a morning report is past
    its cut-off then, and looking at it again every poll would cost a write per user."""
    now = _clock(context.application)()
    session = report_session(now)
    if session is None:
        return
    if not sends_reports(context.application) or not await is_leader(context.application):
        return
    open_ = cal.session_open_close(session)[0]
    if now < open_:
        await scheduler_of(context.application).report_round(now)
        return

    def still_due(settings: Any) -> bool:
        moment = due_today(settings.report_time, settings.timezone, now)
        return moment >= open_ and report_decision(moment, now) == "send"

    await scheduler_of(context.application).report_round(now, only=still_due)


async def _intraday_job(context: Any) -> None:
    if not await is_leader(context.application):
        return
    await scheduler_of(context.application).intraday_round(_clock(context.application)())


async def _catch_up_job(context: Any) -> None:
    if not await is_leader(context.application):
        return
    sched, now = scheduler_of(context.application), _clock(context.application)()
    if sends_reports(context.application):
        await sched.catch_up(now)
    else:  # offline: the missed official close only, no report
        try:
            await sched.close_round(now)
        except Exception:
            log.exception("official close catch-up failed")


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
        trigger = ReportTrigger(hhmm(report_time), tz)
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
    jq.run_once(_catch_up_job, when=0, name=CATCHUP_JOB,
                job_kwargs=dict(ONE_SHOT_JOB_KWARGS))
    poll = sched.settings.report_retry_poll_s
    jq.run_repeating(_report_retry_job, interval=poll, first=poll, name=REPORT_RETRY_JOB,
                     job_kwargs={"coalesce": True, "misfire_grace_time": int(poll)})
    leadership = _leadership(application)
    if leadership is not None and leadership.shared:
        jq.run_repeating(_leader_job, interval=LEADER_POLL_S, first=LEADER_POLL_S,
                         name=LEADER_JOB)


setup = schedule_all  # the hook `bot.telegram.app` calls from post_init


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
    if not getattr(view, "subscribed", False) or not sends_reports(application):
        return view
    hhmm = view.report_time.strftime("%H:%M")
    when = next_run(application, hhmm, view.timezone)
    if when is None:
        return view
    return dataclasses.replace(view, next_report=when)
