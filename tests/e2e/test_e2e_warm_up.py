"""The start-up warm-up (`build_application(warm_up=True)`, as `alvh start` and the console run):
market data, engine and templates are loaded before the first user asks, a failure costs
nothing but a log line, and a bot stopped mid-warm-up stops cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from conftest import BotRunner

from bot.marketdata.errors import MarketDataError

USER = 4242


class CountingProvider:
    """The offline sample, counting snapshot fetches; `fail` raises, `gate` holds the fetch."""

    def __init__(self, inner, *, fail: bool = False, gate: asyncio.Event | None = None):
        self.inner, self.fail, self.gate = inner, fail, gate
        self.snapshots = 0
        self.name = inner.name

    async def snapshot(self, asof):
        self.snapshots += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise MarketDataError("cboe _VIX", "http", "connection refused")
        return await self.inner.snapshot(asof)

    async def history(self):
        return await self.inner.history()

    async def events(self):
        return await self.inner.events()


@pytest.fixture
def unfreeze():
    yield
    gc.unfreeze()  # the warm-up froze this test process's objects: hand them back to the GC


async def test_the_market_is_loaded_before_the_first_check_which_then_fetches_nothing(
        bots: BotRunner, offline_provider, unfreeze):
    provider = CountingProvider(offline_provider)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    # no jobs: they fetch on their own; here only the warm-up can have fetched
    app = await bots.start(provider=provider, warm_up=True, install_jobs=False)
    await asyncio.wait_for(app.bot_data["warm_up_task"], 30)
    assert provider.snapshots == 1  # fetched with no user in sight
    assert gc.get_freeze_count() > 0  # what start-up loaded is out of the collector's walks
    bots.api.inject_message(USER, None, "/check")
    await bots.settle()
    reply = bots.api.sent(USER)[-1].html
    assert "EDR" in reply and "as of" in reply
    assert provider.snapshots == 1  # the warmed snapshot served the check


async def test_a_failed_warm_up_is_logged_and_the_bot_still_answers(
        bots: BotRunner, offline_provider, unfreeze, caplog):
    provider = CountingProvider(offline_provider, fail=True)
    with caplog.at_level(logging.WARNING, logger="bot.telegram.app"):
        app = await bots.start(provider=provider, warm_up=True)
        await asyncio.wait_for(app.bot_data["warm_up_task"], 30)
    assert any("warm-up did not finish" in r.getMessage() and "cboe _VIX" in r.getMessage()
               for r in caplog.records)
    bots.api.inject_message(USER, None, "/check")
    await bots.settle()
    reply = bots.api.sent(USER)[-1].html
    assert "market data is unavailable right now (cboe _VIX)" in reply
    assert "Traceback" not in reply
    provider.fail = False  # the source is back: the next /check loads and answers
    bots.api.inject_message(USER, None, "/check")
    await bots.settle()
    assert "EDR" in bots.api.sent(USER)[-1].html


async def test_a_bot_stopped_during_its_warm_up_stops_cleanly(bots: BotRunner, offline_provider,
                                                               unfreeze):
    gate = asyncio.Event()  # a slow source: the fetch answers a second later
    provider = CountingProvider(offline_provider, gate=gate)
    app = await bots.start(provider=provider, warm_up=True)
    task = app.bot_data["warm_up_task"]
    await asyncio.sleep(0.1)
    assert provider.snapshots == 1 and not task.done()
    asyncio.get_running_loop().call_later(1.0, gate.set)
    await asyncio.wait_for(bots.stop(app), 20)  # jobs waiting on the same fetch end too
    assert task.done() and "warm_up_task" not in app.bot_data


async def test_a_warm_up_still_waiting_at_shutdown_is_cancelled(bots: BotRunner,
                                                                offline_provider, unfreeze):
    gate = asyncio.Event()  # never set: a source that does not answer
    provider = CountingProvider(offline_provider, gate=gate)
    app = await bots.start(provider=provider, warm_up=True, install_jobs=False)
    task = app.bot_data["warm_up_task"]
    await asyncio.sleep(0.1)
    await asyncio.wait_for(bots.stop(app), 20)
    assert task.cancelled()


async def test_without_warm_up_nothing_is_fetched_until_asked(bots: BotRunner, offline_provider):
    provider = CountingProvider(offline_provider)
    app = await bots.start(provider=provider, install_jobs=False)  # jobs fetch on their own
    await asyncio.sleep(0.3)
    assert "warm_up_task" not in app.bot_data and provider.snapshots == 0
