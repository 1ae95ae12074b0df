"""The whole bot end to end: real handlers, real store (a temporary SQLite file), the offline
market sample, the real PTB stack polling the fake Bot API server over HTTP.

Expected numbers are derived by hand from the inputs (credit × 100 × quantity, and so on), never
read back from the code under test. The offline sample is dated 2026-07-08, so 2026-08-21 (a
Friday, a standard monthly expiry) is in the future and 2026-06-19 in the past.
"""

from __future__ import annotations

import re

import pytest
from fakebotapi import MAX_MESSAGE_LENGTH, FakeBotAPI, buttons_of, parse_html

from bot.telegram.app import FRIENDLY_ERROR

ANN, BOB, EVE = 601, 602, 603
CONDOR = "SPXW 2026-08-21 5600/5650/6150/6200"
ADD_ONE_LINER = f"/add {CONDOR} x2 @4.35"


class Chat:
    """One user talking to the bot: each send waits until the bot is idle and returns what
    it sent or edited in this chat since."""

    def __init__(self, api: FakeBotAPI, bots, user_id: int, name: str):
        self.api, self.bots, self.user_id, self.name = api, bots, user_id, name

    async def send(self, text: str) -> list[dict]:
        self.api.inject_message(self.user_id, None, text, first_name=self.name)
        return await self._replies()

    async def press(self, message: dict, data: str) -> list[dict]:
        self.api.inject_callback(self.user_id, None, message["message_id"], data)
        return await self._replies()

    async def press_text(self, message: dict, label: str) -> list[dict]:
        """Press the button whose text contains `label`."""
        matching = [b for b in buttons_of(message) if label in b["text"]]
        assert matching, f"no button {label!r} in {[b['text'] for b in buttons_of(message)]}"
        return await self.press(message, matching[0]["callback_data"])

    async def _replies(self) -> list[dict]:
        await self.bots.settle()
        replies = self.api.drain(self.user_id)
        for r in replies:  # what Telegram would have refused never reaches the chat
            html = r["html"] or ""
            assert len(html) <= MAX_MESSAGE_LENGTH
            parse_html(html)
        return replies


def entity_text(message: dict, entity: dict) -> str:
    """The text an entity covers (offsets count UTF-16 code units, as Telegram's do)."""
    units = message["text"].encode("utf-16-le")
    start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
    return units[start:end].decode("utf-16-le")


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


@pytest.fixture
async def bot(bots):
    return await bots.start()


@pytest.fixture
def ann(fake_api, bots) -> Chat:
    return Chat(fake_api, bots, ANN, "Ann")


@pytest.fixture
def bob(fake_api, bots) -> Chat:
    return Chat(fake_api, bots, BOB, "Bob")


def store_of(app):
    return app.bot_data["services"].store


# --- onboarding -------------------------------------------------------------------------------


async def test_start_onboards_with_disclaimer_and_next_steps(bot, ann, fake_api):
    (reply,) = await ann.send("/start")
    text = reply["text"]
    assert "Ann" in text
    assert "/add" in text and "/check" in text
    assert "not financial advice" in text.lower() or "not investment advice" in text.lower()
    assert "2026-07-08" in text  # the offline sample's date is named
    from bot.telegram.handlers import BOT_COMMANDS

    assert [c["command"] for c in fake_api.commands] == [c for c, _ in BOT_COMMANDS]


async def test_start_button_subscribes_like_the_command_and_twice_changes_nothing(bot, ann):
    (start,) = await ann.send("/start")
    assert "reports are off until you subscribe" in start["text"]
    assert not store_of(bot).get_settings(ANN).subscribed  # off by default
    (done,) = await ann.press_text(start, "Subscribe to the daily report")
    assert store_of(bot).get_settings(ANN).subscribed
    # offline: the subscription is kept, and no report is promised
    assert done["text"].startswith("✅ Subscribed to the daily report, saved for when")
    assert "offline sample of Wed 2026-07-08" in done["text"]
    assert "Next scheduled report: none" in done["text"]
    (again,) = await ann.send("/subscribe")
    assert again["text"].startswith("You're already subscribed: this bot runs on the offline "
                                    "sample of Wed 2026-07-08")
    assert "Updated" not in again["text"] and "✅" not in again["text"]
    (shown,) = await ann.send("/settings")  # /settings says the same as /subscribe
    assert "Next scheduled report: none — this bot runs on the offline sample" in shown["text"]
    (restart,) = await ann.send("/start")
    assert not buttons_of(restart)  # subscribed: no button
    assert "You're subscribed to the daily report" in restart["text"]


