"""Charts end to end: the real bot on the offline sample sends its pictures as `sendPhoto` with a
caption, and the bytes the server received are a PNG of the chart's size (1200 × 900)."""

from __future__ import annotations

import struct

from fakebotapi import FakeBotAPI

from bot.telegram.app import FRIENDLY_ERROR

ANN = 611
# around the sample's SPX close 7,482.71 (2026-07-08), so strikes and break-evens are on the chart
CONDOR = "/add SPXW 2026-08-21 7000/7050/7900/7950 x2 @4.35"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_PIXELS = (1200, 900)


async def send(api: FakeBotAPI, bots, text: str) -> list[dict]:
    api.inject_message(ANN, None, text, first_name="Ann")
    await bots.settle()
    return api.drain(ANN)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def photos(replies: list[dict]) -> list[dict]:
    return [r for r in replies if "photo" in r]


async def test_check_one_position_sends_payoff_photo_with_caption(bots, fake_api):
    await bots.start()
    await send(fake_api, bots, CONDOR)
    replies = await send(fake_api, bots, "/check 1")
    assert all(FRIENDLY_ERROR not in (r.get("text") or "") for r in replies)
    (photo,) = photos(replies)
    assert "#1" in photo["caption"] and "Payoff" in photo["caption"]
    (call,) = fake_api.calls_of("sendPhoto")
    assert call.params.get("caption")
    data = fake_api.file_content(photo["photo"][0]["file_id"])
    assert png_size(data) == CHART_PIXELS
    # the text answer comes first and keeps its buttons
    assert "photo" not in replies[0] and "#1" in replies[0]["text"]


async def test_check_all_sends_no_photo(bots, fake_api):
    await bots.start()
    await send(fake_api, bots, CONDOR)
    replies = await send(fake_api, bots, "/check")
    assert not photos(replies)


async def test_market_sends_edr_history_photo(bots, fake_api):
    await bots.start()
    replies = await send(fake_api, bots, "/market")
    (photo,) = photos(replies)
    assert "EDR" in photo["caption"]
    data = fake_api.file_content(photo["photo"][0]["file_id"])
    assert png_size(data) == CHART_PIXELS


def seed_cleared_roll(store) -> int:
    """A condor the offline sample clears for a roll: 2 sessions from expiry, shorts inside
    one EDR, with a VIX call layer that stabilises it (found by evaluating the sample)."""
    from datetime import date

    from bot.store import PositionInput
    from bot.store.inputs import HedgeInput

    store.ensure_user(ANN, chat_id=ANN)
    row = store.add_position(ANN, PositionInput(
        root="SPXW", expiry=date(2026, 7, 10), k1=7250, k2=7300, k3=7700, k4=7750, qty=1,
        entry_credit="1.00", opened=date(2026, 6, 5)))  # SSVI mark ≈ 0.58: not yet R2
    store.add_hedge(ANN, row.id, HedgeInput(kind="VIX_CALL", expiry=date(2026, 8, 19), qty=3,
                                            cost="1.00", strike=19))
    return row.id


async def test_roll_proposal_sends_old_and_new_condor_chart(bots, fake_api):
    app = await bots.start()
    position_id = seed_cleared_roll(app.bot_data["services"].store)
    replies = await send(fake_api, bots, f"/roll {position_id}")
    text = "\n".join(r.get("text") or "" for r in replies)
    assert FRIENDLY_ERROR not in text
    assert "/roll 1 done" in text  # the proposal's record line: a roll was proposed
    (photo,) = photos(replies)
    assert f"Roll of #{position_id}" in photo["caption"]
    data = fake_api.file_content(photo["photo"][0]["file_id"])
    assert png_size(data) == CHART_PIXELS
