"""`alvh start`: the bot when a token is configured, otherwise the offline console."""

from __future__ import annotations

import argparse
import os


def _start(args: argparse.Namespace) -> int:
    if os.environ.get("TELEGRAM_BOT_TOKEN"):
        print("The Telegram bot is not built yet (issue: the Telegram bot).")
    else:
        print(
            "No TELEGRAM_BOT_TOKEN set. The offline console is not built yet; meanwhile try\n"
            "  alvh --help"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("start", help="run the bot (token set) or the offline console")
    p.set_defaults(func=_start)
