"""Delivery for the rounds: send a message (split if long) or a photo to one user through the
application's rate-limited bot, retry Telegram's 429s within bounds, unsubscribe a user who has
blocked the bot, and fan a round out to many users with a bounded number of sends in flight.

Claims (at most one report and one alert per user) are the store's report log and alert log;
the rounds take them before calling `send`.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape as html_escape
from typing import Any

from telegram.error import Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.render import split_message
from bot.scheduler.settings import JobSettings

log = logging.getLogger(__name__)


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


ERROR_TEXT_MAX_CHARS = 200  # the report log's error: enough for the class and the message


def error_text(exc: BaseException) -> str:
    """What went wrong, for the report log: "NetworkError: Bad Gateway" (class and message,
    trimmed to one line of ERROR_TEXT_MAX_CHARS)."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= ERROR_TEXT_MAX_CHARS else text[:ERROR_TEXT_MAX_CHARS - 1] + "…"


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Delivery:
    """Sending. `bot` is PTB's (rate-limited) bot; `unsubscribe(user_id)` runs (in a worker
    thread) when a user has blocked the bot. `sleep` is injectable so tests never wait."""

    def __init__(self, bot: Any, settings: JobSettings, unsubscribe: Callable[[int], Any], *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.bot = bot
        self.settings = settings
        self.unsubscribe = unsubscribe
        self.sleep = sleep

    async def send(self, user_id: int, chat_id: int, html: str) -> str:
        """Send one message (split if long): "sent", "blocked" (Forbidden: unsubscribed) or
        "failed". 429s are retried after the delay Telegram asks for, within bounds."""

        return (await self.send_detailed(user_id, chat_id, html))[0]

    async def send_detailed(self, user_id: int, chat_id: int, html: str) -> tuple[str, str]:
        """`send`, with what went wrong ("" when sent): the exception's class and message,
        trimmed, as the report log keeps it."""

        async def parts() -> None:
            for part in split_message(html):
                await self._send_part(chat_id, part)

        return await self._delivered_detailed(user_id, parts)

    async def send_photo(self, user_id: int, chat_id: int, png: bytes, caption: str) -> str:
        """Send one PNG as a photo with a plain-text caption; outcomes and 429/Forbidden
        handling as `send` (the same rate-limited bot)."""
        text = html_escape(caption, quote=False)

        async def photo() -> None:
            await self._retrying(chat_id, lambda: self.bot.send_photo(chat_id, png, caption=text))

        return await self._delivered(user_id, photo)

    async def _delivered(self, user_id: int, attempt: Callable[[], Awaitable[None]]) -> str:
        return (await self._delivered_detailed(user_id, attempt))[0]

    async def _delivered_detailed(self, user_id: int, attempt: Callable[[], Awaitable[None]]
                                  ) -> tuple[str, str]:
        try:
            await attempt()
        except Forbidden as exc:
            log.info("user %s blocked the bot (%s): unsubscribed", user_id, exc.message)
            try:
                await asyncio.to_thread(self.unsubscribe, user_id)
            except Exception:
                log.exception("could not unsubscribe user %s", user_id)
            return "blocked", error_text(exc)
        except TelegramError as exc:
            log.warning("send to user %s failed: %s", user_id, exc)
            return "failed", error_text(exc)
        except Exception as exc:  # a bug or a dead connection: this user only
            log.exception("send to user %s failed", user_id)
            return "failed", error_text(exc)
        return "sent", ""

    async def _send_part(self, chat_id: int, text: str) -> None:
        await self._retrying(chat_id, lambda: self.bot.send_message(chat_id, text))

    async def _retrying(self, chat_id: int, call: Callable[[], Awaitable[Any]]) -> None:
        """One layer retries 429s: the bot's rate limiter when it has one
        (bot.telegram.ratelimit.BoundedRateLimiter), else this loop (a bot built without)."""
        if getattr(self.bot, "rate_limiter", None) is not None:
            await call()
            return
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

    async def fan_out(self, items: Iterable[Any], work: Callable[[Any], Awaitable[str]],
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


def summary(r: RoundResult) -> str:
    return (f"{r.users} users, {r.sent} sent, {r.failed} failed, {r.blocked} blocked, "
            f"{r.skipped} skipped, {r.duplicate} already done; evaluation {r.evaluate_s:.2f} s "
            f"in {r.evaluate_calls} call(s), delivery {r.deliver_s:.2f} s"
            + (f", {r.charts} EDR chart(s) from {r.chart_renders} render(s)"
               if r.chart_renders else ""))
