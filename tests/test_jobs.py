"""The scheduler: triggers (pure, against hand-read calendar facts), and the rounds driven with
an injected clock against a real store and the offline sample (no sleeping, no network).

Calendar facts used (NYSE 2026): US DST starts Sun 8 March; Independence Day is observed on
Fri 3 July; Thanksgiving Thu 26 Nov is a holiday and Fri 27 Nov closes at 13:00 ET.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram.error import Forbidden, RetryAfter

from bot.config import Settings
from bot.marketdata.errors import MarketDataError
from bot.scheduler import (
    MARKET_UNAVAILABLE,
    CloseTrigger,
    IntradayTrigger,
    JobConfigError,
    JobSettings,
    ReportTrigger,
    Scheduler,
    book_alerts,
    in_quiet_hours,
    market_alerts,
    next_report_moment,
    position_alerts,
    report_decision,
)
from bot.services import Services
from bot.store import HedgeInput, PositionInput, Store
from bot.telegram.app import default_provider
from core import calendar as cal

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- triggers ------------------------------------------------------------------------------


def fire_times(trigger, start: datetime, n: int) -> list[datetime]:
    """The first n fire times as APScheduler asks for them: first run ≥ now, then > previous."""
    out, prev = [], None
    for _ in range(n):
        prev = trigger.get_next_fire_time(prev, start)
        out.append(prev)
    return out


def test_report_trigger_across_the_dst_change_keeps_0845_new_york():
    times = fire_times(ReportTrigger(dtime(8, 45), "America/New_York"), ny(2026, 3, 5, 12), 3)
    # Fri 6 March is still EST (UTC−5); Mon 9 March is EDT (UTC−4): the weekend is skipped.
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 3, 6, 13, 45), utc(2026, 3, 9, 12, 45), utc(2026, 3, 10, 12, 45)]


def test_report_trigger_in_the_users_zone_follows_that_zone():
    # Berlin keeps CET (UTC+1) until 29 March: 08:45 Berlin = 07:45 UTC on both sides of the
    # US change, i.e. 02:45 EST on Fri 6 March and 03:45 EDT on Mon 9 March (both sessions).
    times = fire_times(ReportTrigger(dtime(8, 45), "Europe/Berlin"), ny(2026, 3, 5, 12), 2)
    assert [t.astimezone(UTC) for t in times] == [utc(2026, 3, 6, 7, 45), utc(2026, 3, 9, 7, 45)]


def test_report_trigger_skips_the_holiday_and_keeps_the_early_close_day():
    july = fire_times(ReportTrigger(dtime(8, 45), "America/New_York"), ny(2026, 7, 2, 9), 1)
    assert july == [ny(2026, 7, 6, 8, 45)]  # Fri 3 July is the observed holiday
    nov = fire_times(ReportTrigger(dtime(8, 45), "America/New_York"), ny(2026, 11, 25, 9), 2)
    assert nov == [ny(2026, 11, 27, 8, 45), ny(2026, 11, 30, 8, 45)]  # 27th: early close


def test_report_trigger_first_run_may_be_now():
    t = ReportTrigger(dtime(8, 45), "America/New_York")
    assert t.get_next_fire_time(None, ny(2026, 11, 25, 8, 45)) == ny(2026, 11, 25, 8, 45)
    assert t.get_next_fire_time(ny(2026, 11, 25, 8, 45), ny(2026, 11, 25, 8, 45)) == ny(
        2026, 11, 27, 8, 45)


def test_close_trigger_is_1615_and_1315_on_an_early_close():
    times = fire_times(CloseTrigger(), ny(2026, 11, 25, 17), 3)
    assert times == [ny(2026, 11, 27, 13, 15), ny(2026, 11, 30, 16, 15), ny(2026, 12, 1, 16, 15)]
    assert fire_times(CloseTrigger(), ny(2026, 3, 6, 17), 1) == [ny(2026, 3, 9, 16, 15)]


def test_intraday_trigger_runs_in_regular_hours_only():
    t = IntradayTrigger(15)
    assert fire_times(t, ny(2026, 11, 25, 9, 20), 3) == [
        ny(2026, 11, 25, 9, 30), ny(2026, 11, 25, 9, 45), ny(2026, 11, 25, 10, 0)]
    # 15:45 is the last run before the 16:00 close; next is the early-close Friday
    assert fire_times(t, ny(2026, 11, 25, 15, 40), 2) == [
        ny(2026, 11, 25, 15, 45), ny(2026, 11, 27, 9, 30)]
    # 12:45 is the last run before the 13:00 early close; the weekend is skipped
    assert fire_times(t, ny(2026, 11, 27, 12, 40), 2) == [
        ny(2026, 11, 27, 12, 45), ny(2026, 11, 30, 9, 30)]


def test_report_decision_before_and_after_the_open():
    due = ny(2026, 11, 25, 8, 45)
    assert report_decision(due, ny(2026, 11, 25, 8, 40)) == "wait"
    assert report_decision(due, ny(2026, 11, 25, 9, 29)) == "send"  # late but before the open
    assert report_decision(due, ny(2026, 11, 25, 9, 30)) == "skip"
    assert report_decision(ny(2026, 11, 26, 8, 45), ny(2026, 11, 26, 9)) == "wait"  # holiday
    # a report time after the open is sent when it comes
    assert report_decision(ny(2026, 11, 25, 10), ny(2026, 11, 25, 10, 1)) == "send"
    assert report_decision(ny(2026, 11, 25, 10), ny(2026, 11, 25, 16, 15)) == "skip"
    # an evening report time (after the 16:15 VIX close) is the user's choice: sent
    assert report_decision(ny(2026, 11, 25, 20), ny(2026, 11, 25, 20, 1)) == "send"
    # early close: a 14:00 report is after the 13:15 VIX close of Fri 27 Nov
    assert report_decision(ny(2026, 11, 27, 13), ny(2026, 11, 27, 13, 20)) == "skip"
    assert report_decision(ny(2026, 11, 27, 14), ny(2026, 11, 27, 14)) == "send"


def test_quiet_hours_wrap_midnight_in_the_users_zone():
    assert in_quiet_hours("22:00", "07:00", "Europe/Berlin", datetime(2026, 11, 25, 6, 59,
                                                                      tzinfo=BERLIN))
    assert not in_quiet_hours("22:00", "07:00", "Europe/Berlin",
                              datetime(2026, 11, 25, 7, 0, tzinfo=BERLIN))
    assert in_quiet_hours("12:00", "13:00", "America/New_York", ny(2026, 11, 25, 12, 30))
    assert not in_quiet_hours(None, None, "America/New_York", ny(2026, 11, 25, 12, 30))


def test_job_settings_from_env_names_each_bad_value():
    s = JobSettings.from_env({"ALVH_INTRADAY_MINUTES": "5", "ALVH_JOB_MISFIRE_GRACE_S": "600"})
    assert (s.intraday_minutes, s.misfire_grace_s) == (5, 600)
    with pytest.raises(JobConfigError) as err:
        JobSettings.from_env({"ALVH_INTRADAY_MINUTES": "7", "ALVH_SEND_ATTEMPTS": "x"})
    text = str(err.value)
    assert "ALVH_INTRADAY_MINUTES 7 must divide 60" in text and "ALVH_SEND_ATTEMPTS 'x'" in text


# --- alerts (pure) ---------------------------------------------------------------------------


def test_state_alert_only_when_the_state_moves_up():
    day = date(2026, 11, 25)
    up = SimpleNamespace(state="ELEVATED", official_state="BREACHED", edr_pct=1.3)
    assert [a.key for a in market_alerts(up, day)] == ["state:2026-11-25:ELEVATED"]
    same = SimpleNamespace(state="BREACHED", official_state="BREACHED", edr_pct=1.0)
    down = SimpleNamespace(state="CALM", official_state="BREACHED", edr_pct=0.7)
    assert market_alerts(same, day) == [] and market_alerts(down, day) == []


def _record(outcome="HOLD_UNCONFIRMED", signals=(), strikes=(7200, 7250, 7700, 7750)):
    return SimpleNamespace(position_id=9, label="", strikes=strikes, problems=(),
                           roll=SimpleNamespace(outcome=outcome, rule="R8", reason="why"),
                           second_engine=SimpleNamespace(exit_signals=tuple(signals)))


def test_position_alerts_roll_exit_and_breach():
    day = date(2026, 11, 25)
    assert position_alerts(_record(), 7500.0, day) == []
    keys = [a.key for a in position_alerts(_record("HEDGE_FIRST", ["VIX spike"]), 7240.0, day)]
    assert keys == ["roll:9:HEDGE_FIRST:2026-11-25", "exit:9:VIX spike:2026-11-25",
                    "breach:9:put:2026-11-25"]
    call = position_alerts(_record(), 7700.5, day)
    assert [(a.data["side"], a.data["strike"]) for a in call] == [("call", 7700)]


# --- rounds --------------------------------------------------------------------------------

STRIKES = (7200, 7250, 7700, 7750)  # around the sample's SPX 7,482.71 (2026-07-08 close)


@pytest.fixture(scope="module")
def sample():
    return default_provider(Settings(market_data_provider="offline"))


class FlakyProvider:
    """The offline sample, which can be told to fail like a dead source."""

    name = "offline"

    def __init__(self, inner):
        self.inner, self.fail, self.asof = inner, False, inner.asof
        self.vix_asof = None  # stamp the VIX quote with this time (a delayed feed)
        self.history_lag = 0  # sessions missing at the end of the close history (Cboe lags)

    async def snapshot(self, asof):
        if self.fail:
            raise MarketDataError("cboe _SPX", "http", "503 Service Unavailable")
        snap = await self.inner.snapshot(asof)
        if self.vix_asof is not None:
            snap = dataclasses.replace(snap, vix=dataclasses.replace(snap.vix, asof=self.vix_asof))
        return snap

    async def history(self, end=None):
        full = await self.inner.history()
        return full.iloc[:len(full) - self.history_lag]

    async def events(self):
        return await self.inner.events()


class FakeBot:
    """Records sends; `errors[chat]` is a list of exceptions raised by the next sends."""

    def __init__(self):
        self.sent: list[tuple[int, str]] = []
        self.errors: dict[int, list[Exception]] = {}
        self.photos: list[tuple[int, bytes, str]] = []
        self.photo_errors: dict[int, list[Exception]] = {}
        self.order: list[tuple[str, int]] = []  # ("text" | "photo", chat) as delivered

    async def send_message(self, chat_id, text):
        queue = self.errors.get(chat_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((chat_id, text))
        self.order.append(("text", chat_id))

    async def send_photo(self, chat_id, photo, caption=None):
        queue = self.photo_errors.get(chat_id)
        if queue:
            raise queue.pop(0)
        self.photos.append((chat_id, photo, caption))
        self.order.append(("photo", chat_id))

    def chats(self) -> list[int]:
        return sorted(c for c, _ in self.sent)


class Counting:
    def __init__(self):
        from core.evaluate import evaluate

        self.fn, self.calls = evaluate, []

    def __call__(self, positions, *args, **kw):
        self.calls.append(len(positions))
        return self.fn(positions, *args, **kw)


def make(new_database_url, sample, users=(1, 2, 3), *, bot=None, settings=None, db="jobs"):
    """`new_database_url`: the make_database_url fixture (each call a new database)."""
    store = Store.open(new_database_url(db), clock=lambda: sample.asof)
    provider = FlakyProvider(sample)
    svc = Services(store, provider, lambda: sample.asof, market_ttl_s=0)
    for u in users:
        store.ensure_user(u, u)
        store.subscribe(u)
        store.add_position(u, PositionInput("SPXW", date(2026, 8, 21), *STRIKES, 1, 25))
    counting = Counting()
    sched = Scheduler(bot or FakeBot(), svc, settings, sleep=_no_sleep, evaluate=counting)
    return sched, store, counting


SLEPT: list[float] = []


async def _no_sleep(seconds: float) -> None:
    SLEPT.append(seconds)


MORNING = ny(2026, 7, 8, 8, 50)  # Wed 8 July 2026, after 08:45, before the open


async def test_report_round_one_evaluation_then_one_message_each(make_database_url, sample):
    sched, store, counting = make(make_database_url, sample)
    result = await sched.report_round(MORNING)
    assert counting.calls == [3]  # three users' positions in ONE evaluate call
    assert sched.bot.chats() == [1, 2, 3] and result.sent == 3
    # user 1's message (delivery is concurrent: on PostgreSQL user 2's may go out first)
    (text,) = [t for chat, t in sched.bot.sent if chat == 1]
    assert "ALVH report" in text and "<b>#1</b> 7250/7700 ·" in text  # the short strikes
    assert [r.delivery_status for r in store.reports(1)] == ["sent"]


async def test_users_with_other_parameters_are_evaluated_in_their_own_group(
        make_database_url, sample):
    sched, store, counting = make(make_database_url, sample, users=(1, 2, 3, 4))
    store.update_settings(3, param_overrides={"edr_trigger_pct": 1.1})
    store.update_settings(4, param_overrides={"edr_trigger_pct": 1.1})
    await sched.report_round(MORNING)
    assert sorted(counting.calls) == [2, 2]


async def test_exactly_once_across_a_restart(make_database_url, sample):
    first, _, _ = make(make_database_url, sample)
    await first.report_round(MORNING)
    # a new process on the same database: same session, nothing is sent again
    again, _, _ = make(make_database_url, sample, users=())
    result = await again.catch_up(MORNING + timedelta(minutes=10))
    assert again.bot.sent == [] and result.duplicate == 3
    # the next session is a new report
    nxt = await again.report_round(ny(2026, 7, 9, 8, 46))
    assert nxt.sent == 3


async def test_missed_report_is_sent_before_the_open(make_database_url, sample):
    sched, _, _ = make(make_database_url, sample)
    result = await sched.catch_up(ny(2026, 7, 8, 9, 29))  # down at 08:45, back at 09:29
    assert result.sent == 3 and sched.bot.chats() == [1, 2, 3]


async def test_missed_report_is_skipped_and_logged_after_the_open(
        make_database_url, sample, caplog):
    sched, store, _ = make(make_database_url, sample)
    result = await sched.catch_up(ny(2026, 7, 8, 9, 31))
    assert sched.bot.sent == [] and result.skipped == 3
    row = store.reports(2)[0]
    assert (row.delivery_status, row.session_date) == ("skipped", date(2026, 7, 8))
    assert "after the open" in row.error and "skipped" in caplog.text
    # and never sent later that day
    assert (await sched.report_round(ny(2026, 7, 8, 9, 45))).sent == 0


async def test_report_time_not_yet_reached_is_not_sent(make_database_url, sample):
    sched, store, _ = make(make_database_url, sample)
    store.update_settings(2, report_time="09:00")
    await sched.report_round(MORNING)
    assert sched.bot.chats() == [1, 3]


async def test_a_report_job_serves_only_its_own_time_and_zone(make_database_url, sample):
    sched, store, _ = make(make_database_url, sample)
    store.update_settings(2, report_time="07:00")
    store.update_settings(3, timezone="Europe/Berlin", report_time="14:00")  # 08:00 New York
    result = await sched.report_round(
        MORNING, only=lambda s: (s.report_time, s.timezone) == ("08:45", "America/New_York"))
    assert sched.bot.chats() == [1] and result.users == 1


async def test_a_book_the_engine_chokes_on_costs_only_its_owner(make_database_url, sample, caplog):
    sched, store, counting = make(make_database_url, sample)
    bad_id = store.list_positions(2)[0].id
    inner = counting.fn

    def choking(positions, *args, **kw):
        if any(p.id == bad_id for p in positions):
            raise ValueError("engine bug on this book")
        return inner(positions, *args, **kw)

    counting.fn = choking
    result = await sched.report_round(MORNING)
    assert sched.bot.chats() == [1, 3]
    # the group call, then one call per user: 1 + 3
    assert counting.calls == [3, 1, 1, 1] and result.evaluate_calls == 4
    row = store.reports(2)[0]
    assert (row.delivery_status, row.error) == ("failed", "evaluation failed")
    assert "evaluation failed for user 2" in caplog.text


async def test_no_report_on_a_holiday(make_database_url, sample):
    sched, _, _ = make(make_database_url, sample)
    assert (await sched.report_round(ny(2026, 7, 3, 9))).users == 0
    assert sched.bot.sent == []


async def test_forbidden_unsubscribes_and_the_others_still_get_theirs(make_database_url, sample):
    bot = FakeBot()
    bot.errors[2] = [Forbidden("Forbidden: bot was blocked by the user")]
    bot.errors[3] = [RuntimeError("a bug while sending")]
    sched, store, _ = make(make_database_url, sample, users=(1, 2, 3, 4), bot=bot)
    result = await sched.report_round(MORNING)
    assert bot.chats() == [1, 4]
    assert (result.blocked, result.failed, result.sent) == (1, 1, 2)
    assert store.get_settings(2).subscribed is False
    assert store.get_settings(3).subscribed is True
    assert store.reports(3)[0].delivery_status == "failed"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter(int)
async def test_retry_after_is_honoured_within_bounds(make_database_url, sample):
    SLEPT.clear()
    bot = FakeBot()
    bot.errors[1] = [RetryAfter(7)]
    bot.errors[2] = [RetryAfter(3600)]  # longer than ALVH_RETRY_AFTER_MAX_S: give up
    sched, store, _ = make(make_database_url, sample, bot=bot)
    result = await sched.report_round(MORNING)
    assert SLEPT == [7]
    assert bot.chats() == [1, 3] and result.failed == 1
    assert store.reports(2)[0].delivery_status == "failed"


async def test_market_outage_still_delivers_with_the_data_flagged(make_database_url, sample):
    sched, _, _ = make(make_database_url, sample, users=(1,))
    sched.services.provider.fail = True
    result = await sched.report_round(MORNING)
    assert result.sent == 1
    text = sched.bot.sent[0][1]
    assert "SPX is missing" in text and "<b>No market data</b>" in text
    assert "EDR at the last closes" not in text  # the history is behind /market (issue 14)
    # with good data seen once, the fallback is the last good snapshot, flagged, and the
    # engine names the quotes that are too old by the next session
    sched2, _, _ = make(make_database_url, sample, users=(5,), db="two")
    await sched2.market()
    sched2.services.provider.fail = True
    sched2.services.clock = lambda: ny(2026, 7, 9, 10, 15)
    assert (await sched2.report_round(ny(2026, 7, 9, 8, 50))).sent == 1
    text = sched2.bot.sent[0][1]
    assert "<b>Stale data</b>" in text  # the MARKET_DATA_FALLBACK flag, in words
    assert "SPX quote from 2026-07-08 16:00 ET is 1095 min old" in text  # 16:00 → 10:15 + 1 d


async def test_official_close_recorded_once_after_the_vix_close(make_database_url, sample):
    sched, store, _ = make(make_database_url, sample, users=())
    # 16:10: the latest VIX close is the 7th's, but these data are the 8th's live quotes
    sched.services.clock = lambda: ny(2026, 7, 8, 16, 10)
    assert await sched.close_round(ny(2026, 7, 8, 16, 10)) is None
    sched.services.clock = lambda: sample.asof  # the sample is the 16:15 close of the 8th
    session, edr, state = await sched.close_round(ny(2026, 7, 8, 16, 20))
    # METHOD §2: EDR % = VIX / √252 with the close VIX 16.90 → 1.0646 %; ≥ 0.94 % → BREACHED
    assert session == date(2026, 7, 8) and edr == pytest.approx(16.90 / 252 ** 0.5, abs=5e-4)
    assert state == "BREACHED"
    await sched.close_round(ny(2026, 7, 8, 16, 30))
    rows = store.edr_readings()
    assert [(r.session_date, r.state) for r in rows] == [(date(2026, 7, 8), "BREACHED")]
    # with the session's closes (the sample's 16:15 quotes = the shipped 8 July CSV closes)
    assert (rows[0].spx, rows[0].vix, rows[0].vix9d, rows[0].vix3m, rows[0].vvix) == (
        7482.71, 16.90, 14.41, 19.46, 91.38)


async def test_the_recorded_close_fills_a_lagging_history_in_later_rounds(
        make_database_url, sample):
    sched, _, _ = make(make_database_url, sample, users=())
    await sched.close_round(ny(2026, 7, 8, 16, 20))
    sched.services.provider.history_lag = 1  # Cboe's CSVs do not have the 8th yet
    _, history, _, note = await sched.market()
    assert note == "" and history.index[-1] == pd.Timestamp("2026-07-08")
    assert history.loc["2026-07-08", ["spx", "vix", "vix9d"]].tolist() == [7482.71, 16.90, 14.41]
    assert history.loc["2026-07-07", "vix"] == 16.13  # the provider's own rows stand
    # in an outage the history fetched apart is filled too
    sched2, store2, _ = make(make_database_url, sample, users=(), db="two")
    store2.record_edr_reading(date(2026, 7, 8), 1.0646, "BREACHED", "VIX", vix=16.90)
    sched2.services.provider.history_lag, sched2.services.provider.fail = 1, True
    _, history, _, note = await sched2.market()
    assert note == MARKET_UNAVAILABLE and history.loc["2026-07-08", "vix"] == 16.90


# --- the EDR chart with the report (users.report_chart) ---


@pytest.fixture
def chart_renders(monkeypatch):
    """Every EDR chart actually drawn: the `edr_history` inputs of each render."""
    from bot import charts

    drawn: list[dict] = []
    real = charts.edr_history

    def recording(history, asof, params, **today):
        drawn.append({"params": params, **today})
        return real(history, asof, params, **today)

    monkeypatch.setattr(charts, "edr_history", recording)
    return drawn


async def test_chart_goes_after_the_report_to_users_who_asked_drawn_once(
        make_database_url, sample, chart_renders):
    sched, store, _ = make(make_database_url, sample, users=(1, 2, 3, 4))
    for u in (1, 2, 4):
        store.update_settings(u, report_chart=True)
    result = await sched.report_round(MORNING)
    bot = sched.bot
    assert result.sent == 4 and bot.chats() == [1, 2, 3, 4]  # everybody gets the report
    assert sorted(c for c, _, _ in bot.photos) == [1, 2, 4]  # user 3 left the chart off
    for chat in (1, 2, 4):  # the photo follows that user's report
        assert bot.order.index(("text", chat)) < bot.order.index(("photo", chat))
    assert len(chart_renders) == 1 and result.chart_renders == 1 and result.charts == 3
    pngs = {id(png) for _, png, _ in bot.photos}
    assert len(pngs) == 1  # the very same bytes for everyone
    png = bot.photos[0][1]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1200, 900)
    assert "EDR" in bot.photos[0][2]
    # today's reading on the chart: the sample's VIX 16.90 → 16.90/√252 % (METHOD §2), BREACHED
    drawn = chart_renders[0]
    assert drawn["today_pct"] == pytest.approx(16.90 / 252 ** 0.5, abs=5e-4)
    assert drawn["today_state"] == "BREACHED"
    assert [r.delivery_status for r in store.reports(3)] == ["sent"]


async def test_chart_is_drawn_per_parameter_group(make_database_url, sample, chart_renders):
    sched, store, _ = make(make_database_url, sample)
    for u in (1, 2, 3):
        store.update_settings(u, report_chart=True)
    store.update_settings(3, param_overrides={"edr_trigger_pct": 1.1})
    result = await sched.report_round(MORNING)
    assert result.charts == 3 and len(chart_renders) == 2
    assert sorted(d["params"].edr_trigger_pct for d in chart_renders) == [0.94, 1.1]
    by_chat = {c: png for c, png, _ in sched.bot.photos}
    assert by_chat[1] is by_chat[2] and by_chat[3] != by_chat[1]  # its own trigger line
    # 1.0646 % is between user 3's approach (0.9 × 1.1 = 0.99 %) and trigger (1.1 %)
    assert {d["params"].edr_trigger_pct: d["today_state"] for d in chart_renders} == {
        0.94: "BREACHED", 1.1: "APPROACHING"}


async def test_no_chart_setting_no_render(make_database_url, sample, chart_renders):
    sched, _, _ = make(make_database_url, sample)
    result = await sched.report_round(MORNING)
    assert result.sent == 3 and sched.bot.photos == [] and chart_renders == []


async def test_a_chart_failure_never_costs_the_report(
        make_database_url, sample, monkeypatch, caplog):
    from bot import charts

    def broken(*args, **kwargs):
        raise RuntimeError("matplotlib fell over")

    monkeypatch.setattr(charts, "edr_history_png", broken)
    sched, store, _ = make(make_database_url, sample, users=(1, 2))
    store.update_settings(1, report_chart=True)
    result = await sched.report_round(MORNING)
    assert result.sent == 2 and sched.bot.chats() == [1, 2] and sched.bot.photos == []
    assert (result.chart_renders, result.charts) == (1, 0)
    assert [r.delivery_status for r in store.reports(1)] == ["sent"]
    assert "EDR chart for the report not drawn: matplotlib fell over" in caplog.text


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter(int)
async def test_chart_send_has_the_reports_429_and_forbidden_handling(make_database_url, sample):
    SLEPT.clear()
    bot = FakeBot()
    bot.photo_errors[1] = [RetryAfter(5)]
    bot.photo_errors[2] = [Forbidden("Forbidden: bot was blocked by the user")]
    bot.photo_errors[3] = [RuntimeError("connection reset")]
    sched, store, _ = make(make_database_url, sample, bot=bot)
    for u in (1, 2, 3):
        store.update_settings(u, report_chart=True)
    result = await sched.report_round(MORNING)
    assert SLEPT == [5] and [c for c, _, _ in bot.photos] == [1]
    # the reports were delivered before the photos: all three count as sent
    assert result.sent == 3 and result.charts == 1
    assert [store.reports(u)[0].delivery_status for u in (1, 2, 3)] == ["sent"] * 3
    assert store.get_settings(2).subscribed is False  # blocked: unsubscribed as for text
    assert store.get_settings(3).subscribed is True


class FakeJobQueue:
    def __init__(self):
        self.once: list[tuple[timedelta, str]] = []
        self.kwargs: list[dict] = []

    def run_once(self, callback, when, name=None, job_kwargs=None):
        self.once.append((when, name))
        self.kwargs.append(job_kwargs or {})


async def test_close_job_retries_until_the_delayed_feed_shows_the_close(make_database_url, sample):
    from bot.scheduler.jobs import _close_job

    sched, store, _ = make(make_database_url, sample, users=())
    sched.services.provider.vix_asof = ny(2026, 7, 8, 16, 0)  # 15-minute delayed feed
    jq = FakeJobQueue()
    app = SimpleNamespace(bot_data={"scheduler": sched,
                                    "jobs_clock": lambda: ny(2026, 7, 8, 16, 15)},
                          job_queue=jq)
    await _close_job(SimpleNamespace(application=app))
    assert store.edr_readings() == [] and sched.close_pending == date(2026, 7, 8)
    assert jq.once == [(timedelta(minutes=5), "official-close-retry")]
    # a one-shot job runs however late it starts (APScheduler's default grace is 1 s)
    assert "misfire_grace_time" in jq.kwargs[0] and jq.kwargs[0]["misfire_grace_time"] is None
    sched.services.provider.vix_asof = None  # the 16:14 print has arrived
    await _close_job(SimpleNamespace(application=app))
    assert [r.session_date for r in store.edr_readings()] == [date(2026, 7, 8)]
    assert sched.close_pending is None and len(jq.once) == 1


async def test_a_missed_close_is_recorded_by_the_next_mornings_catch_up(make_database_url, sample):
    sched, store, _ = make(make_database_url, sample, users=())
    await sched.catch_up(ny(2026, 7, 9, 7))  # down over the 8th's close; data still that close
    assert [r.session_date for r in store.edr_readings()] == [date(2026, 7, 8)]
    # after the next open, the 8th's close can no longer be told from live data: not recorded
    later, store2, _ = make(make_database_url, sample, users=(), db="later")
    later.services.clock = lambda: ny(2026, 7, 9, 10)
    await later.close_round(ny(2026, 7, 9, 10))
    assert store2.edr_readings() == []


async def test_an_alert_fires_once_per_change(make_database_url, sample):
    sched, store, _ = make(make_database_url, sample, users=(1, 2))
    # user 2 holds a condor whose short call (7,450) is below the sample's SPX 7,482.71
    store.add_position(2, PositionInput("SPXW", date(2026, 8, 21), 7000, 7050, 7450, 7500, 1,
                                        4.35))
    store.update_settings(1, alerts_enabled=False)
    noon = ny(2026, 7, 8, 12)
    first = await sched.intraday_round(noon)
    assert sched.bot.chats() == [2]
    text = sched.bot.sent[0][1]
    assert "short call 7450 breached" in text
    second = await sched.intraday_round(noon + timedelta(minutes=15))
    assert len(sched.bot.sent) == 1 and second.duplicate == 1 and first.sent == 1


async def test_no_alerts_in_quiet_hours_or_outside_regular_hours(make_database_url, sample):
    sched, store, _ = make(make_database_url, sample, users=(1,))
    store.add_position(1, PositionInput("SPXW", date(2026, 8, 21), 7000, 7050, 7450, 7500, 1,
                                        4.35))
    store.update_settings(1, quiet_start="11:30", quiet_end="12:30")
    assert (await sched.intraday_round(ny(2026, 7, 8, 12))).users == 0
    assert (await sched.intraday_round(ny(2026, 7, 8, 17))).users == 0  # after hours
    assert (await sched.intraday_round(ny(2026, 7, 8, 12, 30))).sent == 1



# --- property: the report trigger never fires off-session and never skips a session -------

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles", "UTC"]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 1),
                    timezones=st.just(UTC)),
       st.sampled_from(ZONES), st.integers(4, 23), st.integers(0, 59))
def test_next_report_moment_is_the_first_session_day_at_the_wall_time(after, zone, h, m):
    tz = ZoneInfo(zone)
    got = next_report_moment(after, dtime(h, m), zone)
    local = got.astimezone(tz)
    assert got > after and (local.hour, local.minute) == (h, m)  # no DST gap after 04:00
    assert cal.is_session(local.astimezone(NY).date())
    # brute force: no earlier local day has that wall time after `after` on a session
    day = after.astimezone(tz).date() - timedelta(days=1)
    while day < local.date():
        cand = datetime(day.year, day.month, day.day, h, m, tzinfo=tz)
        assert not (cand > after and cal.is_session(cand.astimezone(NY).date())), cand
        day += timedelta(days=1)


def test_exit_alerts_are_keyed_by_meaning_not_by_the_live_quote():
    day = date(2026, 11, 25)

    def key(signal):
        [alert] = position_alerts(_record(signals=[signal]), 7500.0, day)
        return alert.key

    half = {key(f"VIX {v} ≥ 30: sell half of the L2 calls") for v in ("31.0", "31.4", "30.8")}
    assert half == {"exit:9:vix>=30:2026-11-25"}
    assert key("VIX 51.2 ≥ 50: sell all L2 calls") == "exit:9:vix>=50:2026-11-25"
    marks = {key(f"L2 VIX 2026-12-16 22C: mark {m} ≥ 3 × cost 1.10: sell half")
             for m in ("3.40", "3.55")}
    assert marks == {"exit:9:mark:L2 VIX 2026-12-16 22C:2026-11-25"}
    other = key("L2 VIX 2026-12-23 25C: mark 3.40 ≥ 3 × cost 1.10: sell half")
    assert other not in marks  # another layer is another alert


def test_book_layer_exit_signals_are_alerts_of_the_book():
    day = date(2026, 11, 25)
    assert book_alerts(None, day) == []
    assert book_alerts(SimpleNamespace(exit_signals=()), day) == []
    signals = ("VIX 31.4 ≥ 30: sell half of the L2 calls",
               "L2 VIX 2026-12-16 22C: mark 3.40 ≥ 3 × cost 1.10: sell half")
    alerts = book_alerts(SimpleNamespace(exit_signals=signals), day)
    assert [a.key for a in alerts] == ["exit:book:vix>=30:2026-11-25",
                                       "exit:book:mark:L2 VIX 2026-12-16 22C:2026-11-25"]
    assert {a.kind for a in alerts} == {"exit"}
    assert [a.data["signal"] for a in alerts] == list(signals)
    # never the key of a position's alert for the same signal
    [pos] = position_alerts(_record(signals=signals[:1]), 7500.0, day)
    assert pos.key != alerts[0].key


async def test_a_book_layers_exit_signal_is_alerted_once(make_database_url, sample):
    """A VIX call held against the whole book (`/hedge book add`) bought at 0.01 marks far above
    3 × its cost on the sample: the watch says so, as the book's, once per session."""
    sched, store, _ = make(make_database_url, sample, users=(1,))
    store.add_position(1, PositionInput("SPXW", date(2026, 8, 21), *STRIKES, 1, 4.35))
    store.add_hedge(1, None, HedgeInput("VIX_CALL", date(2026, 7, 22), 1, 0.01, 20))
    noon = ny(2026, 7, 8, 12)
    first = await sched.intraday_round(noon)
    assert first.sent == 1
    text = sched.bot.sent[0][1]
    assert "<b>Book</b> (layers held against all positions): hedge exit signal — " in text
    assert "L2 VIX 2026-07-22 20C: mark " in text and "≥ 3 × cost 0.01: sell half" in text
    again = await sched.intraday_round(noon + timedelta(minutes=15))
    assert again.sent == 0 and len(sched.bot.sent) == 1


