"""How updates reach the bot and in what order they are handled.

- `Serving.from_settings`: polling (the default) or a webhook, chosen by `ALVH_WEBHOOK_URL`
  (with `ALVH_WEBHOOK_SECRET`, `ALVH_WEBHOOK_LISTEN`, `ALVH_WEBHOOK_PORT`; bot/environment.py).
- `PerUserUpdateProcessor`: updates of different users run concurrently (at most
  `ALVH_CONCURRENT_UPDATES` at once), the updates of one user one after another in arrival
  order, so "/add" then "/check" never answers the check first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from telegram import Update
from telegram.ext import Application, BaseUpdateProcessor

from bot.config import ConfigError, Settings
from bot.environment import Environment, EnvironmentProblems

SERVING_VARIABLES = ("ALVH_WEBHOOK_URL", "ALVH_WEBHOOK_LISTEN", "ALVH_WEBHOOK_PORT",
                     "ALVH_WEBHOOK_SECRET", "ALVH_CONCURRENT_UPDATES")


@dataclass(frozen=True)
class Serving:
    """`webhook_url` None: long polling. The secret never shows in repr."""

    webhook_url: str | None = None
    listen: str = "127.0.0.1"
    port: int = 8080
    secret: str | None = field(default=None, repr=False)
    concurrent_updates: int = 32

    @property
    def mode(self) -> str:
        return "polling" if self.webhook_url is None else "webhook"

    @property
    def url_path(self) -> str:
        """The local path PTB's webhook server answers on: the public URL's path (a proxy
        forwards it unchanged)."""
        return urlsplit(self.webhook_url or "").path.lstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> Serving:
        try:
            env = Environment.parse(settings.subsystem_env, only=SERVING_VARIABLES)
        except EnvironmentProblems as err:
            raise ConfigError(err.problems) from None
        secret = env.webhook_secret
        return cls(
            webhook_url=env.webhook_url,
            listen=env.webhook_listen,
            port=env.webhook_port,
            secret=secret.get_secret_value() if secret is not None else None,
            concurrent_updates=env.concurrent_updates,
        )


def update_key(update: object) -> Hashable | None:
    """Whose update this is: the user, else the chat; None (no ordering) for updates with
    neither (polls, for instance)."""
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return ("user", update.effective_user.id)
    if update.effective_chat is not None:
        return ("chat", update.effective_chat.id)
    return None


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across users, in order within a user.

    PTB starts one task per update in arrival order. Each task first takes its user's lock
    (asyncio.Lock wakes waiters first come, first served, so one user's updates run in arrival
    order), and only then a slot of the global bound: a user with a queue of updates holds
    one slot, not all of them. A user's lock is dropped once no update of theirs is waiting.
    """

    __slots__ = ("_locks", "_waiting")

    def __init__(self, max_concurrent_updates: int):
        super().__init__(max_concurrent_updates)
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: dict[Hashable, int] = {}  # updates holding or awaiting the lock

    @property
    def users_in_flight(self) -> int:
        """Users with an update running or waiting (0 when idle: no lock is kept)."""
        return len(self._locks)

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = update_key(update)
        if key is None:
            await super().process_update(update, coroutine)
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await super().process_update(update, coroutine)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


async def start_webhook(application: Application, serving: Serving) -> Application:
    """Start outside `run_webhook` (tests) with the hooks `run_webhook` runs: initialize →
    post_init → webhook server (setWebhook with the secret) → start."""
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    await application.updater.start_webhook(**_webhook_options(serving))
    await application.start()
    return application


def run(application: Application, serving: Serving, bootstrap_retries: int = 0) -> None:
    """Run until stopped (Ctrl-C, SIGTERM), polling or on the webhook; `bootstrap_retries`
    start-up attempts so a network blip at start-up does not end the bot."""
    if serving.webhook_url is None:
        application.run_polling(allowed_updates=Update.ALL_TYPES,
                                bootstrap_retries=bootstrap_retries)
        return
    application.run_webhook(**_webhook_options(serving), bootstrap_retries=bootstrap_retries)


def _webhook_options(serving: Serving) -> dict:
    """What `start_webhook` and `run_webhook` are both given: where to listen, the public URL
    and the secret Telegram must echo."""
    return dict(listen=serving.listen, port=serving.port, url_path=serving.url_path,
                webhook_url=serving.webhook_url, secret_token=serving.secret,
                allowed_updates=Update.ALL_TYPES)
