"""/roll <id> (verdict and proposal) and /roll <id> done … (record a roll)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot import parsing
from bot.render import render
from bot.telegram.handlers._common import (
    command_args,
    reply,
    services,
    typing,
    user_errors,
    user_ref,
)
from bot.telegram.handlers.check import send_chart


@user_errors(parsing.USAGE["roll"])
async def roll(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    cmd = parsing.parse_roll(command_args(update))
    svc, user = services(context), user_ref(update)
    if not cmd.done:
        await typing(update, context)
        result = await svc.roll_verdict(user, cmd.position_id)
        await reply(update, render("roll", result=result))
        png = await svc.roll_chart(user, result)
        await send_chart(update, png, f"Roll of #{cmd.position_id}: the condor now and the "
                         "proposed one, P&L of the whole campaign at each expiry and today.",
                         f"roll-{cmd.position_id}")
        return
    old, new = await svc.record_roll(user, cmd)
    await reply(update, render("roll_done", old=old, new=new, net=cmd.net))


def handlers() -> list[BaseHandler]:
    return [CommandHandler("roll", roll)]
