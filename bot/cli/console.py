"""`alvh console`: the bot in this terminal (offline sample, local database)."""

from __future__ import annotations

import argparse

# the same default as bot.telegram.console.CONSOLE_USER_ID (tests/test_start_cli.py checks); that
# module is imported when the command runs: `alvh evaluate` should not load the bot stack
CONSOLE_USER_ID = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "console",
        help="the bot in this terminal (offline sample, local database)",
        description=(
            "Chat with the bot in the terminal: one message per line on standard input; "
            "'cb:N' presses button N of the last reply; end of input exits. "
            "Example: printf '/start\\n/check\\n' | alvh console"
        ),
    )
    p.add_argument(
        "--database",
        default=None,
        help="SQLite file or SQLAlchemy URL (default console.db in the data folder)",
    )
    p.add_argument(
        "--user-id",
        type=int,
        default=CONSOLE_USER_ID,
        help="the Telegram user id you appear as (default %(default)s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.telegram.console import run_console

    return run_console(database=args.database, user_id=args.user_id)
