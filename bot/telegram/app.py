"""Build the python-telegram-bot `Application`: defaults, rate limiter, hooks, access, handlers.

One function, `build_application`, used by `alvh start` (Telegram), `alvh console` (the local
Bot API server) and the end-to-end tests (the fake server) alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, NetworkError, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseHandler,
    BaseRateLimiter,
    ContextTypes,
    Defaults,
    TypeHandler,
)

from bot.config import ConfigError, Settings, mask_token
from bot.telegram.ratelimit import BoundedRateLimiter
from bot.telegram.serving import PerUserUpdateProcessor, Serving

log = logging.getLogger(__name__)

FRIENDLY_ERROR = (
    "Something went wrong on our side; your positions are unchanged. Try again, or /help."
)
NOT_ALLOWED = (
    "Sorry, this ALVH bot is private and your account is not on its list of users. "
    "Ask its owner to add your Telegram user id ({user_id}) to ALLOWED_USER_IDS."
)
GROUP_POINTER = (
    "Your positions stay private: send /{command} to me in a private chat (tap my name, then "
    "Message). In groups I answer only /start, /help and /market."
)
GROUP_COMMANDS = frozenset({"start", "help", "market"})  # nothing about anyone's book
REFUSAL_INTERVAL_S = 3600.0  # a stranger's command in a group: one refusal per chat per hour
ACCESS_GROUP = -1  # runs before every handler group
Clock = Callable[[], datetime]


# --- the parts the platform builds when the caller does not inject them ----------------------


def default_provider(settings: Settings) -> Any:
    """The market data provider named by MARKET_DATA_PROVIDER (offline sample or live)."""
    from bot.marketdata.factory import provider_from_env

    return provider_from_env(
        {**settings.subsystem_env, "MARKET_DATA_PROVIDER": settings.market_data_provider}
    )


def default_clock(settings: Settings, provider: Any) -> Clock:
    """Offline: the sample's as-of moment (positions are validated and evaluated against the
    sample's date). Live: the real time in the configured zone."""
    sample_asof = getattr(provider, "asof", None)
    if settings.market_data_provider == "offline" and isinstance(sample_asof, datetime):
        return lambda: sample_asof
    tz = settings.tzinfo
    return lambda: datetime.now(tz)


def default_store(settings: Settings, clock: Clock) -> Any:
    """The positions store on DATABASE_URL (connects lazily; `post_init` migrates it). Its
    clock is the bot's, so "past expiry" means past the sample's date in offline mode."""
    from bot.store import Store, make_engine

    return Store(make_engine(settings.database_url), clock=clock)


async def migrate_store(store: Any) -> None:
    """Bring the store's schema to head (idempotent) before the first update."""
    engine = getattr(store, "engine", None)
    if engine is None:
        return
    from bot.store import migrate

    await asyncio.to_thread(migrate, engine)


async def _call_maybe(obj: Any, *names: str) -> bool:
    """Call the first of `names` that `obj` has (sync in a thread, async awaited)."""
    for name in names:
        fn = getattr(obj, name, None)
        if callable(fn):
            result = fn() if asyncio.iscoroutinefunction(fn) else await asyncio.to_thread(fn)
            if asyncio.iscoroutine(result):
                await result
            return True
    return False


# --- access, errors --------------------------------------------------------------------------


def _command_name(update: Update) -> str | None:
    """The command a new message carries (`/check@MyBot 3` → "check"), else None."""
    message = update.message
    text = (message.text or "") if message is not None else ""
    if not text.startswith("/"):
        return None
    return text.split(maxsplit=1)[0][1:].split("@", 1)[0].lower() or None


def _refusal_due(bot_data: dict, chat_id: int, now: float) -> bool:
    last = bot_data.setdefault("group_refusals", {})
    if now - last.get(chat_id, -REFUSAL_INTERVAL_S) < REFUSAL_INTERVAL_S:
        return False
    last[chat_id] = now
    return True