async def test_help_terms_is_one_message_that_help_points_to(bot, ann):
    (terms,) = await ann.send("/help terms")
    for word in ("EDR", "EDR states", "WPR", "h*", "B1", "B2", "B3", "B4", "L1, L2, L3",
                 "Stress offset", "Θ$", "Δ$", "vega$", "PoP", "DTE", "R-codes"):
        assert word in terms["text"], word
    assert "/help terms" in texts(await ann.send("/help"))


async def test_help_lists_every_command(bot, ann):
    from bot.telegram.handlers import BOT_COMMANDS

    text = texts(await ann.send("/help"))
    for command, _ in BOT_COMMANDS:
        assert f"/{command}" in text


# --- /add -------------------------------------------------------------------------------------


async def test_add_one_liner_saves_and_previews(bot, ann):
    (reply,) = await ann.send(ADD_ONE_LINER)
    text = reply["text"]
    assert "Saved #1" in text
    # credit 4.35 × $100 × 2 = $870; loss (50 − 4.35) × $100 × 2 = $9,130
    assert "$870" in text and "$9,130" in text
    # break-evens: 5650 − 4.35 and 6150 + 4.35
    assert "5,645.65" in text and "6,154.35" in text
    (positions,) = await ann.send("/positions")
    assert "#1" in positions["text"] and "5600/5650/6150/6200" in positions["text"]
    (row,) = store_of(bot).list_positions(ANN)
    assert (row.k1, row.k2, row.k3, row.k4, row.qty) == (5600, 5650, 6150, 6200, 2)
    assert float(row.entry_credit) == 4.35


async def test_add_guided_flow_with_buttons(bot, ann):
    (ask_root,) = await ann.send("/add")
    assert {b["text"] for b in buttons_of(ask_root)} >= {"SPX", "SPXW", "XSP"}
    (ask_expiry,) = await ann.press_text(ask_root, "SPXW")
    expiry_buttons = [b for b in buttons_of(ask_expiry) if b["callback_data"].startswith("add:exp")]
    assert expiry_buttons, "expiries are offered as buttons"
    listed = [b["callback_data"].removeprefix("add:exp:") for b in expiry_buttons]
    assert all(d >= "2026-07-08" for d in listed), listed  # none before the data date
    chosen = listed[-1]
    (ask_strikes,) = await ann.press(ask_expiry, f"add:exp:{chosen}")
    assert "strike" in ask_strikes["text"].lower()
    (ask_qty,) = await ann.send("5600/5650/6150/6200")
    (ask_credit,) = await ann.press_text(ask_qty, "2")
    assert "credit" in ask_credit["text"].lower()
    (preview,) = await ann.send("4.35")
    text = preview["text"]
    assert "$870" in text and "$9,130" in text and "5,645.65" in text and "6,154.35" in text
    assert store_of(bot).list_positions(ANN) == []  # nothing saved before the confirmation
    (done,) = await ann.press_text(preview, "Confirm")
    assert "Saved #1" in done["text"]
    (row,) = store_of(bot).list_positions(ANN)
    assert row.expiry.isoformat() == chosen and row.qty == 2


async def test_add_guided_flow_answers_bad_steps_and_cancels(bot, ann):
    (ask_root,) = await ann.send("/add")
    (ask_expiry,) = await ann.press_text(ask_root, "SPX")
    (bad,) = await ann.send("2026-02-30")
    assert "2026-02-30" in bad["text"] and "date" in bad["text"]
    (ask_strikes,) = await ann.send("2026-08-21")  # typing the date works as well
    assert "strike" in ask_strikes["text"].lower()
    (bad,) = await ann.send("5650/5600/6150/6200")
    assert "rise" in bad["text"] or "above" in bad["text"]
    (cancelled,) = await ann.send("/cancel")
    assert "nothing was saved" in cancelled["text"].lower()
    assert store_of(bot).list_positions(ANN) == []
    # An old button of the finished form does nothing but say so.
    (stale,) = await ann.press(ask_expiry, "add:exp:2026-08-21")
    assert "expired" in stale["text"]


