"""/start and /help."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.render import render
from bot.telegram.handlers._common import (
    command_args,
    reply,
    reply_error,
    services,
    user_errors,
    user_ref,
)

HELP_TOPICS = ("terms", "start", "add", "positions", "check", "market", "hedge", "roll", "close",
               "report", "settings", "subscribe", "unsubscribe", "export", "cancel")


SUBSCRIBE_BUTTON = "sub:on"  # handled in handlers/settings.py, by the /subscribe service


def start_keyboard(data: dict) -> InlineKeyboardMarkup | None:
    """The subscribe button, for a user not subscribed yet (offline too: the subscription is
    kept for when the bot runs on live data, and the reply says so)."""
    if data.get("subscribed"):
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton("🔔 Subscribe to the daily report",
                                                       callback_data=SUBSCRIBE_BUTTON)]])


@user_errors()
async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    data = await services(context).start(user_ref(update))
    await reply(update, render("start", **data), start_keyboard(data))


@user_errors()
async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    topic = command_args(update).strip().lstrip("/").lower() or None
    if topic is not None and topic not in HELP_TOPICS:
        topic = None  # unknown topic: the whole list is the useful answer
    await reply(update, render("help", topic=topic))


async def unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command no handler knows, or stray text in a private chat: point to /help."""
    message = update.effective_message
    text = (message.text or "") if message else ""
    if text.startswith("/"):
        name = text.split()[0][:32]
        if "@" in name:  # addressed to another bot in a group (ours would have matched)
            return
        await reply_error(update, f"unknown command {name}; /help lists every command",
                          "/help")
    else:
        await reply_error(update, "I answer commands; to add a condor start with /add",
                          "/add SPXW 2026-12-18 6650/6700/8250/8300 x2 @12.00  ·  /help")


def fallback_handlers() -> list[BaseHandler]:
    """Registered last: nothing else claimed the message."""
    return [MessageHandler(filters.COMMAND | (filters.TEXT & filters.ChatType.PRIVATE), unknown)]


def handlers() -> list[BaseHandler]:
    return [CommandHandler("start", start), CommandHandler("help", help_command)]
