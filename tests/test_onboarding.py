"""Issue 14, parts 2 and 6: plain words and onboarding. /help terms, /start, /subscribe twice,
the offline bot's one answer about reports, and events in words, through the real services on
a real SQLite store and the offline sample, and the real templates."""

from __future__ import annotations

import re
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from test_services import CountingProvider

from bot.marketdata.offline import OfflineProvider
from bot.render import fmt_event, render, split_message, utf16_len
from bot.scheduler.jobs import sends_reports
from bot.services import Services, UserRef
from bot.store import Store
from core.models import Event, EventKind
from core.records import EventRecord

ET = ZoneInfo("America/New_York")
ANN = UserRef(5151, 5151, "Ann")


class LiveLike(CountingProvider):
    """The offline sample under another name: what a live bot's services see."""

    def __init__(self, inner):
        super().__init__(inner)
        self.name = "cboe"


@pytest.fixture(scope="module")
def sample():
    return OfflineProvider()


@pytest.fixture
def offline_svc(make_database_url, sample):
    clock = lambda: sample.asof  # noqa: E731 - the sample's moment, as the platform does
    store = Store.open(make_database_url("onb"), clock=clock)
    yield Services(store=store, provider=sample, clock=clock)
    store.close()


@pytest.fixture
def live_svc(make_database_url, sample):
    clock = lambda: sample.asof  # noqa: E731
    store = Store.open(make_database_url("onb_live"), clock=clock)
    yield Services(store=store, provider=LiveLike(sample), clock=clock)
    store.close()


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# --- /help terms ------------------------------------------------------------------------------


def test_terms_fit_one_telegram_message_and_explain_every_term():
    html = render("help", topic="terms")
    assert utf16_len(html) <= 4096 and split_message(html) == [html]
    text = text_of(html)
    for term in ("EDR", "EDR states", "WPR", "h*", "B1 vega coverage", "B2 delta–theta parity",
                 "B3 stress offset", "B4 hedge life", "L1, L2, L3", "Stress offset", "Θ$",
                 "Δ$", "vega$", "PoP", "DTE", "R-codes"):
        assert term in text, term
    # the numbers in it are the method's defaults
    assert "0.94 % by default" in text and "WATCH from 0.94, TESTED from 1.00" in text
    assert "up to 125 %" in text


def test_help_points_to_terms_and_terms_is_not_in_the_command_list():
    everything = text_of(render("help", topic=None))
    assert "/help terms" in everything
    assert "Terms in the replies" not in everything  # read once, on demand


# --- /start -----------------------------------------------------------------------------------


async def test_start_says_what_the_bot_does_and_that_reports_are_off(live_svc):
    data = await live_svc.start(ANN)
    assert data["subscribed"] is False and data["offline"] is False
    text = text_of(render("start", **data))
    lines = text.splitlines()
    assert lines[1].startswith("I watch your SPX iron condors")
    assert lines[2].startswith("I say when to buy VIX calls")
    assert "reports are off until you subscribe" in lines[3]
    from bot.telegram.handlers.start import SUBSCRIBE_BUTTON, start_keyboard

    (row,) = start_keyboard(data).inline_keyboard
    assert row[0].callback_data == SUBSCRIBE_BUTTON
    assert "Subscribe to the daily report" in row[0].text
    await live_svc.subscribe(ANN)
    again = await live_svc.start(ANN)
    assert again["subscribed"] is True and start_keyboard(again) is None
    assert "You're subscribed to the daily report" in text_of(render("start", **again))


async def test_start_offline_names_the_sample_and_promises_no_report(offline_svc):
    data = await offline_svc.start(ANN)
    text = text_of(render("start", **data))
    assert ("This bot runs on the offline sample of Wed 2026-07-08, so it sends no report on a "
            "schedule") in text


# --- /subscribe twice, and one answer about the next report ---------------------------------


