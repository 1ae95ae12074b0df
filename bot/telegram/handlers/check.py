"""/check, /market, /report and the buttons under a /check reply (refresh, details, roll)."""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot import parsing
from bot.render import render
from bot.services import CheckResult
from bot.telegram.handlers._common import (
    command_args,
    reply,
    reply_error,
    services,
    typing,
    user_errors,
    user_ref,
)

# chk:<position id | all>:<action>; anything else is refused (a tampered button).
CALLBACK_RE = re.compile(r"^chk:(all|\d{1,10}):(refresh|details|roll)$")
MAX_POSITION_BUTTON_ROWS = 12  # beyond this the keyboard would be a wall; use /check <id>
MAX_CAPTION_TEXT = 900  # Telegram allows 1,024 caption characters; room for escaping


def check_keyboard(result: CheckResult, single: int | None) -> InlineKeyboardMarkup:
    if single is not None:
        return InlineKeyboardMarkup([[
            InlineKeyboardButton("↻ Refresh", callback_data=f"chk:{single}:refresh"),
            InlineKeyboardButton("🔎 Details", callback_data=f"chk:{single}:details"),
            InlineKeyboardButton("⇄ Roll", callback_data=f"chk:{single}:roll"),
        ]])
    rows = []
    if len(result.positions) <= MAX_POSITION_BUTTON_ROWS:
        for p in result.positions:
            rows.append([
                InlineKeyboardButton(f"🔎 #{p.id} details", callback_data=f"chk:{p.id}:details"),
                InlineKeyboardButton(f"⇄ #{p.id} roll", callback_data=f"chk:{p.id}:roll"),
            ])
    rows.append([InlineKeyboardButton("↻ Refresh", callback_data="chk:all:refresh")])
    return InlineKeyboardMarkup(rows)


async def _send_check(update: Update, context: ContextTypes.DEFAULT_TYPE,
                      position_id: int | None) -> CheckResult:
    await typing(update, context)
    result = await services(context).check(user_ref(update), position_id)
    markup = check_keyboard(result, position_id) if result.positions else None
    await reply(update, render("check", result=result, single=position_id is not None), markup)
    return result


async def send_chart(update: Update, png: bytes | None, caption: str) -> None:
    """Send a chart (rendered off the event loop by the services) as a photo; `caption` is plain
    text, escaped for the HTML parse mode. No chart, no photo."""
    message = update.effective_message
    if png is None or message is None:
        return
    await message.reply_photo(png, caption=html.escape(caption[:MAX_CAPTION_TEXT]),
                              parse_mode=ParseMode.HTML)


@user_errors(parsing.USAGE["check"])
async def check(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    position_id = parsing.parse_check(command_args(update))
    result = await _send_check(update, context, position_id)
    if position_id is not None and result.positions:
        position = result.positions[0]
        png = await services(context).payoff_chart(user_ref(update), position)
        await send_chart(update, png, f"Payoff of #{position.id}: P&L at expiry and today over "
                         "SPX ±3 horizon EDRs (shaded: ±1 EDR_h).")


@user_errors()
async def market(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await typing(update, context)
    svc, user = services(context), user_ref(update)
    result = await svc.market(user)
    await reply(update, render("market", market=result.market, offline=result.offline))
    png = await svc.edr_chart(user, result)
    await send_chart(update, png, "EDR at the last 120 official closes, with the state bands "
                     "and the trigger line; the diamond is now.")


@user_errors()
async def report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await typing(update, context)
    result = await services(context).report(user_ref(update))
    await reply(update, render("report", result=result))


@user_errors()
async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    m = CALLBACK_RE.match(query.data or "")
    if m is None:
        await reply_error(update, "this button is not valid any more", "/check")
        return
    target, action = m[1], m[2]
    position_id = None if target == "all" else parsing.parse_position_id(target)
    if action == "refresh":
        await _send_check(update, context, position_id)
        return
    if position_id is None:
        await reply_error(update, "this button is not valid any more", "/check")
        return
    await typing(update, context)
    svc = services(context)
    if action == "details":
        result = await svc.check(user_ref(update), position_id)
        await reply(update, render("check_detail", result=result))
    else:
        result = await svc.roll_verdict(user_ref(update), position_id)
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
