"""The scheduler's settings: ALVH_* in .env / the environment (see .env.example)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