async def test_subscribing_twice_changes_nothing_and_names_the_next_report(live_svc):
    first = await live_svc.subscribe(ANN)
    assert first.subscribed and not first.unchanged
    stored_before = live_svc.store.get_settings(ANN.user_id)
    second = await live_svc.subscribe(ANN)
    assert second.subscribed and second.unchanged
    assert live_svc.store.get_settings(ANN.user_id) == stored_before  # nothing written
    text = text_of(render("settings", s=second, changed="subscribed"))
    # the sample's clock is Wed 2026-07-08 16:15 ET: the next 08:45 New York report is Thursday's
    assert text.startswith("You're already subscribed: next report Thu 2026-07-09 08:45 EDT.")
    assert "Updated" not in text
    off = await live_svc.unsubscribe(ANN)
    assert not off.subscribed and not off.unchanged
    off_again = await live_svc.unsubscribe(ANN)
    assert off_again.unchanged
    assert text_of(render("settings", s=off_again, changed="subscribed")).startswith(
        "You're not subscribed")


async def test_offline_settings_and_subscribe_say_the_same_thing(offline_svc):
    before = await offline_svc.settings_get(ANN)
    assert before.offline and before.next_report is None
    before_text = text_of(render("settings", s=before, changed=None))
    assert "daily report off (reports are off until you /subscribe)" in before_text
    sub = await offline_svc.subscribe(ANN)
    after_text = text_of(render("settings", s=sub, changed="subscribed"))
    promise = ("Next scheduled report: none — this bot runs on the offline sample of "
               "Wed 2026-07-08 and sends no daily report")
    assert promise in before_text and promise in after_text
    assert "saved for when this bot runs on live data" in after_text
    shown = text_of(render("settings", s=await offline_svc.settings_get(ANN), changed=None))
    assert promise in shown
    for text in (before_text, after_text, shown):
        assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)  # no moment promised


def test_only_a_bot_that_sends_reports_schedules_them():
    def app(offline: bool, clock: bool) -> SimpleNamespace:
        data = {"services": SimpleNamespace(offline=offline)}
        if clock:
            data["jobs_clock"] = lambda: None
        return SimpleNamespace(bot_data=data)

    assert sends_reports(app(offline=False, clock=False))
    assert not sends_reports(app(offline=True, clock=False))
    assert sends_reports(app(offline=True, clock=True))  # rounds driven by a test's clock


# --- events in words --------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "shown"), [
    (Event(datetime(2024, 7, 31, 14, 0, tzinfo=ET), EventKind.FOMC, "FED_PR_2024-08-09"),
     "FOMC decision Wed 2024-07-31 14:00 ET"),
    (Event(datetime(2026, 7, 14, 8, 30, tzinfo=ET), EventKind.CPI, "BLS_CPI_T2"),
     "CPI release Tue 2026-07-14 08:30 ET"),
    (Event(datetime(2026, 8, 7, 8, 30, tzinfo=ET), EventKind.NFP, ""),
     "jobs report (NFP) Fri 2026-08-07 08:30 ET"),
    (Event(datetime(2026, 8, 27, 10, 0, tzinfo=ET), EventKind.OTHER, "Jackson Hole speech"),
     "Jackson Hole speech Thu 2026-08-27 10:00 ET"),
    (Event(datetime(2026, 7, 15, 8, 30, tzinfo=ET), EventKind.PPI, "core and headline"),
     "PPI release (core and headline) Wed 2026-07-15 08:30 ET"),
])
def test_events_read_as_words_without_source_keys(event, shown):
    assert fmt_event(event) == shown
    record = EventRecord(event.when, event.kind.value, event.label, True)
    assert fmt_event(record) == shown


async def test_market_lists_the_sample_events_without_keys(offline_svc):
    result = await offline_svc.market(ANN)
    text = text_of(render("market", market=result.market, offline=True))
    block = text.split("Next events", 1)[1]
    assert "CPI release Tue 2026-07-14 08:30 ET · high impact" in block
    assert "FOMC decision Wed 2026-07-29 14:00 ET · high impact" in block
    assert not re.search(r"\b[A-Z]+_[A-Z0-9_-]+\b", block)  # BLS_CPI_T2, FED_PR_2024-08-09
