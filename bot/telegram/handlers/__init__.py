"""Telegram handlers, one module per command family.

`all_handlers()` is what the platform registers; `BOT_COMMANDS` feeds `set_my_commands`.
Handlers are thin: parse → one `Services` call → render a template → reply.
"""

from __future__ import annotations

from telegram.ext import BaseHandler

BOT_COMMANDS: list[tuple[str, str]] = [
    ("start", "What this bot does and the first steps"),
    ("help", "Commands with examples"),
    ("add", "Register an iron condor"),
    ("positions", "Your open positions"),
    ("check", "EDR, hedge and roll verdict: /check [id]"),
    ("market", "SPX, VIX, EDR state and next events"),
    ("hedge", "VIX hedges of a position: /hedge <id>"),
    ("roll", "Roll verdict or record a roll: /roll <id>"),
    ("close", "Close a position: /close <id> [@debit]"),
    ("report", "The full report now"),
    ("settings", "Report time, time zone, trigger, budget"),
    ("subscribe", "Daily pre-market report on"),
    ("unsubscribe", "Daily pre-market report off"),
    ("export", "Your positions as a JSON file"),
    ("cancel", "Stop the guided /add form"),
]


def all_handlers() -> list[BaseHandler]:
    """Every handler, conversation first (it must see its own messages before the others)."""
    from bot.telegram.handlers import check, hedge, positions, roll, settings, start

    out: list[BaseHandler] = []
    for module in (positions, start, check, hedge, roll, settings):
        out.extend(module.handlers())
    out.append(check.unknown_button_handler())  # last: any button nothing else claimed
    out.extend(start.fallback_handlers())  # last: unknown commands, stray text
    return out