BAD_INPUTS = [
    # (what the user types, words the answer must contain)
    (f"/add SPXW 2026-13-45 {CONDOR.split()[2]} x1 @4.35", ["2026-13-45", "date"]),
    (f"/add SPXW 2026-06-19 {CONDOR.split()[2]} x1 @4.35", ["2026-06-19", "past"]),
    ("/add SPXW 2026-08-21 5650/5600/6150/6200 x1 @4.35", ["5600", "5650"]),
    ("/add SPXW 2026-08-21 5600/5650/6150/6200 x1 @50", ["50", "width"]),
    ("/add SPXW 2026-08-21 5600/5650/6150/6200 x1 @60", ["60", "width"]),
    ("/add SPXW 2026-08-21 5600/5650/6150/6200 x0 @4.35", ["quantity", "0"]),
    ("/add SPXW 2026-08-21 5600/5650 x1 @4.35", ["strike"]),
    ("/add hello", []),
    ("/check 999", ["999"]),
    ("/close 999", ["999"]),
    ("/hedge 999", ["999"]),
    ("/roll 999", ["999"]),
    ("/close abc", ["abc"]),
    ("/add " + "x" * 10_000, ["10005", "long"]),
    ("x" * 10_000, []),
]


async def test_bad_input_is_answered_naming_the_problem(bot, ann):
    # One bot for the whole list (a bot per case costs a second each); every case is named.
    for text, words in BAD_INPUTS:
        case = text[:60]
        replies = await ann.send(text)
        answer = texts(replies)
        if text.startswith("/"):
            assert replies, f"{case}: every bad command gets an answer"
            assert FRIENDLY_ERROR not in answer, f"{case}: a user mistake is not a crash"
            assert "⚠️" in answer or "Correct form" in answer, (case, answer)
            for word in words:
                assert word in answer, (case, word, answer)
        assert store_of(bot).list_positions(ANN) == [], f"{case}: nothing half-written"
    # ... and the bot still serves.
    (reply,) = await ann.send(ADD_ONE_LINER)
    assert "Saved #1" in reply["text"]


async def test_html_in_labels_is_shown_not_interpreted(bot, ann):
    label = '<b>bold</b> & <a href="x">link</a> <script>'
    (saved,) = await ann.send(f"{ADD_ONE_LINER} {label}")
    assert label in saved["text"]  # the user's characters, verbatim
    (listing,) = await ann.send("/positions")
    assert label in listing["text"]
    assert all(e["type"] != "text_link" for e in listing.get("entities", []))
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in listing["html"]


async def test_another_users_position_is_not_found_and_untouched(bot, ann, bob):
    (saved,) = await bob.send(f"{ADD_ONE_LINER} bob's secret")
    bob_id = int(re.search(r"Saved #(\d+)", saved["text"])[1])
    (mine,) = await ann.send(f"{ADD_ONE_LINER} ann")
    ann_id = int(re.search(r"Saved #(\d+)", mine["text"])[1])
    for template in ("/close {}", "/check {}", "/hedge {}", "/roll {}",
                     "/hedge {} add 1 VIX 2026-08-19 22C @1.10", "/hedge {} remove 1"):
        command = template.format(bob_id)
        replies = await ann.send(command)
        answer = texts(replies)
        assert str(bob_id) in answer and "secret" not in answer, (command, answer)
        assert FRIENDLY_ERROR not in answer
        # Exactly what a non-existent id gets: no hint that the position exists.
        ghost = texts(await ann.send(template.format(999)))
        assert re.sub(rf"#{bob_id}\b", "#999", answer) == ghost
    (bob_row,) = store_of(bot).list_positions(BOB)
    assert bob_row.status == "open" and bob_row.label == "bob's secret"
    assert not list(store_of(bot).list_hedges(BOB, bob_id))
    assert [r.id for r in store_of(bot).list_positions(ANN)] == [ann_id]


# --- callbacks --------------------------------------------------------------------------------


async def test_tampered_callbacks_cannot_reach_another_users_position(bot, ann, bob):
    (saved,) = await bob.send(f"{ADD_ONE_LINER} bob's secret")
    bob_id = int(re.search(r"Saved #(\d+)", saved["text"])[1])
    (listing,) = await ann.send("/positions")
    for data in (f"chk:{bob_id}:details", f"chk:{bob_id}:roll", f"chk:{bob_id}:refresh"):
        answer = texts(await ann.press(listing, data))
        assert "secret" not in answer and FRIENDLY_ERROR not in answer, answer
        assert str(bob_id) in answer
    for data in ("chk:1;DROP TABLE:details", "chk:-1:details", "chk:99999999999:roll", "zzz"):
        answer = texts(await ann.press(listing, data))
        assert "secret" not in answer and FRIENDLY_ERROR not in answer, (data, answer)
    assert store_of(bot).list_positions(BOB)[0].status == "open"


