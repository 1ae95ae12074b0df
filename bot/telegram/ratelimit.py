"""The one layer that handles Telegram's 429s (issue 13): PTB's `AIORateLimiter` paces every
request and retries a 429 after the delay Telegram asks for, at most `max_retries` times
(RATE_LIMIT_MAX_RETRIES) — and not at all when the delay is longer than `retry_after_max_s`
(ALVH_RETRY_AFTER_MAX_S): that `RetryAfter` goes straight to the caller, which fails that
send (a scheduled report is then retried by the report-retry job). The scheduler's delivery
has no 429 loop of its own while the bot has a rate limiter, so a message is tried at most
`max_retries + 1` times and no pause is ever longer than the bound.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter
from telegram.warnings import PTBDeprecationWarning


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _TooLong(Exception):
    def __init__(self, original: RetryAfter):
        super().__init__(str(original))
        self.original = original


class BoundedRateLimiter(AIORateLimiter):
    """`AIORateLimiter` whose 429 retries stop at a delay longer than `retry_after_max_s`."""

    def __init__(self, *args: Any, retry_after_max_s: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retry_after_max_s = float(retry_after_max_s)

    async def _run_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._run_request(*args, **kwargs)
        except RetryAfter as exc:
            if retry_after_seconds(exc) > self.retry_after_max_s:
                raise _TooLong(exc) from exc  # not caught by the limiter's retry loop
            raise

    async def process_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().process_request(*args, **kwargs)
        except _TooLong as wrapped:
            raise wrapped.original from None
