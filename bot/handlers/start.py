"""/start and /help."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.handlers._common import command_args, reply, services, user_errors, user_ref
from bot.render import render

HELP_TOPICS = ("start", "add", "positions", "check", "market", "hedge", "roll", "close",
               "report", "settings", "subscribe", "unsubscribe", "export", "cancel")


@user_errors()
async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    data = await services(context).start(user_ref(update))
    await reply(update, render("start", **data))


@user_errors()
async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    topic = command_args(update).strip().lstrip("/").lower() or None
    if topic is not None and topic not in HELP_TOPICS:
        topic = None  # unknown topic: the whole list is the useful answer
    await reply(update, render("help", topic=topic))


def handlers() -> list[BaseHandler]:
    return [CommandHandler("start", start), CommandHandler("help", help_command)]
