"""/check, /market, /report and the buttons under them.

`/check` and `/report` answer with the book summary (one line per position, the market line,
the book's totals) and a "#N details" button per position; `/check N` and that button answer
with the position's details and its payoff picture. ↻ Refresh edits the pressed message in
place; ⇄ Roll answers with the roll verdict.
"""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot import parsing
from bot.render import render, render_plain
from bot.services import CheckResult
from bot.telegram.handlers._common import (
    command_args,
    edit_or_reply,
    reply,
    reply_error,
    services,
    typing,
    user_errors,
    user_ref,
)

# chk:<position id | all>:<action>; anything else is refused (a tampered button).
CALLBACK_RE = re.compile(r"^chk:(all|\d{1,10}):(refresh|details|roll)$")
MAX_POSITION_BUTTONS = 12  # beyond this the keyboard would be a wall; use /check <id>
DETAIL_BUTTONS_PER_ROW = 3
MAX_CAPTION_TEXT = 900  # Telegram allows 1,024 caption characters; room for escaping


def summary_keyboard(result: CheckResult) -> InlineKeyboardMarkup:
    """Under the book summary: a details button per position, then ↻ Refresh."""
    buttons = [InlineKeyboardButton(f"🔎 #{p.id} details", callback_data=f"chk:{p.id}:details")
               for p in result.positions[:MAX_POSITION_BUTTONS]]
    rows = [buttons[i:i + DETAIL_BUTTONS_PER_ROW]
            for i in range(0, len(buttons), DETAIL_BUTTONS_PER_ROW)]
    rows.append([InlineKeyboardButton("↻ Refresh", callback_data="chk:all:refresh")])
    return InlineKeyboardMarkup(rows)


def details_keyboard(position_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("↻ Refresh", callback_data=f"chk:{position_id}:refresh"),
        InlineKeyboardButton("⇄ Roll", callback_data=f"chk:{position_id}:roll"),
    ]])


def _summary(result: CheckResult) -> tuple[str, InlineKeyboardMarkup | None]:
    return (render("check", result=result),
            summary_keyboard(result) if result.positions else None)


def _details(result: CheckResult, position_id: int) -> tuple[str, InlineKeyboardMarkup | None]:
    return (render("check_detail", result=result),
            details_keyboard(position_id) if result.positions else None)


async def send_chart(update: Update, png: bytes | None, caption: str, name: str = "chart"
                     ) -> None:
    """Send a chart (rendered off the event loop by the services) as a photo; `caption` is plain
    text, escaped for the HTML parse mode; `name` names the upload (`check-1` → check-1.png),
    which the console uses for the picture's file. No chart, no photo."""
    message = update.effective_message
    if png is None or message is None:
        return
    await message.reply_photo(InputFile(png, filename=f"{name}.png"),
                              caption=html.escape(caption[:MAX_CAPTION_TEXT]),
                              parse_mode=ParseMode.HTML)


async def _send_details(update: Update, context: ContextTypes.DEFAULT_TYPE,
                        position_id: int) -> None:
    """The details of one position as a reply, then its payoff picture."""
    await typing(update, context)
    details = await services(context).details(user_ref(update), position_id)
    await reply(update, *_details(details.result, position_id))
    if details.result.positions:
        caption = render_plain("payoff_caption", position=details.result.positions[0],
                               book_hedge=details.result.book_hedge)
        await send_chart(update, details.picture, caption, f"check-{position_id}")


@user_errors(parsing.USAGE["check"])
async def check(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    position_id = parsing.parse_check(command_args(update))
    if position_id is not None:
        await _send_details(update, context, position_id)
        return
    await typing(update, context)
    result = await services(context).check(user_ref(update))
    await reply(update, *_summary(result))


@user_errors()
async def market(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await typing(update, context)
    svc, user = services(context), user_ref(update)
    result = await svc.market(user)
    await reply(update, render("market", market=result.market, offline=result.offline))
    png = await svc.edr_chart(user, result)
    await send_chart(update, png, "EDR at the last 120 official closes, with the state bands "
                     "and the trigger line; the diamond is now.", "market-edr")


@user_errors()
async def report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await typing(update, context)
    result = await services(context).report(user_ref(update))
    markup = summary_keyboard(result) if result.positions else None
    await reply(update, render("report", result=result), markup)


async def _refresh(update: Update, context: ContextTypes.DEFAULT_TYPE,
                   position_id: int | None) -> str | None:
    """↻ Refresh: evaluate again and edit the pressed message in place (the details keep
    their picture; only the text is redone). Nothing new: the toast that says so."""
    svc, user = services(context), user_ref(update)
    if position_id is None:
        result = await svc.check(user)
        html_text, markup = _summary(result)
    else:
        result = (await svc.details(user, position_id, picture=False)).result
        html_text, markup = _details(result, position_id)
    if await edit_or_reply(update, html_text, markup):
        return None
    return render_plain("refresh_unchanged", result=result)


@user_errors()
async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    m = CALLBACK_RE.match(query.data or "")
    if m is not None and m[2] == "refresh":
        toast = None
        try:  # answered after the edit: an unchanged refresh answers with a toast
            target = None if m[1] == "all" else parsing.parse_position_id(m[1])
            toast = await _refresh(update, context, target)
        finally:
            await query.answer(toast)
        return
    await query.answer()
    if m is None:
        await reply_error(update, "this button is not valid any more", "/check")
        return
    target, action = m[1], m[2]
    position_id = None if target == "all" else parsing.parse_position_id(target)
    if position_id is None:
        await reply_error(update, "this button is not valid any more", "/check")
        return
    if action == "details":
        await _send_details(update, context, position_id)
    else:
        await typing(update, context)
        result = await services(context).roll_verdict(user_ref(update), position_id)
        await reply(update, render("roll", result=result))


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button whose data no handler knows (old message, tampered data): say so, touch
    nothing."""
    await update.callback_query.answer()
    await reply_error(update, "this button is not valid any more", "/check")


def unknown_button_handler() -> BaseHandler:
    return CallbackQueryHandler(unknown_button)


def handlers() -> list[BaseHandler]:
    return [
        CommandHandler("check", check),
        CommandHandler("market", market),
        CommandHandler("report", report),
        CallbackQueryHandler(on_button, pattern=r"^chk:"),
    ]
