"""How updates reach the bot: webhook mode with its secret token, and the per-user update
processor (concurrent across users, in order within a user), end to end against the fake
Bot API server."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import httpx
import pytest
from fakebotapi import FakeBotAPI, html_to_text
from telegram import Update
from telegram.ext import CommandHandler, ContextTypes

from bot.config import ConfigError, Settings
from bot.telegram.app import build_application, stop_polling
from bot.telegram.serving import PerUserUpdateProcessor, Serving, start_webhook

ANN, BOB, EVE = 1001, 1002, 1003
SECRET = "s3cret_Token-42"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _webhook_settings(settings: Settings, port: int, **extra: str) -> Settings:
    return dataclasses.replace(settings, subsystem_env={
        "ALVH_WEBHOOK_URL": "https://bot.example.com/telegram/hook",
        "ALVH_WEBHOOK_LISTEN": "127.0.0.1",
        "ALVH_WEBHOOK_PORT": str(port),
        "ALVH_WEBHOOK_SECRET": SECRET,
        **extra,
    })


def test_webhook_mode_needs_its_secret_and_an_https_url(e2e_settings):
    no_secret = dataclasses.replace(
        e2e_settings, subsystem_env={"ALVH_WEBHOOK_URL": "https://bot.example.com/hook"})
    with pytest.raises(ConfigError, match="ALVH_WEBHOOK_SECRET is not set"):
        Serving.from_settings(no_secret)
    plain_http = dataclasses.replace(no_secret, subsystem_env={
        "ALVH_WEBHOOK_URL": "http://bot.example.com/hook", "ALVH_WEBHOOK_SECRET": SECRET})
    with pytest.raises(ConfigError, match="must be the public https URL"):
        Serving.from_settings(plain_http)
    bad_secret = dataclasses.replace(no_secret, subsystem_env={
        "ALVH_WEBHOOK_URL": "https://bot.example.com/hook", "ALVH_WEBHOOK_SECRET": "a b"})
    with pytest.raises(ConfigError, match="Telegram's rule for secret_token"):
        Serving.from_settings(bad_secret)
    serving = Serving.from_settings(_webhook_settings(e2e_settings, 8443))
    assert (serving.mode, serving.url_path, serving.port) == ("webhook", "telegram/hook", 8443)
    assert SECRET not in repr(serving)
    assert Serving.from_settings(e2e_settings).mode == "polling"


async def test_webhook_answers_only_requests_with_the_secret_token(
    fake_api: FakeBotAPI, e2e_settings, offline_provider
):
    port = _free_port()
    settings = _webhook_settings(e2e_settings, port)
    serving = Serving.from_settings(settings)
    app = build_application(settings, provider=offline_provider, install_jobs=False)
    await start_webhook(app, serving)
    try:
        # The bot registered its public URL and the secret Telegram is to send back.
        assert fake_api.webhook == {"url": "https://bot.example.com/telegram/hook",
                                    "secret_token": SECRET}
        local = f"http://127.0.0.1:{port}/telegram/hook"
        header = "X-Telegram-Bot-Api-Secret-Token"
        def start(user: int) -> dict:
            return fake_api.inject_message(user, None, "/start", queue=False)

        async with httpx.AsyncClient(timeout=10) as client:
            missing = await client.post(local, json=start(BOB))
            wrong = await client.post(local, json=start(EVE), headers={header: SECRET + "x"})
            right = await client.post(local, json=start(ANN), headers={header: SECRET})
        assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
        (reply,) = await fake_api.async_wait_for_messages(ANN, 1)
        assert "ALVH" in html_to_text(reply["text"])
        assert await fake_api.async_wait_idle(0.3, 20)
        assert app.update_processor.current_concurrent_updates == 0
        assert fake_api.sent(BOB) == [] and fake_api.sent(EVE) == []
        assert len(fake_api.sent(ANN)) == 1
        # Telegram refuses getUpdates while a webhook is set: polling is really off.
        assert not any(c.ok for c in fake_api.calls_of("getUpdates"))
    finally:
        await stop_polling(app)


async def test_updates_run_concurrently_across_users_and_in_order_within_one(
    fake_api: FakeBotAPI, e2e_settings, offline_provider
):
    """Ann's first command blocks until Bob has been answered: if one update held up every
    other, Bob's reply would never come. Ann's second command needs no wait: if a user's
    updates were not kept in order, it would overtake her first. With a bound of two, Ann's
    queued updates must not take both slots from Bob."""
    gate = asyncio.Event()
    handled: list[tuple[int, str]] = []

    async def work(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        word = context.args[0]
        if word == "first":
            await gate.wait()
        handled.append((update.effective_user.id, word))
        await update.effective_message.reply_text(word)

    app = build_application(
        e2e_settings, provider=offline_provider, handlers=[CommandHandler("work", work)],
        bot_commands=[], install_jobs=False, concurrent_updates=2,
    )
    assert isinstance(app.update_processor, PerUserUpdateProcessor)
    from conftest import start_bot, stop_bot

    await start_bot(app)
    try:
        for word in ("first", "second", "third"):
            fake_api.inject_message(ANN, None, f"/work {word}")
        fake_api.inject_message(BOB, None, "/work bob")
        (bob,) = await fake_api.async_wait_for_messages(BOB, 1, timeout=20)
        assert bob["text"] == "bob"
        assert fake_api.sent(ANN) == [] and handled == [(BOB, "bob")]
        gate.set()
        ann = await fake_api.async_wait_for_messages(ANN, 3, timeout=20)
        assert [m["text"] for m in ann] == ["first", "second", "third"]
        assert await fake_api.async_wait_idle(0.3, 20)
        assert app.update_processor.users_in_flight == 0  # no lock kept for idle users
    finally:
        gate.set()  # a failed check must not leave the first update blocking shutdown
        await stop_bot(app)
