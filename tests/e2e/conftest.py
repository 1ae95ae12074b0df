"""Shared fixtures: a fake Bot API server and the real PTB Application polling it."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.config import Settings
from bot.telegram.app import build_application, start_polling, stop_polling

# tests/ is not a package: make `import fakebotapi` work for this folder's modules.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from fakebotapi import LOCAL_TOKEN, FakeBotAPI, settle

E2E_TIMEOUT_S = 60  # per test: a hung poll fails the test instead of stalling the run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))


@pytest.fixture
def fake_api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as api:
        yield api


@pytest.fixture
def e2e_settings(fake_api: FakeBotAPI, database_url: str) -> Settings:
    return Settings(
        telegram_bot_token=LOCAL_TOKEN,
        telegram_api_base_url=fake_api.base_url,
        database_url=database_url,
        market_data_provider="offline",
    )


POLL_TIMEOUT_S = 1  # short long-polls: a stopped bot's last poll ends quickly


async def start_bot(app: Application) -> Application:
    return await start_polling(app, poll_timeout=POLL_TIMEOUT_S)


async def stop_bot(app: Application) -> None:
    await stop_polling(app)


@pytest.fixture(scope="session")
def offline_provider():
    """One offline sample provider for the session: it is read-only, and loading the sample
    for every test would cost most of the suite's time."""
    from bot.telegram.app import default_provider

    return default_provider(Settings(market_data_provider="offline"))


SETTLE_TIMEOUT_S = 45.0  # under the 60 s per-test limit


class BotRunner:
    """Starts bots for a test and stops every one of them at teardown."""

    def __init__(self, api: FakeBotAPI, settings: Settings, provider=None):
        self.api = api
        self.settings = settings
        self.provider = provider
        self.apps: list[Application] = []

    async def start(self, settings: Settings | None = None, **overrides) -> Application:
        """`overrides`: Settings fields (e.g. allowed_user_ids) and build_application kwargs."""
        fields = {f.name for f in dataclasses.fields(Settings)}
        setting_changes = {k: v for k, v in overrides.items() if k in fields}
        build_kwargs = {k: v for k, v in overrides.items() if k not in fields}
        if "services" not in build_kwargs:
            build_kwargs.setdefault("provider", self.provider)
        settings = dataclasses.replace(settings or self.settings, **setting_changes)
        app = build_application(settings, **build_kwargs)
        self.apps.append(app)
        return await start_bot(app)

    async def stop(self, app: Application) -> None:
        await stop_bot(app)
        if app in self.apps:
            self.apps.remove(app)

    async def settle(self, app: Application | None = None) -> None:
        # a generous limit (TimeoutError past it): settling returns as soon as the bot is idle,
        # and the first update of a session (PostgreSQL's first connection) may be slow
        await settle(self.api, app or self.apps[-1], timeout=SETTLE_TIMEOUT_S)


@pytest.fixture
async def bots(
    fake_api: FakeBotAPI, e2e_settings: Settings, offline_provider
) -> AsyncIterator[BotRunner]:
    runner = BotRunner(fake_api, e2e_settings, offline_provider)
    yield runner
    for app in reversed(runner.apps):
        await stop_bot(app)
