"""`alvh start`: the Telegram bot when a token is configured, otherwise the offline console."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
# bot.config and the bot stack load when `start` runs, not when any `alvh` command parses
# its arguments (`alvh evaluate` needs neither)

# getUpdates/deleteWebhook attempts at start-up: a network blip must not end the bot (-1 would
# retry forever and hide a wrong URL; a few seconds apart, 10 cover a minute-long blip).
BOOTSTRAP_RETRIES = 10


class _NoTraceback(logging.Filter):
    """PTB logs a failed start-up call with its traceback; the user gets one line from us."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


QUIET_LOGGERS = ("telegram.ext._utils.networkloop", "telegram.request.BaseRequest",
                 "telegram.ext.Updater", "telegram.ext.Application")


def _run_telegram(settings: Settings) -> int:
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.config import ConfigError, configure_logging, mask_token
    from bot.telegram import serving
    from bot.telegram.app import build_application

    configure_logging(settings)
    try:
        how = serving.Serving.from_settings(settings)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    where = "polling" if how.webhook_url is None else f"webhook {how.webhook_url}, " \
        f"listening on {how.listen}:{how.port}"
    for name in QUIET_LOGGERS:
        logging.getLogger(name).addFilter(_NoTraceback())
    print(
        f"Starting the bot (token {mask_token(settings.telegram_bot_token)}, "
        f"{settings.market_data_provider} market data, {where}); Ctrl-C stops it.",
        file=sys.stderr,
    )
    try:
        application = build_application(settings, concurrent_updates=how.concurrent_updates,
                                        warm_up=True)
        serving.run(application, how, bootstrap_retries=BOOTSTRAP_RETRIES)
    except InvalidToken:
        print(
            f"alvh start: {settings.telegram_api_base_url} refused the token "
            f"{mask_token(settings.telegram_bot_token)}; check TELEGRAM_BOT_TOKEN.",
            file=sys.stderr,
        )
        return 1
    except NetworkError as e:
        print(
            f"alvh start: cannot reach the Bot API at {settings.telegram_api_base_url} ({e}); "
            "check the network or TELEGRAM_API_BASE_URL.",
            file=sys.stderr,
        )
        return 1
    except TelegramError as e:  # e.g. "Invalid server response": an HTML page, a proxy
        print(
            f"alvh start: {settings.telegram_api_base_url} is not a Telegram Bot API or failed "
            f"({type(e).__name__}: {e}); check TELEGRAM_API_BASE_URL and the network.",
            file=sys.stderr,
        )
        return 1
    return 0


def _start(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, Settings
    from bot.telegram.console import run_console

    try:
        settings = Settings.load()
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    if settings.telegram_bot_token:
        return _run_telegram(settings)
    if sys.stdin.isatty():
        print("No TELEGRAM_BOT_TOKEN set: starting the offline console.", file=sys.stderr)
    return run_console(database=args.database)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "start",
        help="run the bot (TELEGRAM_BOT_TOKEN set) or else the offline console",
        description=(
            "With TELEGRAM_BOT_TOKEN set (environment or .env) run the Telegram bot: long "
            "polling, or a webhook when ALVH_WEBHOOK_URL is set (with ALVH_WEBHOOK_SECRET); "
            "without it, the offline console on the bundled sample."
        ),
    )
    p.add_argument(
        "--database",
        default=None,
        help="console only: SQLite file or SQLAlchemy URL (default console.db in the data folder)",
    )
    p.set_defaults(func=_start)
