"""The book summary, the details with their picture and ↻ Refresh, end to end: the real bot on the
offline sample (the 2026-07-08 close) polling the fake Bot API server over HTTP (issue 14 parts 1
and 5).

The four condors are the README's "Trying it" session. What a trader sees is the message text
the server parsed out of the HTML (tags gone, entities unescaped), buttons apart.
"""

from __future__ import annotations

import struct

import pytest
from fakebotapi import FakeBotAPI, buttons_of

from bot.telegram.app import FRIENDLY_ERROR

ANN = 1414
FOUR_CONDORS = (
    "/add SPXW 2026-08-21 6950/7000/7850/7900 x1 @22.50",
    "/add SPXW 2026-08-21 6700/6750/7700/7750 x2 @12.10",
    "/add SPXW 2026-07-17 7200/7250/7600/7650 x1 @18.40",
    "/add SPXW 2026-09-18 6900/6950/7750/7800 x3 @30.00",
)
SCREEN_CHARS = 1500  # one phone screen of displayed text
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def send(api: FakeBotAPI, bots, text: str) -> list[dict]:
    api.inject_message(ANN, None, text, first_name="Ann")
    await bots.settle()
    return api.drain(ANN)


async def press(api: FakeBotAPI, bots, message: dict, label: str) -> tuple[str, list[dict]]:
    """Press the button of `message` whose text contains `label`: (query id, what came)."""
    (button,) = [b for b in buttons_of(message) if label in b["text"]]
    query = api.inject_callback(ANN, None, message["message_id"], button["callback_data"])
    await bots.settle()
    return query, api.drain(ANN)


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.fixture
async def book(bots, fake_api):
    await bots.start()
    for line in FOUR_CONDORS:
        (saved,) = await send(fake_api, bots, line)
        assert "Saved #" in saved["text"]
    return fake_api


@pytest.mark.parametrize("command", ["/check", "/report"])
async def test_four_condors_fit_one_screen_with_a_details_button_each(book, bots, command):
    (summary,) = await send(book, bots, command)  # one message
    text = summary["text"]
    assert FRIENDLY_ERROR not in text
    assert units(text) <= SCREEN_CHARS, (units(text), text)  # the book hedge included
    lines = text.splitlines()
    ids = [line.split(" ")[0] for line in lines if line.startswith("#")]
    assert ids == ["#1", "#2", "#3", "#4"]
    # #1 is inside its shorts with 44 DTE; the engine holds it (R4) on the sample
    # and points at the book hedge's purchase, which covers it
    assert "#1 7000/7850 · 44 DTE" in text
    assert text.split("\n#2")[0].endswith("· hold; buy the VIX hedge below")
    assert "#2 6750/7700 ×2 · 44 DTE" in text and "#4 6950/7750 ×3 · 72 DTE" in text
    assert "EDR 1.06 % BREACHED · VIX 16.90" in text
    assert "as of the close 2026-07-08 16:00 ET" in text  # the SPX close: the data time
    assert "Book: condor P&L" in text and "hedge coverage 0 %" in text  # no VIX layers held yet
    labels = [b["text"] for b in buttons_of(summary)]
    assert labels == ["🔎 #1 details", "🔎 #2 details", "🔎 #3 details", "🔎 #4 details",
                      "↻ Refresh"]
    if command == "/report":
        assert lines[0].startswith("ALVH report before the open of Thu 2026-07-09")


async def test_details_button_sends_the_details_and_the_payoff_picture(book, bots):
    (summary,) = await send(book, bots, "/check")
    _, replies = await press(book, bots, summary, "#2 details")
    details, photo = replies
    assert details["text"].startswith("#2 SPXW 2026-08-21 6700/6750/7700/7750 ×2")
    assert "Roll:" in details["text"] and "Greeks" in details["text"]
    assert [b["text"] for b in buttons_of(details)] == ["↻ Refresh", "⇄ Roll"]
    assert "photo" in photo and photo["caption"].startswith("Payoff of #2")
    assert "no VIX hedge held" in photo["caption"]
    data = book.file_content(photo["photo"][0]["file_id"])
    assert data[:8] == PNG_SIGNATURE
    assert struct.unpack(">II", data[16:24]) == (1200, 900)
    assert book.file_name(photo["photo"][0]["file_id"]) == "check-2.png"


async def test_check_n_shows_the_same_details_and_the_hedge_overlay(book, bots):
    (added,) = await send(book, bots, "/hedge 1 add 1 VIX 2026-07-22 20C @0.50")
    assert "Hedge added" in added["text"]
    text_reply, photo = await send(book, bots, "/check 1")
    assert text_reply["text"].startswith("#1 SPXW 2026-08-21 6950/7000/7850/7900 ×1")
    assert "green dash-dot curve is today with your 1 VIX hedge layer" in photo["caption"]
    (summary,) = await send(book, bots, "/check")
    _, (from_button, _) = await press(book, bots, summary, "#1 details")
    assert from_button["text"] == text_reply["text"]  # the button and /check 1 agree