# --- at-least-once reports (issue 13) ----------------------------------------------------------


async def test_a_transient_network_error_is_retried_with_backoff_until_sent(
        make_database_url, sample):
    from telegram.error import NetworkError

    bot = FakeBot()
    bot.errors[2] = [NetworkError("Bad Gateway"), NetworkError("Connection reset by peer")]
    sched, store, counting = make(make_database_url, sample, bot=bot)
    first = await sched.report_round(MORNING)
    assert (first.sent, first.failed) == (2, 1)
    (row,) = store.reports(2)
    assert row.delivery_status == "failed"
    assert row.error == "NetworkError: Bad Gateway"  # what happened, not just "failed"
    # before the backoff (60 s after the attempt) nothing is retried, nothing evaluated
    calls = len(counting.calls)
    early = await sched.report_round(MORNING + timedelta(seconds=30))
    assert early.sent == 0 and len(counting.calls) == calls and early.duplicate == 3
    # after it: user 2 only, and it fails again; the next backoff is twice as long
    again = await sched.report_round(MORNING + timedelta(seconds=61))
    assert (again.sent, again.failed) == (0, 1) and bot.chats() == [1, 3]
    (row,) = store.reports(2)
    assert row.attempts == 2 and row.error == "NetworkError: Connection reset by peer"
    assert (await sched.report_round(MORNING + timedelta(seconds=61 + 100))).failed == 0
    third = await sched.report_round(MORNING + timedelta(seconds=61 + 121))
    assert third.sent == 1 and bot.chats() == [1, 2, 3]
    assert store.reports(2)[0].delivery_status == "sent"


