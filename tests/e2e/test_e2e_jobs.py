"""The scheduler through the whole stack: the real Application (JobQueue, AIORateLimiter), the
real store, the offline sample, the fake Bot API server over HTTP. The rounds' clock is
injected (`bot_data["jobs_clock"]`), so nothing waits for a real 08:45.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from conftest import start_bot, stop_bot
from fakebotapi import MAX_MESSAGE_LENGTH, parse_html
from sqlalchemy import insert

from bot.scheduler import report_job_name, sync_report_jobs
from bot.store import Store
from bot.store.tables import PositionRow, UserRow
from bot.telegram.app import build_application

NY = ZoneInfo("America/New_York")
BEFORE_OPEN = datetime(2026, 7, 8, 8, 50, tzinfo=NY)  # the sample's session, 08:45 passed
FIRST_CHAT = 50_000


def seed(url: str, users: int) -> list[int]:
    """`users` subscribers with one condor each, straight into the tables (fast)."""
    store = Store.open(url)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(UserRow.__table__), [
            dict(tg_user_id=FIRST_CHAT + u, chat_id=FIRST_CHAT + u, timezone="America/New_York",
                 report_time="08:45", alerts_enabled=True, param_overrides="{}",
                 subscribed=True, created_at=now, last_seen_at=now) for u in range(users)])
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM users ORDER BY id")]
        conn.execute(insert(PositionRow.__table__), [
            dict(user_id=i, root="SPXW", expiry=date(2026, 8, 21), k1=7200, k2=7250, k3=7700,
                 k4=7750, qty=1, entry_credit=25, roll_credits=0, label="", notes="",
                 status="open", opened=date(2026, 7, 1), opened_at=now) for i in ids])
    store.close()
    return [FIRST_CHAT + u for u in range(users)]


async def start_with_clock(bots, settings, clock_at: datetime):
    app = build_application(settings, provider=bots.provider)
    app.bot_data["jobs_clock"] = lambda: clock_at
    bots.apps.append(app)
    return await start_bot(app)


async def wait_round(app, kind: str = "premarket", timeout: float = 40.0):
    """The start-up catch-up's report round, once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sched = app.bot_data.get("scheduler")
        if sched is not None and kind in sched.last_round:
            return sched.last_round[kind]
        await asyncio.sleep(0.05)
    raise TimeoutError("the catch-up round did not finish")


async def test_fan_out_to_500_users_paced_by_the_rate_limiter_and_once_only(
        fake_api, bots, e2e_settings):
    limit = 200.0  # messages per second (AIORateLimiter overall rate)
    chats = seed(e2e_settings.database_url, 500)
    settings = dataclasses.replace(e2e_settings, rate_limit_overall_per_second=limit)
    app = await start_with_clock(bots, settings, BEFORE_OPEN)
    result = await wait_round(app)
    sends = [c for c in fake_api.calls_of("sendMessage") if c.ok]
    assert result.sent == 500 and result.evaluate_calls == 1
    assert sorted(int(c.params["chat_id"]) for c in sends) == chats
    for c in sends[:5]:  # what Telegram would accept, and the report it should be
        assert len(c.params["text"]) <= MAX_MESSAGE_LENGTH
        parse_html(c.params["text"])
        assert "ALVH report" in c.params["text"] and "</b> 7250/7700 ·" in c.params["text"]
    # aiolimiter lets one second's worth through at once, then paces at the limit
    span = sends[-1].at - sends[0].at
    assert span >= 0.9 * (len(sends) - limit) / limit

    # a restart later that morning: the catch-up finds every report sent, sends nothing
    await bots.stop(app)
    later = await start_with_clock(bots, settings, datetime(2026, 7, 8, 9, 20, tzinfo=NY))
    again = await wait_round(later)
    assert again.duplicate == 500 and again.sent == 0
    assert len([c for c in fake_api.calls_of("sendMessage") if c.ok]) == 500


async def test_forbidden_unsubscribes_and_retry_after_is_honoured(fake_api, bots, e2e_settings):
    a, blocked, slow = seed(e2e_settings.database_url, 3)
    fake_api.forbid_chat(blocked)
    fake_api.add_retry_after(seconds=1, times=1, chat_id=slow)
    # the rate limiter is the one layer that honours the 429
    app = await start_with_clock(bots, e2e_settings, BEFORE_OPEN)
    result = await wait_round(app)
    assert (result.sent, result.blocked) == (2, 1)
    got = {int(c.params["chat_id"]) for c in fake_api.calls_of("sendMessage") if c.ok}
    assert got == {a, slow}
    refused = [c for c in fake_api.calls_of("sendMessage")
               if int(c.params["chat_id"]) == slow and not c.ok]
    ok = [c for c in fake_api.calls_of("sendMessage") if int(c.params["chat_id"]) == slow and c.ok]
    assert len(refused) == 1 and ok[0].at - refused[0].at >= 0.95  # waited the second asked
    store = app.bot_data["services"].store
    assert store.get_settings(blocked).subscribed is False
    assert store.get_settings(a).subscribed is True


def _attempts(fake_api, chat: int) -> list:
    return [c for c in fake_api.calls_of("sendMessage") if int(c.params["chat_id"]) == chat]


async def test_429s_are_retried_by_one_layer_at_most_max_retries_plus_one_times(
        fake_api, bots, e2e_settings):
    ok, slow = seed(e2e_settings.database_url, 2)
    fake_api.add_retry_after(seconds=1, times=20, chat_id=slow)  # Telegram keeps refusing
    app = await start_with_clock(bots, e2e_settings, BEFORE_OPEN)  # RATE_LIMIT_MAX_RETRIES 2
    result = await wait_round(app)
    assert (result.sent, result.failed) == (1, 1)
    tries = _attempts(fake_api, slow)
    assert len(tries) == 3 and not any(c.ok for c in tries)  # not 9 (limiter × own loop)
    row = app.bot_data["services"].store.reports(slow)[0]
    assert row.delivery_status == "failed" and row.error.startswith("RetryAfter")
    assert [c.ok for c in _attempts(fake_api, ok)] == [True]