# --- /check (needs the engine) ----------------------------------------------------------------


@pytest.fixture
def engine():
    import core.evaluate

    return core.evaluate


async def test_check_shows_edr_state_hedge_and_roll(engine, bot, ann):
    # A condor around the sample's SPX close (7,482.71).
    await ann.send("/add SPXW 2026-08-21 7000/7050/7900/7950 x2 @4.35")
    replies = await ann.send("/check")
    answer = texts(replies)
    assert FRIENDLY_ERROR not in answer
    # METHOD §2: EDR % = max(VIX, VIX9D) / √252 = max(16.90, 14.41) / 15.875 = 1.0646 %
    assert "EDR 1.06 %" in answer, answer
    states = {"CALM", "APPROACHING", "BREACHED", "ELEVATED", "EXTREME"}
    bold = {entity_text(r, e) for r in replies for e in r.get("entities", [])
            if e["type"] == "bold"}
    assert bold & states, bold
    assert answer.startswith("#1 7050/7900 ×2 · 44 DTE")  # the summary line first
    assert "2026-07-08" in answer  # the data time
    assert any(c.params.get("action") == "typing" for c in bot_calls(ann, "sendChatAction"))
    keyboard = replies[-1]
    detail = await ann.press_text(keyboard, "#1 details")
    assert "#1" in detail[0]["text"] and FRIENDLY_ERROR not in texts(detail)
    # the hedge as the book sees it (§6b: its share, or why it is not in the book's hedge)
    assert "VIX hedge:" in detail[0]["text"] and "Roll:" in detail[0]["text"]
    (roll,) = await ann.press_text(detail[0], "Roll")
    assert "Roll:" in roll["text"] or "roll" in roll["text"].lower()
    assert FRIENDLY_ERROR not in roll["text"]


def bot_calls(chat: Chat, method: str):
    return chat.api.calls_of(method)


async def test_check_twenty_positions_splits_into_valid_messages(engine, bot, ann):
    seed_positions(store_of(bot), ANN, 20)
    replies = await ann.send("/check")
    assert FRIENDLY_ERROR not in texts(replies)
    assert all(f"#{i}" in texts(replies) for i in range(1, 21))


# --- splitting ----------------------------------------------------------------------------------


def seed_positions(store, user_id: int, n: int) -> None:
    from datetime import date

    from bot.store import PositionInput

    store.ensure_user(user_id, chat_id=user_id)
    for i in range(n):
        store.add_position(
            user_id,
            PositionInput(
                root="SPXW", expiry=date(2026, 8, 21), k1=5600 - 5 * i, k2=5650 - 5 * i,
                k3=6150 + 5 * i, k4=6200 + 5 * i, qty=1 + i % 3, entry_credit="4.35",
                opened=date(2026, 7, 1), label=f"<i>label {i:02d}</i> " + "long words " * 4,
            ),
        )


async def test_long_reply_arrives_as_several_valid_messages(bot, ann):
    seed_positions(store_of(bot), ANN, 60)
    replies = await ann.send("/positions")
    assert len(replies) >= 2, "60 positions do not fit one Telegram message"
    # Each part was accepted by the server's Telegram checks (≤ 4096, balanced HTML) in
    # Chat._replies; together they list every position exactly once, in order.
    joined = texts(replies)
    found = [int(n) for n in re.findall(r"^#(\d+) ", joined, flags=re.M)]
    assert found == list(range(1, 61))
    assert all(f"<i>label {i:02d}</i>" in joined for i in range(60))


# --- access -------------------------------------------------------------------------------------


async def test_unauthorised_user_is_refused_and_nothing_stored(bots, fake_api):
    app = await bots.start(allowed_user_ids=frozenset({ANN}))
    eve = Chat(fake_api, bots, EVE, "Eve")
    for command in ("/start", ADD_ONE_LINER, "/positions"):
        (reply,) = await eve.send(command)
        assert "not on its list" in reply["text"] and str(EVE) in reply["text"]
    ann = Chat(fake_api, bots, ANN, "Ann")
    (ok,) = await ann.send(ADD_ONE_LINER)
    assert "Saved #1" in ok["text"]
    assert store_of(app).list_positions(EVE) == []


# --- restart ------------------------------------------------------------------------------------


