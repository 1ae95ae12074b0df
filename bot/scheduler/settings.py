"""The scheduler's settings: ALVH_* in .env / the environment (see .env.example)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.environment import Environment, EnvironmentProblems

JOB_VARIABLES = ("ALVH_INTRADAY_MINUTES", "ALVH_INTRADAY_ALERTS", "ALVH_JOB_MISFIRE_GRACE_S",
                 "ALVH_RETRY_AFTER_MAX_S", "ALVH_SEND_ATTEMPTS", "ALVH_CONCURRENT_SENDS",
                 "ALVH_CLOSE_RETRY_MINUTES")


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
    send_attempts: int = 3  # sends per message on a 429, for a bot WITHOUT a rate limiter only
    concurrent_sends: int = 64  # sends in flight; the rate limiter sets the actual pace
    intraday_enabled: bool = True
    close_retry_minutes: int = 5  # the close job tries again while the close print is missing
    # At-least-once reports (issue 13): a pending claim older than the lease is a dead attempt
    # (it must outlast the longest send: the 429 attempts x retry_after_max_s); failed sends are
    # retried after report_retry_base_s, doubling per attempt up to report_retry_max_s, until
    # the open. The retry job looks for due retries every report_retry_poll_s.
    report_lease_s: float = 600.0
    report_retry_base_s: float = 60.0
    report_retry_max_s: float = 900.0
    report_retry_poll_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None) -> JobSettings:
        """Read the ALVH_* scheduler variables through the one settings model
        (bot/environment.py); `JobConfigError` names every bad one."""
        try:
            parsed = Environment.parse(env or {}, only=JOB_VARIABLES)
        except EnvironmentProblems as err:
            raise JobConfigError(err.problems) from None

        def given(value: Any, default: Any) -> Any:
            return default if value is None else value

        return cls(
            intraday_minutes=given(parsed.intraday_minutes, cls.intraday_minutes),
            misfire_grace_s=given(parsed.job_misfire_grace_s, cls.misfire_grace_s),
            retry_after_max_s=given(parsed.retry_after_max_s, cls.retry_after_max_s),
            send_attempts=given(parsed.send_attempts, cls.send_attempts),
            concurrent_sends=given(parsed.concurrent_sends, cls.concurrent_sends),
            intraday_enabled=given(parsed.intraday_alerts, cls.intraday_enabled),
            close_retry_minutes=given(parsed.close_retry_minutes, cls.close_retry_minutes),
        )
