"""The fake Telegram Bot API server of the end-to-end tests.

The server itself lives in `bot.telegram.botapi_server` (the console runs on it too); this
module is the tests' name for it, plus the small helpers the e2e tests share.
"""

from __future__ import annotations

from telegram.ext import Application

from bot.telegram.botapi_server import (
    BOT_USER,
    LOCAL_TOKEN,
    MAX_MESSAGE_LENGTH,
    ApiError,
    Call,
    LocalBotAPI,
    Outgoing,
    buttons_of,
    html_to_text,
    parse_html,
)
from bot.telegram.botapi_server import settle as settle_or_timeout

FakeBotAPI = LocalBotAPI

__all__ = [
    "BOT_USER",
    "LOCAL_TOKEN",
    "MAX_MESSAGE_LENGTH",
    "ApiError",
    "Call",
    "FakeBotAPI",
    "LocalBotAPI",
    "Outgoing",
    "buttons_of",
    "html_to_text",
    "parse_html",
    "settle",
]


async def settle(api: LocalBotAPI, app: Application, quiet: float = 0.08, timeout: float = 20.0):
    """Wait until the bot fetched every update, finished processing, and went quiet."""
    if not await settle_or_timeout(api, app, quiet, timeout):
        raise TimeoutError(f"the bot was still busy after {timeout}s")
