"""Issue 13: a fuzz suite of generated messages through the real handlers.

The real PTB `Application` (real handlers, real store on a SQLite file, the offline sample)
sends its replies over HTTP to the local fake Bot API server, as the other e2e tests do. To keep
the run short, updates are handed to `Application.process_update` in process instead of being
polled: polling adds only waiting, not code under test (the e2e suite covers it).

Hypothesis draws batches of messages from two users (private chats and a shared group): the
commands with valid, near-valid and random arguments, button presses with real and tampered
callback data, edits of earlier messages, plain text. After every update it asserts:
0 unhandled exceptions (the error handler never runs), no reply over 4,096 UTF-16 units, only
HTML Telegram accepts (`telegram_html`, a strict checker), no write from a rejected message
(the database's content is unchanged when every reply was an error), and no cross-user read
(a user's chats never show the other user's labels; a group never shows anyone's).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.config import Settings
from bot.telegram.app import build_application

sys.path.append(str(Path(__file__).resolve().parents[1]))
from fakebotapi import LOCAL_TOKEN, FakeBotAPI
from telegram_html import TELEGRAM_LIMIT, html_problems, utf16_units

ANN, BOB = 801, 802
GROUP = -100_900
LABEL = {ANN: "annsecret", BOB: "bobsecret"}
BATCH = 50
EXAMPLES = 202  # 202 × 50 = 10,100 generated messages
pytestmark = pytest.mark.timeout(600)

_expiries = st.sampled_from(["2026-08-21", "2026-07-17", "2026-07-08", "2026-06-19", "20260918",
                             "21Aug26", "08/21/2026", "2026-02-30", "2030-01-01", "x"])
_strikes = st.sampled_from(["6950/7000/7850/7900", "6975/7000/7850/7875", "5600/5650/6150/6200",
                            "7000/6950/7850/7900", "1/2/3/4", "6950/7000/7850", "a/b/c/d",
                            "6950/7000/7000/7050"])
_prices = st.sampled_from(["@4.35", "@10.95", "@99999", "@0", "@-5", "@1e5", "@nan", "4.35",
                           "@-99", "@0.40", "@25", "@500", "@1.10", "@"])
_ids = st.sampled_from(["1", "2", "3", "#1", "0", "-1", "99999999999", "abc", "4", "5"])
_junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_words = st.sampled_from(["x2", "X3", "x0", "x1001", "2", "core", "🚀🚀", "<b>", "&amp;",
                          "done", "add", "remove", "VIX", "VX", "20C", "20/25C", "22/20C", "L1",
                          "on", "off", "22:00-07:00", "EST", "America", "Europe/Berlin"])


def _add(user: int):
    return st.builds(lambda r, e, k, q, p, tail: " ".join(
        ["/add", r, e, k, *q, p, LABEL[user], *tail]),
        st.sampled_from(["SPX", "SPXW", "XSP", "spx", "QQQ"]), _expiries, _strikes,
        st.sampled_from([[], ["x2"], ["x0"], ["2"]]), _prices, st.lists(_words, max_size=2))


def _command(user: int):
    simple = st.sampled_from(["/start", "/help", "/positions", "/check", "/market", "/report",
                              "/settings", "/subscribe", "/unsubscribe", "/export", "/cancel",
                              "/add", "/nosuch", "/check@alvh_bot", "hello", "SPX"])
    with_id = st.builds(lambda c, i, w: f"{c} {i} {' '.join(w)}".strip(),
                        st.sampled_from(["/check", "/hedge", "/roll", "/close"]), _ids,
                        st.lists(st.one_of(_words, _prices, _expiries, _strikes), max_size=5))
    hedge = st.builds(lambda i, q, e, k, p: f"/hedge {i} add {q} VIX {e} {k} {p}", _ids,
                      st.sampled_from(["1", "2", "200", "x2", "0"]),
                      st.sampled_from(["2026-07-22", "2026-07-29", "2026-07-23"]),
                      st.sampled_from(["20C", "20/25C", "25", "0C"]), _prices)
    roll = st.builds(lambda i, e, k, p: f"/roll {i} done {e} {k} {p}", _ids, _expiries,
                     _strikes, _prices)
    sets = st.builds(lambda k, v: f"/settings {k} {v}",
                     st.sampled_from(["edr_trigger", "tz", "timezone", "report_time",
                                      "hedge_budget", "take_profit", "alerts", "quiet", "chart",
                                      "colour"]),
                     st.sampled_from(["1.3", "1.1", "0.2", "America", "EST", "Europe/Berlin",
                                      "15:00", "25:00", "50%", "on", "22:00-07:00", "x"]))
    random = st.builds(lambda c, j: f"{c} {j}", st.sampled_from(
        ["/add", "/hedge", "/roll", "/close", "/check", "/settings", "/positions"]), _junk)
    return st.one_of(simple, with_id, hedge, roll, sets, _add(user), random, _junk)


_callback_data = st.one_of(
    st.sampled_from(["chk:all:refresh", "chk:1:details", "chk:2:roll", "chk:1:refresh",
                     "chk:99999999999:roll", "chk:x:y", "add:root:SPXW", "add:exp:2026-08-21",
                     "add:qty:2", "add:ok", "add:cancel", "add:root:QQQ", "zzz"]),
    _junk.filter(bool))


COMMANDS = {ANN: _command(ANN), BOB: _command(BOB)}  # built once, drawn from 10,000 times


@st.composite
def events(draw):
    user = draw(st.sampled_from([ANN, BOB]))
    chat = draw(st.sampled_from([user, user, user, GROUP]))
    kind = draw(st.sampled_from(["message"] * 8 + ["callback", "edit"]))
    text = draw(COMMANDS[user])
    data = draw(_callback_data)
    return kind, user, chat, text, data


def memoised_engine():
    """The real engine, remembered per input: it is pure and deterministic (core/), so a
    repeated /check of an unchanged book gives the same records; only the time is saved."""
    from core.evaluate import evaluate

    memo: dict[str, object] = {}

    def engine(positions, snapshot, history, events, params, asof, **kw):
        key = repr((positions, id(snapshot), id(history), id(events), params, asof, kw))
        if key not in memo:
            memo[key] = evaluate(positions, snapshot, history, events, params, asof, **kw)
        return memo[key]

    return engine


class Harness:
    """The application, the fake server, and the bookkeeping of the invariants."""

    def __init__(self, api: FakeBotAPI, db: Path, provider) -> None:
        self.api, self.db = api, db
        settings_ = Settings(telegram_bot_token=LOCAL_TOKEN, telegram_api_base_url=api.base_url,
                             database_url=f"sqlite:///{db}", market_data_provider="offline")
        from bot.services import Services
        from bot.telegram.app import default_clock, default_store

        clock = default_clock(settings_, provider)
        services = Services(store=default_store(settings_, clock), provider=provider,
                            clock=clock, settings=settings_, evaluate=memoised_engine())
        self.app = build_application(settings_, services=services, rate_limiter=False,
                                     install_jobs=False)
        self.errors: list[BaseException | None] = []

        async def count(update, context):
            self.errors.append(context.error)

        self.app.add_error_handler(count)
        self.sent: dict[tuple[int, int], str] = {}  # (chat, message id) → text, for edits
        self.figures = {"messages": 0, "callbacks": 0, "edits": 0, "group": 0, "replies": 0,
                        "rejected": 0}

    def update_for(self, kind: str, user: int, chat: int, text: str, data: str) -> dict:
        """The update as the fake server makes it (its message and callback ids are real, so
        the bot's answers and edits reach existing messages)."""
        name = f"U{user}"
        if kind == "edit":
            earlier = [k for k in self.sent if k[0] == chat]
            if earlier:
                self.figures["edits"] += 1
                return self.api.inject_edit(user, chat, earlier[-1][1], text, first_name=name)
        if kind == "callback":
            outs = [o for o in self.api.sent(chat) if o.message.get("message_id")]
            if outs:
                self.figures["callbacks"] += 1
                self.api.inject_callback(user, chat, outs[-1].message["message_id"], data,
                                         first_name=name)
                with self.api._state.cond:  # the update it pushed
                    return self.api._state.updates[-1]
        update = self.api.inject_message(user, chat, text, first_name=name)
        self.sent[(chat, update["message"]["message_id"])] = text
        return update

    def fingerprint(self) -> str:
        """The book and settings as stored (last-seen times and the audit log aside)."""
        digest = hashlib.sha256()
        with sqlite3.connect(self.db) as conn:
            for table, cols in (("users", "tg_user_id, chat_id, timezone, report_time, "
                                          "alerts_enabled, param_overrides, subscribed"),
                                ("positions", "*"), ("hedges", "*"), ("rolls", "*")):
                try:
                    rows = conn.execute(f"SELECT {cols} FROM {table} ORDER BY 1").fetchall()
                except sqlite3.OperationalError:
                    rows = []
                digest.update(repr(rows).encode())
        return digest.hexdigest()

    async def run(self, event: tuple) -> None:
        kind, user, chat, text, data = event
        payload = self.update_for(kind, user, chat, text, data)
        before = self.fingerprint()
        errors_before = len(self.errors)
        await self.app.process_update(Update.de_json(payload, self.app.bot))
        self.figures["messages"] += 1
        self.figures["group"] += chat < 0
        assert len(self.errors) == errors_before, f"{payload}: {self.errors[-1]!r}"
        replies = {c: self.api.drain(c) for c in (ANN, BOB, GROUP)}
        texts = []
        for c, outs in replies.items():
            for out in outs:
                html = out.get("html") or out.get("caption_html") or ""
                self.figures["replies"] += 1
                texts.append(html)
                assert utf16_units(html) <= TELEGRAM_LIMIT, payload
                assert html_problems(html) == [], (payload, html[:200])
                others = [LABEL[u] for u in (ANN, BOB) if u != c]
                assert not any(o in html for o in others), (payload, html[:200])
                if c != user and c > 0:
                    raise AssertionError(f"{payload}: a reply reached another user's chat {c}")
        if texts and all(t.startswith("⚠️") for t in texts):
            self.figures["rejected"] += 1
            assert self.fingerprint() == before, f"a rejected message wrote: {payload}"


@pytest.fixture(scope="module")
def harness(tmp_path_factory, offline_provider_module):
    loop = asyncio.new_event_loop()
    with FakeBotAPI() as api:
        h = Harness(api, tmp_path_factory.mktemp("fuzz") / "fuzz.db", offline_provider_module)
        loop.run_until_complete(h.app.initialize())
        loop.run_until_complete(h.app.post_init(h.app))
        h.loop = loop
        yield h
        loop.run_until_complete(h.app.shutdown())
        loop.run_until_complete(h.app.post_shutdown(h.app))
    loop.close()
    print("fuzz figures:", h.figures)


@pytest.fixture(scope="module")
def offline_provider_module():
    from bot.telegram.app import default_provider

    return default_provider(Settings(market_data_provider="offline"))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(batch=st.lists(events(), min_size=BATCH, max_size=BATCH))
def test_fuzz_messages_through_the_real_handlers(harness, batch):
    async def go():
        for event in batch:
            await harness.run(event)

    harness.loop.run_until_complete(go())


def test_fuzz_figures(harness):
    """Runs after the fuzz test (same module): it really drove ≥ 10,000 messages of each kind."""
    f = harness.figures
    assert f["messages"] >= 10_000, f
    assert min(f["callbacks"], f["edits"], f["group"], f["rejected"]) > 100, f
