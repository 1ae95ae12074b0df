"""Scheduled work: the pre-market report, the official close, the intraday watch.

Everything runs on PTB's JobQueue (APScheduler 3). Read it in this order:
- `triggers`: when (report moments on NYSE sessions, the official close, the intraday grid,
  quiet hours); pure;
- `rounds`: what (the report round, the official close, the intraday watch, the catch-up),
  with `alerts` (pure) for what the watch alerts on;
- `delivery`: sending, 429 retries, blocked users, fan-out;
- `jobs`: the JobQueue glue (`setup`, `sync_report_jobs`, `on_settings_changed`);
- `settings`: ALVH_* scheduler settings.

This package never imports `bot.telegram`; the application calls `setup` from its post_init.
"""

from bot.scheduler.alerts import (
    Alert,
    book_alerts,
    market_alerts,
    position_alerts,
    state_rank,
)
from bot.scheduler.delivery import Delivery, RoundResult
from bot.scheduler.jobs import (
    next_run,
    on_settings_changed,
    report_job_name,
    schedule_all,
    scheduler_of,
    setup,
    sync_report_jobs,
)
from bot.scheduler.rounds import (
    KIND_PREMARKET,
    MARKET_FALLBACK,
    MARKET_UNAVAILABLE,
    Scheduler,
)
from bot.scheduler.settings import JobConfigError, JobSettings
from bot.scheduler.triggers import (
    CloseTrigger,
    IntradayTrigger,
    ReportTrigger,
    due_today,
    in_quiet_hours,
    next_close_run,
    next_intraday_run,
    next_report_moment,
    report_decision,
    report_session,
)

__all__ = [
    "KIND_PREMARKET",
    "MARKET_FALLBACK",
    "MARKET_UNAVAILABLE",
    "Alert",
    "CloseTrigger",
    "Delivery",
    "IntradayTrigger",
    "JobConfigError",
    "JobSettings",
    "ReportTrigger",
    "RoundResult",
    "Scheduler",
    "book_alerts",
    "due_today",
    "in_quiet_hours",
    "market_alerts",
    "next_close_run",
    "next_intraday_run",
    "next_report_moment",
    "next_run",
    "on_settings_changed",
    "position_alerts",
    "report_decision",
    "report_job_name",
    "report_session",
    "schedule_all",
    "scheduler_of",
    "setup",
    "state_rank",
    "sync_report_jobs",
]