async def test_a_crash_mid_send_leaves_a_pending_claim_retried_after_the_lease(
        make_database_url, sample):
    sched, store, _ = make(make_database_url, sample)
    for uid in (1, 2, 3):  # claimed, then the process died before any answer was recorded
        assert store.claim_report(uid, date(2026, 7, 8), "premarket", now=MORNING,
                                  policy=sched.retry_policy)
    restarted = await sched.catch_up(MORNING + timedelta(minutes=1))
    assert restarted.sent == 0 and restarted.duplicate == 3  # within the lease: in flight
    later = await sched.report_round(MORNING + timedelta(minutes=11))  # lease 10 min over
    assert later.sent == 3 and sched.bot.chats() == [1, 2, 3]
    assert [store.reports(u)[0].delivery_status for u in (1, 2, 3)] == ["sent"] * 3


async def test_no_retry_after_the_open_nor_after_forbidden(make_database_url, sample):
    from telegram.error import NetworkError

    bot = FakeBot()
    bot.errors[1] = [NetworkError("Bad Gateway"), NetworkError("Bad Gateway")]
    bot.errors[2] = [Forbidden("Forbidden: bot was blocked by the user")]
    sched, store, _ = make(make_database_url, sample, bot=bot)
    await sched.report_round(MORNING)
    assert store.reports(2)[0].error.startswith("Forbidden")
    store.subscribe(2)  # even subscribed again the same morning: the block was final
    await sched.report_round(MORNING + timedelta(minutes=5))  # user 1 retried, fails again
    assert bot.chats() == [3] and store.reports(1)[0].attempts == 2
    assert store.reports(2)[0].delivery_status == "failed"
    # user 1's next retry falls after the open: past the cut-off nothing goes
    after_open = await sched.report_round(ny(2026, 7, 8, 9, 31))
    assert after_open.sent == 0 and bot.chats() == [3]
    assert store.reports(1)[0].delivery_status == "failed"