async def test_refresh_edits_the_summary_in_place(book, bots):
    (summary,) = await send(book, bots, "/check")
    # nothing changed: no new message, no edit, and a toast says the numbers are current
    query, replies = await press(book, bots, summary, "Refresh")
    assert replies == []
    assert book.callback_answer(query)["text"].startswith("Up to date")
    # a VIX layer bought since: the same message now shows it
    await send(book, bots, "/hedge 1 add 1 VIX 2026-07-22 20C @0.50")
    query, replies = await press(book, bots, summary, "Refresh")
    (edited,) = replies
    assert edited["edited"] and edited["message_id"] == summary["message_id"]
    assert "hedge coverage 0 %" in summary["text"]
    assert "hedge coverage 0 %" not in edited["text"]  # Σ held vega > 0 now
    assert [b["text"] for b in buttons_of(edited)][-1] == "↻ Refresh"
    assert book.callback_answer(query)["answered"]
    assert book.message(ANN, summary["message_id"])["text"] == edited["text"]
    edits = book.calls_of("editMessageText")
    assert [c.ok for c in edits] == [False, True]  # "not modified", then the real edit


async def test_refresh_of_details_edits_the_text_and_keeps_the_picture(book, bots):
    details, photo = await send(book, bots, "/check 3")
    assert "photo" in photo
    await send(book, bots, "/hedge 3 add 2 VIX 2026-07-22 20C @0.50")
    _, replies = await press(book, bots, details, "Refresh")
    (edited,) = replies  # the text only: no second picture
    assert edited["edited"] and edited["message_id"] == details["message_id"]
    assert "photo" not in edited and edited["text"] != details["text"]
    assert "hedge: Δ $0 · Γ $0.00 · vega $0 ·" in details["text"]
    assert "hedge: Δ $0 · Γ $0.00 · vega $0 ·" not in edited["text"]  # the layers' vega is in


async def test_the_book_hedge_is_recorded_with_the_command_it_shows(book, bots):
    """/check names the book's purchase and the command that records it; the trader runs that
    command with the price paid, `/hedge book` lists the layer, and /check no longer asks to buy
    it, with the book's hedge coverage up (METHOD §6b, issue 14)."""
    (first,) = await send(book, bots, "/check")
    text = first["text"]
    assert "VIX hedge for the book: buy 1 VIX 2026-07-22 20C" in text
    assert "hedge coverage 0 %" in text
    (after,) = [line for line in text.splitlines() if line.startswith("After you buy: ")]
    command = after.removeprefix("After you buy: ").replace("@<cost>", "@0.50")
    assert command == "/hedge book add 1 VIX 2026-07-22 20C @0.50"
    assert units(text) <= SCREEN_CHARS

    (added,) = await send(book, bots, command)
    assert "✅ Hedge added: 1 VIX 2026-07-22 20C" in added["text"]
    assert "VIX hedges of your book (all positions)" in added["text"]
    (listed,) = await send(book, bots, "/hedge BOOK")
    assert "1. 1 VIX 2026-07-22 20C" in listed["text"]

    (second,) = await send(book, bots, "/check")
    again = second["text"]
    assert ("nothing more to buy" in again) or ("held layers are enough" in again)
    assert "buy 1 VIX" not in again and "After you buy" not in again
    assert "buy the VIX hedge below" not in again  # #1 reads plain "hold" again
    assert "hedge coverage 0 %" not in again

    (removed,) = await send(book, bots, "/hedge book remove 1 @0.60")
    assert "✅ Hedge removed: 1 VIX 2026-07-22 20C" in removed["text"]
    (wrong,) = await send(book, bots, "/hedge book remove 1")
    assert "your book has no hedges; there is no hedge 1" in wrong["text"]


async def test_part_of_a_book_hedge_line_is_sold_and_the_rest_counts(book, bots):
    """The exit rules say "sell half": the trader records selling part of a line, the reply
    names what was sold and what stays, and /check counts only the contracts still held."""
    await send(book, bots, "/hedge book add 4 VIX 2026-07-22 20C @0.50")
    (before,) = await send(book, bots, "/check")
    (too_many,) = await send(book, bots, "/hedge book remove 1 x5 @0.90")
    assert "hedge 1 holds 4 contracts; 5 cannot be sold" in too_many["text"]
    (sold,) = await send(book, bots, "/hedge book remove 1 x2 @0.90")
    # (0.90 − 0.50) × 100 × 2 = +$80
    assert ("✅ Sold 2 of the 4 contracts of 4 VIX 2026-07-22 20C @ 0.50 pts (L2); 2 stay open"
            " · closed @ 0.90 pts: +$80 realised") in sold["text"]
    assert "1. 2 VIX 2026-07-22 20C @ 0.50 pts (L2)" in sold["text"]
    (after,) = await send(book, bots, "/check")

    def coverage(text: str) -> int:
        return int(text.split("hedge coverage ")[1].split(" %")[0])

    assert 0 < coverage(after["text"]) < coverage(before["text"])
