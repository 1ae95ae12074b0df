"""Issue 13, privacy: the book never reaches a group, the private chat id is never replaced by a
group's, strangers in a group are answered sparingly, and an edited command never runs again.
Real handlers, real store, the real PTB stack polling the fake Bot API server."""

from __future__ import annotations

ANN, BOB, STRANGER = 701, 702, 799
GROUP = -100_555
ADD = "/add SPXW 2026-08-21 5600/5650/6150/6200 x2 @4.35 secretlabel"


async def _send(api, bots, user_id, text, chat_id=None, name="Ann"):
    update = api.inject_message(user_id, chat_id, text, first_name=name)
    await bots.settle()
    return update["message"]["message_id"]


def _texts(api, chat_id):
    return [r.get("text", "") for r in api.drain(chat_id)]


async def test_a_group_command_never_replaces_the_private_chat_id(bots, fake_api):
    app = await bots.start()
    store = app.bot_data["services"].store
    await _send(fake_api, bots, ANN, "/start")
    await _send(fake_api, bots, ANN, "/settings", chat_id=GROUP)
    assert store.get_settings(ANN).chat_id == ANN  # reports keep going to the private chat


async def test_position_commands_in_a_group_point_to_the_private_chat(bots, fake_api):
    await bots.start()
    await _send(fake_api, bots, ANN, ADD)
    fake_api.drain(ANN)
    for command in ("/positions", "/check", "/check 1", "/report", "/hedge 1", "/export",
                    "/roll 1", "/settings", ADD):
        await _send(fake_api, bots, ANN, command, chat_id=GROUP)
        (reply,) = _texts(fake_api, GROUP)
        assert "private chat" in reply and "secretlabel" not in reply and "5600" not in reply
    assert fake_api.drain(ANN) == []  # nothing leaked to the private chat either


async def test_strangers_in_a_group_get_one_refusal_per_hour_and_only_for_commands(
        bots, fake_api):
    await bots.start(allowed_user_ids=frozenset({ANN}))
    await _send(fake_api, bots, STRANGER, "hello everyone", chat_id=GROUP, name="S")
    assert _texts(fake_api, GROUP) == []  # plain group talk: silence
    await _send(fake_api, bots, STRANGER, "/check", chat_id=GROUP, name="S")
    (refusal,) = _texts(fake_api, GROUP)
    assert "private" in refusal
    await _send(fake_api, bots, STRANGER, "/positions", chat_id=GROUP, name="S")
    assert _texts(fake_api, GROUP) == []  # at most once per chat per hour
    await _send(fake_api, bots, STRANGER, "/check", name="S")  # a private chat still answers
    assert len(_texts(fake_api, STRANGER)) == 1


async def test_editing_a_command_never_runs_it_again(bots, fake_api):
    app = await bots.start()
    store = app.bot_data["services"].store
    mid = await _send(fake_api, bots, ANN, ADD)
    fake_api.drain(ANN)
    fake_api.inject_edit(ANN, None, mid, ADD.replace("@4.35", "@4.40"))
    await bots.settle()
    assert len(store.list_positions(ANN)) == 1
    close_id = await _send(fake_api, bots, ANN, "/close 1 @1.00")
    assert store.list_positions(ANN, "all")[0].status == "closed"
    fake_api.drain(ANN)
    fake_api.inject_edit(ANN, None, close_id, "/close 1 @2.00")
    await bots.settle()
    [row] = store.list_positions(ANN, "all")
    assert float(row.closing_debit) == 1.00
    replies = _texts(fake_api, ANN)
    assert all("Closed" not in r for r in replies)