def make_allowlist_callback(settings: Settings):
    """Runs before every handler: edits never execute anything; strangers are refused (in a
    group only for commands, once per chat per hour); in a group only the commands that show
    nothing of a book run, the others point to the private chat."""

    async def allowlist(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        if update.edited_message is not None or update.edited_channel_post is not None:
            log.info("edited message %s ignored: edits never run a command again",
                     update.effective_message and update.effective_message.message_id)
            raise ApplicationHandlerStop
        user, chat = update.effective_user, update.effective_chat
        private = chat is None or chat.type == "private"
        command = _command_name(update)
        if settings.allowed_user_ids and not (user is not None and settings.is_allowed(user.id)):
            log.info("refused update from user %s (not in ALLOWED_USER_IDS)", user and user.id)
            if user is not None:
                text = NOT_ALLOWED.format(user_id=user.id)
                if update.callback_query is not None:
                    await update.callback_query.answer(text[:200], show_alert=True)
                elif chat is not None and (private or (
                        command and _refusal_due(context.bot_data, chat.id, time.monotonic()))):
                    await context.bot.send_message(chat.id, html.escape(text))
            raise ApplicationHandlerStop
        if private:
            return
        if update.callback_query is not None:
            await update.callback_query.answer(GROUP_POINTER.format(command="check")[:200],
                                               show_alert=True)
            raise ApplicationHandlerStop
        if command in GROUP_COMMANDS:
            return
        if command is not None and chat is not None:
            await context.bot.send_message(chat.id, html.escape(GROUP_POINTER.format(
                command=command[:32])))
        raise ApplicationHandlerStop  # plain group talk is not for the bot

    return allowlist


def _domain_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = []
    try:
        from bot.services import UserError

        kinds.append(UserError)
    except ImportError:  # pragma: no cover - features not landed
        pass
    try:
        from bot.parsing import ParseError

        kinds.append(ParseError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from bot.store import NotFound, ValidationError

        kinds += [NotFound, ValidationError]
    except ImportError:  # pragma: no cover - store not landed
        pass
    return tuple(kinds)


def user_message_for(error: BaseException) -> str | None:
    """A user's mistake that escaped its handler still becomes a reply naming the problem and
    the correct form (as HTML); None for anything else (a bug: the friendly error)."""
    if not isinstance(error, _domain_errors()):
        return None
    problems = getattr(error, "problems", None)
    message = "; ".join(map(str, problems)) if problems else getattr(error, "message", None)
    text = f"⚠️ {html.escape(str(message or error))}"
    usage = getattr(error, "usage", "")
    if usage:
        text += f"\nCorrect form: <code>{html.escape(usage)}</code>"
    elif type(error).__name__ == "NotFound":
        text += "\n/positions lists your ids."
    return text


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the traceback; tell the user something useful, never the traceback."""
    error = context.error
    if isinstance(error, (NetworkError, TimedOut)) and not isinstance(update, Update):
        log.warning("network problem while polling: %s", error)
        return
    if isinstance(error, Forbidden):
        log.warning("the user blocked the bot or left the chat: %s", error)
        return
    domain_message = user_message_for(error) if error is not None else None
    if domain_message is None:
        summary = update.to_dict() if isinstance(update, Update) else repr(update)
        log.error("unhandled error while handling update %s", summary, exc_info=error)
    else:  # a handler let a user's mistake through: worth fixing, not an alarm
        log.warning("user error reached the error handler: %r", error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    text = domain_message or FRIENDLY_ERROR
    try:
        if update.callback_query is not None:
            # It may be answered already, or too old: the message below still goes.
            with contextlib.suppress(Exception):
                await update.callback_query.answer()
        await context.bot.send_message(update.effective_chat.id, text)
    except Exception:
        log.exception("could not tell the user about the error")


# --- hooks -----------------------------------------------------------------------------------


async def _install_jobs(application: Application) -> None:
    """Schedule the reports, the official close and the intraday watch on
    `application.job_queue` (PTB starts and stops it with the application)."""
    if not application.bot_data.get("install_jobs", True):
        return
    from bot import scheduler  # deferred like the other subsystems: only a running bot needs it

    await scheduler.setup(application)


async def warm_up(services: Any) -> None:
    """What the first /check after a start would otherwise wait for (~2 s): the market data,
    the engine (`Services.warm_up`) and every reply template. Then what is loaded (it lives as
    long as the process) is frozen out of the cyclic collector, whose full passes would
    otherwise walk those ~200,000 objects again, in the middle of some user's reply."""
    from bot.render import compile_templates

    try:
        await services.warm_up()
        await asyncio.to_thread(compile_templates)
    finally:
        gc.collect()
        gc.freeze()


async def _warm_up(application: Application) -> None:
    """`warm_up` in the background of a start; a failure is a warning, never the bot's end."""
    t0 = time.monotonic()
    try:
        await warm_up(application.bot_data["services"])
    except Exception as exc:  # the first /check loads what it needs, and says what failed
        log.warning("warm-up did not finish (%s: %s); the first /check will load what it needs",
                    type(exc).__name__, exc)
    else:
        log.info("warm-up done in %.1f s", time.monotonic() - t0)


async def _post_init(application: Application) -> None:
    services = application.bot_data.get("services")
    store = getattr(services, "store", None) or application.bot_data.get("store")
    if store is not None:
        await migrate_store(store)
    await _install_jobs(application)
    if application.bot_data.get("warm_up") and hasattr(services, "warm_up"):
        # a plain task: PTB's create_task warns before the application runs
        application.bot_data["warm_up_task"] = asyncio.create_task(_warm_up(application),
                                                                   name="alvh-warm-up")
    commands = application.bot_data.get("bot_commands") or []
    if commands:
        await application.bot.set_my_commands([BotCommand(c, d) for c, d in commands])
    me = application.bot
    log.info("bot @%s ready", me.username)


async def _post_shutdown(application: Application) -> None:
    task = application.bot_data.pop("warm_up_task", None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # the cancellation we asked for
            await task
    services = application.bot_data.get("services")
    # Services itself holds nothing to release (and its `close` closes a position).
    for resource, closers in (
        (getattr(services, "provider", None) or application.bot_data.get("provider"), ("aclose",)),
        (getattr(services, "store", None) or application.bot_data.get("store"), ("close",)),
    ):
        if resource is None:
            continue
        try:
            await _call_maybe(resource, *closers)
        except Exception:
            log.exception("closing %s failed", type(resource).__name__)


# --- the builder -----------------------------------------------------------------------------


def _retry_after_max_s(settings: Settings) -> float:
    """ALVH_RETRY_AFTER_MAX_S for the rate limiter; a bad value is reported (and stops the
    start) by the scheduler's set-up, which reads the same variables."""
    from bot.scheduler.settings import JobConfigError, JobSettings

    try:
        return JobSettings.from_env(settings.subsystem_env).retry_after_max_s
    except JobConfigError:
        return JobSettings.retry_after_max_s


def build_application(
    settings: Settings,
    *,
    store: Any = None,
    provider: Any = None,
    clock: Clock | None = None,
    services: Any = None,
    handlers: Iterable[BaseHandler] | None = None,
    bot_commands: list[tuple[str, str]] | None = None,
    rate_limiter: BaseRateLimiter | bool | None = None,
    install_jobs: bool = True,
    concurrent_updates: int | None = None,
    warm_up: bool = False,
) -> Application:
    """The bot, ready for `async with app:` / `app.run_polling()`.

    `store`, `provider`, `clock` default to the ones `settings` names. Tests may inject
    `services` (anything handlers expect in `bot_data["services"]`), their own `handlers` and
    `bot_commands` (default: `bot.telegram.handlers.all_handlers()` and `BOT_COMMANDS`), and a
    `rate_limiter` (None: `BoundedRateLimiter` with the settings' limits; False: none), and turn
    off the scheduled jobs (`install_jobs=False`). `warm_up=True` (`alvh start`, the console)
    loads market data, engine and templates in the background once started. Updates are
    processed concurrently across users and in order within a user, at most
    `concurrent_updates` at once (default ALVH_CONCURRENT_UPDATES; bot/telegram/serving.py).
    """
    if not settings.telegram_bot_token:
        raise ConfigError(["TELEGRAM_BOT_TOKEN is not set; get one from @BotFather"])

    if handlers is None or bot_commands is None:
        from bot.telegram.handlers import BOT_COMMANDS, all_handlers

        handlers = all_handlers() if handlers is None else handlers
        bot_commands = list(BOT_COMMANDS) if bot_commands is None else bot_commands

    if services is None:
        from bot.services import Services

        provider = provider if provider is not None else default_provider(settings)
        clock = clock if clock is not None else default_clock(settings, provider)
        store = store if store is not None else default_store(settings, clock)
        services = Services(store=store, provider=provider, clock=clock, settings=settings)

    if rate_limiter is None or rate_limiter is True:
        rate_limiter = BoundedRateLimiter(
            overall_max_rate=settings.rate_limit_overall_per_second,
            overall_time_period=1,
            group_max_rate=settings.rate_limit_group_per_minute,
            group_time_period=60,
            max_retries=settings.rate_limit_max_retries,
            retry_after_max_s=_retry_after_max_s(settings),
        )

    if concurrent_updates is None:
        concurrent_updates = Serving.from_settings(settings).concurrent_updates

    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.base_file_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=settings.tzinfo))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .concurrent_updates(PerUserUpdateProcessor(concurrent_updates))
    )
    if rate_limiter:
        builder = builder.rate_limiter(rate_limiter)
    application = builder.build()

    application.bot_data["services"] = services
    application.bot_data["settings"] = settings
    application.bot_data["bot_commands"] = list(bot_commands)
    application.bot_data["install_jobs"] = install_jobs
    application.bot_data["warm_up"] = warm_up
    if store is not None:
        application.bot_data["store"] = store
    if provider is not None:
        application.bot_data["provider"] = provider

    application.add_handler(TypeHandler(Update, make_allowlist_callback(settings)), ACCESS_GROUP)
    application.add_handlers(list(handlers))
    application.add_error_handler(error_handler)
    log.debug(
        "application built: api %s, token %s, provider %s",
        settings.telegram_api_base_url,
        mask_token(settings.telegram_bot_token),
        settings.market_data_provider,
    )
    return application


async def start_polling(application: Application, *, poll_timeout: float = 10) -> Application:
    """Start outside `run_polling` (console, tests) with the same hooks `run_polling` runs:
    initialize → post_init → polling → start."""
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    await application.updater.start_polling(poll_interval=0, timeout=poll_timeout)
    await application.start()
    return application


async def stop_polling(application: Application) -> None:
    """The reverse of `start_polling`: stop polling → stop → post_stop → shutdown →
    post_shutdown. Safe to call on a partly started application."""
    try:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
            if application.post_stop:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)