def _run_retry_job(monkeypatch, sched, now):
    from bot.scheduler import jobs

    async def leader(application):
        return True

    monkeypatch.setattr(jobs, "scheduler_of", lambda application: sched)
    monkeypatch.setattr(jobs, "is_leader", leader)
    app = type("App", (), {"bot_data": {"jobs_clock": lambda: now}})()
    return jobs._report_retry_job(type("Ctx", (), {"application": app})())


async def test_the_retry_job_looks_at_reports_still_due(monkeypatch):
    """Before the open: every report of the day. From the open on: only reports set for the
    open or later that `report_decision` still sends (in-session, evening); a morning report
    is past its cut-off. Not at all on a holiday."""
    rounds: list[tuple[datetime, object]] = []

    class Sched:
        async def report_round(self, now, only=None):
            rounds.append((now, only))

    holiday = ny(2026, 7, 3, 8, 50)  # Independence Day observed (Fri 3 July 2026)
    evening = ny(2026, 7, 8, 18, 5)
    for now in (MORNING, ny(2026, 7, 8, 9, 30), evening, holiday):
        await _run_retry_job(monkeypatch, Sched(), now)
    assert [now for now, _ in rounds] == [MORNING, ny(2026, 7, 8, 9, 30), evening]
    assert rounds[0][1] is None

    def user(hhmm, tz="America/New_York"):
        return SimpleNamespace(report_time=hhmm, timezone=tz)

    at_open, at_evening = rounds[1][1], rounds[2][1]
    assert not at_open(user("08:45")) and not at_open(user("18:00"))  # past; not yet due
    assert at_open(user("09:30"))
    assert at_evening(user("18:00")) and at_evening(user("17:00", "America/Chicago"))
    assert not at_evening(user("08:45")) and not at_evening(user("12:00"))  # stale after close
    assert not at_evening(user("18:30"))  # not yet


