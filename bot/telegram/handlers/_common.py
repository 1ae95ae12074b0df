"""Shared plumbing of the handlers: the services, the acting user, replies and user errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.parsing import ParseError, split_command
from bot.render import render, split_message
from bot.services import Services, UserError, UserRef
from bot.store.errors import Conflict, NotFound, ValidationError

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
NOT_MODIFIED = "message is not modified"  # Telegram's answer to an edit that changes nothing

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[Any]]


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]


def user_ref(update: Update) -> UserRef:
    user = update.effective_user
    chat = update.effective_chat
    if user is None:
        raise UserError("this command needs a user (not a channel post)")
    # only a private chat is the user's: reports and alerts never go to a group's chat id
    private = chat is not None and chat.type == "private"
    return UserRef(user.id, chat.id if private else None, user.first_name or "")


def command_args(update: Update) -> str:
    """The text after the command, spacing inside preserved (labels keep their words)."""
    message = update.effective_message
    text = (message.text or message.caption or "") if message else ""
    return split_command(text)[1]


async def reply(update: Update, html: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Send `html` split into Telegram-sized parts; buttons go on the last part."""
    message = update.effective_message
    if message is None:
        return
    parts = split_message(html)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        await message.reply_text(part, parse_mode=ParseMode.HTML,
                                 reply_markup=markup if last else None,
                                 link_preview_options=NO_PREVIEW)


async def edit_or_reply(update: Update, html: str,
                        markup: InlineKeyboardMarkup | None = None) -> bool:
    """Replace the text of the message whose button was pressed with `html` (a refresh), or
    reply anew when that cannot be done: no such message (a photo, say), or `html` needs more
    than one message. An edit that changes nothing ("message is not modified") is not an
    error: the message already shows the latest numbers. False then, else True."""
    query = update.callback_query
    message = query.message if query is not None else None
    parts = split_message(html)
    if message is None or len(parts) != 1 or getattr(message, "text", None) is None:
        await reply(update, html, markup)
        return True
    try:
        await query.edit_message_text(parts[0], parse_mode=ParseMode.HTML, reply_markup=markup,
                                      link_preview_options=NO_PREVIEW)
    except BadRequest as exc:
        if NOT_MODIFIED not in exc.message.lower():
            raise
        return False
    return True


async def reply_error(update: Update, message: str, usage: str = "") -> None:
    await reply(update, render("error", message=message, usage=usage))


async def typing(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat = update.effective_chat
    if chat is not None:
        try:
            await context.bot.send_chat_action(chat.id, ChatAction.TYPING)
        except Exception:  # a lost chat action must not cost the reply
            log.debug("typing action failed", exc_info=True)


async def answer_user_error(update: Update, exc: Exception, usage: str = "") -> None:
    if isinstance(exc, UserError | ParseError):
        await reply_error(update, exc.message, exc.usage or usage)
    elif isinstance(exc, ValidationError):
        await reply_error(update, "; ".join(exc.problems), usage)
    elif isinstance(exc, NotFound):
        await reply_error(update, f"{exc} — see /positions for your ids", usage)
    else:
        await reply_error(update, str(exc), usage)


def user_errors(usage: str = "") -> Callable[[Handler], Handler]:
    """Turn the user's mistakes into a reply naming the problem and the correct form; anything
    else propagates to the platform's error handler."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def inner(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Any:
            try:
                return await fn(update, context)
            except (UserError, ParseError, ValidationError, NotFound, Conflict) as exc:
                await answer_user_error(update, exc, usage)
                return None

        return inner

    return wrap
