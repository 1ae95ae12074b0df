"""/hedge <id> [add … | remove <n> [x<qty>] [@price]]."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot import parsing
from bot.render import render
from bot.telegram.handlers._common import command_args, reply, services, user_errors, user_ref


@user_errors(parsing.USAGE["hedge"])
async def hedge(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    cmd = parsing.parse_hedge(command_args(update))
    svc, user = services(context), user_ref(update)
    changed = realised = None
    if cmd.action == "add":
        _, changed = await svc.hedge_add(user, cmd.position_id, cmd.spec)
    elif cmd.action == "remove":
        _, changed, realised = await svc.hedge_remove(user, cmd.position_id, cmd.index,
                                                      cmd.price, cmd.qty)
    view = await svc.hedge_view(user, cmd.position_id)
    await reply(update, render("hedge_list", view=view, action=cmd.action, changed=changed,
                               price=cmd.price, realised=realised, qty=cmd.qty))


def handlers() -> list[BaseHandler]:
    return [CommandHandler("hedge", hedge)]