async def test_restart_keeps_every_position(bots, fake_api, ann, bob):
    first = await bots.start()
    await ann.send(ADD_ONE_LINER + " first")
    await ann.send("/add XSP 2026-08-21 560/565/615/620 x3 @0.45 second")
    await bob.send(ADD_ONE_LINER + " bob")
    await ann.send("/close 1 @1.20")
    await ann.send("/hedge 2 add 3 VIX 2026-08-19 22/27C @0.80")
    before = {u: [(r.id, r.status, r.label) for r in store_of(first).list_positions(u, None)]
              for u in (ANN, BOB)}
    hedges_before = [(h.id, h.qty, float(h.strike), float(h.strike2), float(h.cost))
                     for h in store_of(first).list_hedges(ANN, 2)]
    assert hedges_before and hedges_before[0][1:] == (3, 22.0, 27.0, 0.80)
    await bots.stop(first)

    second = await bots.start()
    assert second is not first
    after = {u: [(r.id, r.status, r.label) for r in store_of(second).list_positions(u, None)]
             for u in (ANN, BOB)}
    assert after == before
    assert after[ANN] == [(1, "closed", "first"), (2, "open", "second")]
    hedges_after = [(h.id, h.qty, float(h.strike), float(h.strike2), float(h.cost))
                    for h in store_of(second).list_hedges(ANN, 2)]
    assert hedges_after == hedges_before
    (listing,) = await ann.send("/positions")
    assert "second" in listing["text"] and "first" not in listing["text"]


# --- the error handler with the real stack --------------------------------------------------------


async def test_unexpected_error_gets_friendly_message_and_bot_keeps_running(bot, ann, monkeypatch):
    services = bot.bot_data["services"]

    async def broken(*args, **kwargs):
        raise RuntimeError("database exploded at /var/secret")

    monkeypatch.setattr(services, "list_positions", broken)
    (reply,) = await ann.send("/positions")
    assert reply["text"] == FRIENDLY_ERROR
    (after,) = await ann.send(ADD_ONE_LINER)
    assert "Saved #1" in after["text"]


# --- hedges, settings, export ---------------------------------------------------------------------


async def test_hedge_add_list_remove(bot, ann):
    await ann.send(ADD_ONE_LINER)
    (added,) = await ann.send("/hedge 1 add 2 VIX 2026-08-19 22C @1.10")
    assert FRIENDLY_ERROR not in added["text"] and "22" in added["text"]
    (spread,) = await ann.send("/hedge 1 add 1 VIX 2026-08-19 22/27C @0.80")
    assert "27" in spread["text"]
    (bad,) = await ann.send("/hedge 1 add 1 VIX 2026-08-19 27/22C @0.80")
    assert "⚠️" in bad["text"]
    hedges = store_of(bot).list_hedges(ANN, 1)
    assert sorted((h.qty, float(h.strike)) for h in hedges) == [(1, 22.0), (2, 22.0)]
    (listing,) = await ann.send("/hedge 1")
    assert "22/27" in listing["text"]
    (removed,) = await ann.send("/hedge 1 remove 1")
    assert FRIENDLY_ERROR not in removed["text"]
    assert len(store_of(bot).list_hedges(ANN, 1)) == 1
    (nope,) = await ann.send("/hedge 1 remove 5")
    assert "5" in nope["text"] and "⚠️" in nope["text"]


async def test_settings_and_subscription(bot, ann):
    (shown,) = await ann.send("/settings")
    assert "08:45" in shown["text"]
    (changed,) = await ann.send("/settings report_time 07:30")
    assert "07:30" in changed["text"]
    (bad,) = await ann.send("/settings report_time 25:99")
    assert "25:99" in bad["text"] and "⚠️" in bad["text"]
    assert store_of(bot).get_settings(ANN).report_time == "07:30"
    await ann.send("/subscribe")
    assert store_of(bot).get_settings(ANN).subscribed
    await ann.send("/unsubscribe")
    assert not store_of(bot).get_settings(ANN).subscribed


async def test_settings_quiet_hours(bot, ann):
    (set_,) = await ann.send("/settings quiet 22:00-07:00")
    assert "⚠️" not in set_["text"]
    assert "22:00–07:00 America/New_York time, overnight" in set_["text"]
    settings = store_of(bot).get_settings(ANN)  # what the intraday scheduler reads
    assert (settings.quiet_start, settings.quiet_end) == ("22:00", "07:00")
    (bad,) = await ann.send("/settings quiet 25:00-07:00")
    assert "⚠️" in bad["text"] and "25:00" in bad["text"] and "hours run 00–23" in bad["text"]
    assert "quiet 22:00-07:00" in bad["text"]  # shows the correct form
    assert store_of(bot).get_settings(ANN).quiet_start == "22:00"  # unchanged
    (cleared,) = await ann.send("/settings quiet off")
    assert "Quiet hours (no intraday alerts): none" in cleared["text"]
    assert store_of(bot).get_settings(ANN).quiet_start is None