async def test_a_429_longer_than_the_bound_is_not_waited_at_all(fake_api, bots, e2e_settings):
    ok, slow = seed(e2e_settings.database_url, 2)
    fake_api.add_retry_after(seconds=3600, times=1, chat_id=slow)
    settings = dataclasses.replace(e2e_settings,
                                   subsystem_env={"ALVH_RETRY_AFTER_MAX_S": "60"})
    app = await start_with_clock(bots, settings, BEFORE_OPEN)
    result = await wait_round(app)  # would wait an hour if the limiter slept on it
    assert (result.sent, result.failed) == (1, 1)
    assert len(_attempts(fake_api, slow)) == 1
    assert [c.ok for c in _attempts(fake_api, ok)] == [True]


async def test_report_chart_setting_sends_one_photo_after_the_report(
        fake_api, bots, e2e_settings):
    with_chart, without, also = seed(e2e_settings.database_url, 3)
    store = Store.open(e2e_settings.database_url)
    for chat in (with_chart, also):
        store.update_settings(chat, report_chart=True)
    store.close()
    app = await start_with_clock(bots, e2e_settings, BEFORE_OPEN)
    result = await wait_round(app)
    assert result.sent == 3 and (result.charts, result.chart_renders) == (2, 1)
    photos = [c for c in fake_api.calls_of("sendPhoto") if c.ok]
    assert sorted(int(c.params["chat_id"]) for c in photos) == [with_chart, also]
    texts = {int(c.params["chat_id"]): c.at for c in fake_api.calls_of("sendMessage") if c.ok}
    assert set(texts) == {with_chart, without, also}
    for c in photos:
        assert c.at >= texts[int(c.params["chat_id"])]  # after that user's report
        data = c.params["photo"]["content"]
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (
            1200, 900)
        assert "EDR" in c.params["caption"]
    assert photos[0].params["photo"]["content"] == photos[1].params["photo"]["content"]


async def test_settings_reschedules_at_once_and_shows_the_jobqueue_next_run(
        fake_api, bots, e2e_settings):
    app = await bots.start()
    # rounds on their own clock: this bot sends reports, so /settings names the JobQueue's
    # next run (an offline bot without one promises none: the test below)
    app.bot_data["jobs_clock"] = lambda: BEFORE_OPEN
    user = 777
    fake_api.inject_message(user, None, "/subscribe", first_name="Ann")
    await bots.settle()
    assert app.job_queue.get_jobs_by_name(report_job_name("08:45", "America/New_York"))
    fake_api.drain(user)
    fake_api.inject_message(user, None, "/settings report_time 07:30", first_name="Ann")
    await bots.settle()
    reply = fake_api.drain(user)[-1]["text"]
    jobs = app.job_queue.get_jobs_by_name(report_job_name("07:30", "America/New_York"))
    assert len(jobs) == 1
    assert not [j for j in app.job_queue.get_jobs_by_name(
        report_job_name("08:45", "America/New_York")) if not j.removed]
    nxt = jobs[0].next_t.astimezone(NY)
    assert nxt.strftime("%H:%M") == "07:30" and nxt > datetime.now(UTC)
    from core.calendar import is_session

    assert is_session(nxt.date())
    assert nxt.strftime("%Y-%m-%d %H:%M") in reply  # the JobQueue's run, in the user's zone
    # the APScheduler job carries the misfire grace time and coalescing
    assert (jobs[0].job.misfire_grace_time, jobs[0].job.coalesce) == (3600, True)
    assert app.job_queue.get_jobs_by_name("official-close")
    assert app.job_queue.get_jobs_by_name("intraday-watch")
    # a new zone moves the job too
    fake_api.inject_message(user, None, "/settings timezone Europe/Berlin", first_name="Ann")
    await bots.settle()
    reply = fake_api.drain(user)[-1]["text"]
    berlin = app.job_queue.get_jobs_by_name(report_job_name("07:30", "Europe/Berlin"))
    assert len(berlin) == 1 and jobs[0].removed
    nxt = berlin[0].next_t.astimezone(ZoneInfo("Europe/Berlin"))
    assert nxt.strftime("%H:%M") == "07:30" and nxt.strftime("%Y-%m-%d %H:%M") in reply
    # concurrent re-syncs (two /settings at once) never duplicate a job
    berlin[0].schedule_removal()
    await asyncio.gather(*(sync_report_jobs(app) for _ in range(5)))
    assert len(app.job_queue.get_jobs_by_name(report_job_name("07:30", "Europe/Berlin"))) == 1
    await stop_bot(app)
    bots.apps.remove(app)


async def test_an_offline_bot_promises_no_report_and_sends_none(fake_api, bots, e2e_settings):
    """docs/commands.md "Offline bot": no next report in /subscribe or /settings, and the
    report job, fired, sends nothing."""
    app = await bots.start()
    user = 778
    fake_api.inject_message(user, None, "/subscribe", first_name="Ann")
    await bots.settle()
    (reply,) = fake_api.drain(user)
    assert "Next scheduled report: none — this bot runs on the offline sample" in reply["text"]
    assert "2026-12" not in reply["text"]  # never the wall clock's date
    (job,) = app.job_queue.get_jobs_by_name(report_job_name("08:45", "America/New_York"))
    await job.run(app)
    await bots.settle()
    assert fake_api.drain(user) == []
    assert "premarket" not in app.bot_data["scheduler"].last_round
    await stop_bot(app)