async def test_a_failed_evening_report_is_retried_by_the_retry_job(
        make_database_url, sample, monkeypatch):
    from telegram.error import NetworkError

    bot = FakeBot()
    bot.errors[1] = [NetworkError("Bad Gateway")]
    sched, store, _ = make(make_database_url, sample, users=(1,), bot=bot)
    store.update_settings(1, report_time="18:00")
    first = await sched.report_round(ny(2026, 7, 8, 18, 0))
    assert first.sent == 0 and store.reports(1)[0].delivery_status == "failed"
    await _run_retry_job(monkeypatch, sched, ny(2026, 7, 8, 18, 5))  # past the 60 s backoff
    assert bot.chats() == [1] and store.reports(1)[0].delivery_status == "sent"
    assert store.reports(1)[0].attempts == 2


async def test_the_report_names_its_session_and_says_when_its_data_are_stale(
        make_database_url, sample):
    sched, _, _ = make(make_database_url, sample, users=(1,))
    await sched.report_round(ny(2026, 7, 9, 8, 46))  # Thu 9 July, the sample's data of the 8th
    text = sched.bot.sent[0][1]
    head = text.split("\n")[:1]
    assert head[0] == "<b>ALVH report</b> before the open of Thu 2026-07-09 (offline sample)"
    assert text.split("\n")[2].startswith("<b>#1</b> ")  # the positions first, then the market line
    # the data time: the SPX close of the 8th (the sample's clock, which values the P&L, is
    # 16:15, within VALUED_NOTE_AFTER of it: no "valued" note)
    assert "as of the close 2026-07-08 16:00 ET" in text and "valued" not in text
    assert "Stale data" not in text
    # an outage: the last good quotes are used, and the header says they are stale, with times
    sched.services.provider.fail = True
    sched.services.clock = lambda: ny(2026, 7, 10, 8, 46)
    await sched.report_round(ny(2026, 7, 10, 8, 46))
    text = sched.bot.sent[1][1]
    assert "before the open of Fri 2026-07-10" in text.split("\n")[0]
    assert ("⚠️ <b>Stale data</b>: market data could not be fetched; these are the last good "
            "quotes, SPX from 2026-07-08 16:00 ET") in text