async def test_export_arrives_as_a_json_document(bot, ann, fake_api):
    import json

    await ann.send(ADD_ONE_LINER + " exported")
    replies = await ann.send("/export")
    documents = [r for r in replies if "document" in r]
    assert len(documents) == 1
    payload = json.loads(fake_api.file_content(documents[0]["document"]["file_id"]))
    assert "exported" in json.dumps(payload)


async def test_two_users_forms_do_not_mix(bot, ann, bob):
    (ann_root,) = await ann.send("/add")
    (bob_root,) = await bob.send("/add")
    await ann.press_text(ann_root, "SPXW")
    await ann.send("2026-08-21")
    # Bob answers his own form's first step; Ann's form must not take it as her strikes.
    (bob_expiry,) = await bob.press_text(bob_root, "XSP")
    assert "XSP" in bob_expiry["text"]
    (ann_qty,) = await ann.send("5600/5650/6150/6200")
    (ann_credit,) = await ann.press_text(ann_qty, "1")
    assert "credit" in ann_credit["text"].lower()
    (ann_preview,) = await ann.send("4.35")
    assert "SPXW 2026-08-21 5600/5650/6150/6200" in ann_preview["text"]
    # Bob confirming (a crafted add:ok on his own chat) cannot complete his unfinished form.
    answer = texts(await bob.press(bob_expiry, "add:ok"))
    assert FRIENDLY_ERROR not in answer
    assert store_of(bot).list_positions(ANN) == [] and store_of(bot).list_positions(BOB) == []
    (done,) = await ann.press_text(ann_preview, "Confirm")
    assert "Saved #1" in done["text"]
    assert [r.root for r in store_of(bot).list_positions(ANN)] == ["SPXW"]
    assert store_of(bot).list_positions(BOB) == []


# --- /add: opened, entry delta and the credit check (METHOD v2 §8, issue 12 item 6) ----------


async def test_add_with_opened_and_delta_is_stored_and_shown(bot, ann):
    (reply,) = await ann.send("/add SPX 2026-08-21 6950/7000/7850/7900 x2 @10.95 "
                              "opened 2026-06-01 delta 16 Aug")
    text = reply["text"]
    assert "Saved #1" in text and "entry Δ 0.16" in text and "opened 2026-06-01" in text
    assert "Check the credit" not in text  # opened earlier: its credit is from then
    (row,) = store_of(bot).list_positions(ANN)
    assert (row.opened.isoformat(), row.entry_delta) == ("2026-06-01", 0.16)
    (core_pos,) = store_of(bot).core_positions(ANN)
    assert (core_pos.opened.isoformat(), core_pos.entry_delta) == ("2026-06-01", 0.16)
    (bad,) = await ann.send("/add SPX 2026-08-21 6950/7000/7850/7900 @10.95 opened 2026-07-09")
    assert "in the future" in bad["text"]
    assert len(store_of(bot).list_positions(ANN)) == 1


async def test_add_credit_far_from_the_mid_warns_but_saves(bot, ann):
    # a 20Δ/15Δ, 50-wide condor 44 days out is worth ~10–13 points, not 30
    (reply,) = await ann.send("/add SPX 2026-08-21 6950/7000/7850/7900 x2 @30")
    text = reply["text"]
    assert "Saved #1" in text
    m = re.search(r"Check the credit: the (model|chain mid) says ([\d.]+) pts per condor", text)
    assert m, text
    fair = float(m.group(2))
    assert 5 < fair < 20 and abs(30 - fair) > 0.3 * fair
    assert "you entered 30.00" in text
    (row,) = store_of(bot).list_positions(ANN)
    assert float(row.entry_credit) == 30.0
    # the issue's own condor at its real credit gets no warning
    (ok,) = await ann.send("/add SPX 2026-08-21 6950/7000/7850/7900 x2 @10.95")
    assert "Saved #2" in ok["text"] and "Check the credit" not in ok["text"]
    (settings,) = await ann.send("/settings entry_delta 0.16")
    assert "entry delta 0.16" in settings["text"]
