"""The platform over real HTTP: PTB Application ↔ fake Bot API server, with tiny handlers
registered by the test (independent of the feature handlers)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from fakebotapi import LOCAL_TOKEN, FakeBotAPI
from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.telegram.app import FRIENDLY_ERROR

USER = 501
OTHER = 502


async def hello(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    name = update.effective_user.first_name
    await update.message.reply_text(f"Hello <b>{name}</b> — services: {context.bot_data['x']}")


async def boom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    raise RuntimeError("secret internal detail /home/db.sqlite line 42")


async def bad_html(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.message.reply_text("line one<br>line two")


def tiny(**extra):
    context_services = SimpleNamespace(name="fake services")
    return dict(
        services=context_services,
        handlers=[
            CommandHandler("start", hello),
            CommandHandler("boom", boom),
            CommandHandler("badhtml", bad_html),
        ],
        bot_commands=[("start", "Begin here"), ("boom", "Fail on purpose")],
        **extra,
    )


async def start_tiny(bots, **extra):
    app = await bots.start(**tiny(**extra))
    app.bot_data["x"] = "ok"
    return app


async def test_start_reply_over_real_http(bots, fake_api: FakeBotAPI):
    app = await start_tiny(bots)
    assert app.bot_data["services"].name == "fake services"
    fake_api.inject_message(USER, None, "/start", first_name="Ann")
    (reply,) = await fake_api.async_wait_for_messages(USER, 1)
    assert reply["text"] == "Hello Ann — services: ok"
    assert reply["html"] == "Hello <b>Ann</b> — services: ok"
    # Defaults(parse_mode=HTML) reached the wire: the server parsed a bold entity.
    assert reply["entities"] == [{"type": "bold", "offset": 6, "length": 3}]
    assert reply["from"]["is_bot"] is True
    # post_init published the command menu.
    assert fake_api.commands == [
        {"command": "start", "description": "Begin here"},
        {"command": "boom", "description": "Fail on purpose"},
    ]
    assert app.bot.defaults.tzinfo.key == "America/New_York"


async def test_allowlist_refuses_others_politely(bots, fake_api: FakeBotAPI):
    await start_tiny(bots, allowed_user_ids=frozenset({USER}))
    fake_api.inject_message(OTHER, None, "/start")
    (refusal,) = await fake_api.async_wait_for_messages(OTHER, 1)
    assert "not on its list" in refusal["text"]
    assert str(OTHER) in refusal["text"]
    fake_api.inject_message(USER, None, "/start", first_name="Ann")
    (reply,) = await fake_api.async_wait_for_messages(USER, 1)
    assert reply["text"].startswith("Hello Ann")
    await bots.settle()
    # The refused user got exactly one message: the handler never ran for them.
    assert fake_api.drain(OTHER) == []


async def test_allowlist_refuses_callback_with_an_alert(bots, fake_api: FakeBotAPI):
    pressed = []

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        pressed.append(update.callback_query.data)

    app = await start_tiny(bots, allowed_user_ids=frozenset({USER}))
    app.add_handler(CallbackQueryHandler(on_button))
    fake_api.inject_message(USER, None, "/start")
    (reply,) = await fake_api.async_wait_for_messages(USER, 1)
    # Another user forwards/gets hold of the message id and presses a button on it.
    query_id = fake_api.inject_callback(OTHER, USER, reply["message_id"], "chk:1:refresh")
    await bots.settle()
    answer = fake_api.callback_answer(query_id)
    assert answer["answered"] and answer["show_alert"]
    assert "not on its list" in answer["text"]
    assert pressed == []


async def test_error_handler_logs_traceback_and_tells_user(bots, fake_api, caplog):
    await start_tiny(bots)
    with caplog.at_level(logging.ERROR, logger="bot.telegram.app"):
        fake_api.inject_message(USER, None, "/boom")
        (reply,) = await fake_api.async_wait_for_messages(USER, 1)
    assert reply["text"] == FRIENDLY_ERROR
    assert "secret internal detail" not in reply["text"]
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret internal detail" in str(logged[0].exc_info[1])
    # The bot keeps running.
    fake_api.inject_message(USER, None, "/start")
    (after,) = await fake_api.async_wait_for_messages(USER, 1)
    assert after["text"].startswith("Hello")


async def test_html_telegram_would_refuse_becomes_the_friendly_error(bots, fake_api):
    await start_tiny(bots)
    fake_api.inject_message(USER, None, "/badhtml")
    (reply,) = await fake_api.async_wait_for_messages(USER, 1)
    assert reply["text"] == FRIENDLY_ERROR
    refused = [c for c in fake_api.calls_of("sendMessage") if not c.ok]
    assert refused and "can't parse entities" in refused[0].description


async def test_retry_after_is_waited_out_by_the_rate_limiter(bots, fake_api: FakeBotAPI):
    await start_tiny(bots)
    fake_api.add_retry_after(seconds=1, times=1, chat_id=USER)
    fake_api.inject_message(USER, None, "/start")
    (reply,) = await fake_api.async_wait_for_messages(USER, 1, timeout=10)
    assert reply["text"].startswith("Hello")
    sends = fake_api.calls_of("sendMessage")
    assert [c.ok for c in sends] == [False, True]
    assert sends[0].description == "Too Many Requests: retry after 1"
    assert sends[1].at - sends[0].at >= 0.9


async def test_blocked_user_is_logged_not_fatal(bots, fake_api: FakeBotAPI, caplog):
    await start_tiny(bots)
    fake_api.forbid_chat(OTHER)
    with caplog.at_level(logging.WARNING, logger="bot.telegram.app"):
        fake_api.inject_message(OTHER, None, "/start")
        await bots.settle()
    assert any("blocked" in r.getMessage() for r in caplog.records)
    fake_api.inject_message(USER, None, "/start")
    (reply,) = await fake_api.async_wait_for_messages(USER, 1)
    assert reply["text"].startswith("Hello")


async def test_wrong_token_is_refused_at_start(bots, fake_api: FakeBotAPI):
    from telegram.error import InvalidToken

    with pytest.raises(InvalidToken):
        await bots.start(telegram_bot_token=LOCAL_TOKEN.replace("local", "other"), **tiny())


async def test_hooks_install_jobs_and_close_resources(bots, fake_api, monkeypatch):
    import bot.scheduler

    events = []

    async def setup(application):
        events.append(("jobs", application.job_queue is not None))

    class Store:
        engine = None  # nothing to migrate

        def close(self):
            events.append("store closed")

    class Provider:
        async def aclose(self):
            events.append("provider closed")

    monkeypatch.setattr(bot.scheduler, "setup", setup)
    services = SimpleNamespace(store=Store(), provider=Provider())
    app = await bots.start(**{**tiny(), "services": services})
    assert events == [("jobs", True)]
    await bots.stop(app)
    assert events == [("jobs", True), "provider closed", "store closed"]
