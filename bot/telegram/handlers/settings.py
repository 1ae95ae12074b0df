"""/settings, /subscribe, /unsubscribe, /export."""

from __future__ import annotations

import io
import json

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot import parsing, scheduler
from bot.render import render
from bot.telegram.handlers._common import command_args, reply, services, user_errors, user_ref


@user_errors(parsing.USAGE["settings"])
async def settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    update_ = parsing.parse_settings(command_args(update))
    svc = services(context)
    if update_ is None:
        view = await svc.settings_get(user_ref(update))
    else:
        view = await svc.settings_set(user_ref(update), update_)
    view = await scheduler.on_settings_changed(context.application, view)  # reschedule at once
    await reply(update, render("settings", s=view, changed=update_.key if update_ else None))


@user_errors()
async def subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    view = await services(context).subscribe(user_ref(update))
    view = await scheduler.on_settings_changed(context.application, view)
    await reply(update, render("settings", s=view, changed="subscribed"))


@user_errors()
async def on_subscribe_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start's "Subscribe to the daily report": the same service call as /subscribe."""
    await update.callback_query.answer()
    await subscribe(update, context)


@user_errors()
async def unsubscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    view = await services(context).unsubscribe(user_ref(update))
    view = await scheduler.on_settings_changed(context.application, view)
    await reply(update, render("settings", s=view, changed="subscribed"))


@user_errors()
async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    data = await services(context).export(user_ref(update))
    payload = json.dumps(data, indent=2, sort_keys=True).encode()
    message = update.effective_message
    await message.reply_document(io.BytesIO(payload), filename="alvh-export.json",
                                 caption="Your positions, hedges and settings (JSON).")


def handlers() -> list[BaseHandler]:
    return [
        CommandHandler("settings", settings),
        CommandHandler("subscribe", subscribe),
        CommandHandler("unsubscribe", unsubscribe),
        CommandHandler("export", export),
        CallbackQueryHandler(on_subscribe_button, pattern=r"^sub:on$"),
    ]