async def test_each_user_gets_a_lazy_view_of_one_evaluation(make_database_url, sample):
    sched, store, counting = make(make_database_url, sample)
    store.add_position(2, PositionInput("SPXW", date(2026, 8, 21), 7100, 7150, 7800, 7850, 2, 20))
    per_user, _, calls = await sched.evaluate_books(store.subscriber_books())
    assert calls == 1 and counting.calls == [4]
    views = [per_user[u].positions for u in (1, 2, 3)]
    # windows on the one evaluation, no record built before a message is rendered
    assert [len(v) for v in views] == [1, 2, 1]
    assert all(x is None for x in views[0]._items)
    # each user's book hedge: that user's key only, and not built before it is read either
    hedges = [per_user[u].book_hedges for u in (1, 2, 3)]
    assert [list(h) for h in hedges] == [[1], [2], [3]] and not hedges[0]._kept
    assert per_user[3].book_hedge.book == 3 and list(hedges[0]._kept) == [3]  # one cache
    assert [r.strikes for r in views[1]] == [(7200.0, 7250.0, 7700.0, 7750.0),
                                             (7100.0, 7150.0, 7800.0, 7850.0)]
    assert [r.qty for r in views[1]] == [1, 2]
    assert sum(x is not None for x in views[0]._items) == 2  # only user 2's were built
