"""Several bot processes on one PostgreSQL database (docs/operations.md "Several workers").

Each worker is a subprocess running the real application (`build_application`, the offline
sample, the store on the shared database) in webhook mode against the fake Bot API server; the
test is the load balancer, handing each update to one worker. Their rounds' clock is pinned
before the sample session's open, so the start-up catch-up is the report round.

Polling is not used here: Telegram gives one `getUpdates` caller the updates and answers a
second with 409, so several workers answering commands means webhook mode (the fake server
does not model that conflict; two pollers on it would both get every update).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fakebotapi import LOCAL_TOKEN, FakeBotAPI
from test_e2e_jobs import seed

REPO = Path(__file__).resolve().parents[2]
SECRET = "workers-secret"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
CONCURRENT_SENDS = 16  # ALVH_CONCURRENT_SENDS of the workers: the documented loss bound

WORKER = """
import asyncio, sys
from datetime import datetime
from bot.config import Settings
from bot.telegram.app import build_application
from bot.telegram.serving import Serving, start_webhook

base_url, database_url, port, clock_at, rate, token, secret, sends = sys.argv[1:9]
settings = Settings(
    telegram_bot_token=token, telegram_api_base_url=base_url, database_url=database_url,
    market_data_provider="offline", rate_limit_overall_per_second=float(rate),
    subsystem_env={"ALVH_WEBHOOK_URL": "https://bot.example.com/hook",
                   "ALVH_WEBHOOK_SECRET": secret, "ALVH_WEBHOOK_PORT": port,
                   "ALVH_CONCURRENT_SENDS": sends})

async def main():
    app = build_application(settings)
    app.bot_data["jobs_clock"] = lambda: datetime.fromisoformat(clock_at)
    await start_webhook(app, Serving.from_settings(settings))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
BEFORE_OPEN = "2026-07-08T08:50:00-04:00"  # the sample's session, 08:45 passed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    def __init__(self, api: FakeBotAPI, url: str, rate: float = 200.0):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, api.base_url, url, str(self.port), BEFORE_OPEN,
             str(rate), LOCAL_TOKEN, SECRET, str(CONCURRENT_SENDS)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline().strip()
        assert line == "ready", self.proc.stderr.read() if self.proc.poll() is not None else line

    @property
    def hook(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def workers(*started: Worker):
    try:
        yield started
    finally:
        for w in started:
            w.stop()


def report_chats(api: FakeBotAPI) -> list[int]:
    return [int(c.params["chat_id"]) for c in api.calls_of("sendMessage")
            if c.ok and "ALVH report" in c.params["text"]]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_workers_send_each_report_once_and_answer_each_command_once(
        fake_api: FakeBotAPI, make_database_url):
    url = make_database_url("workers", migrated=True)
    chats = seed(url, 100)
    with workers(Worker(fake_api, url), Worker(fake_api, url)) as (a, b):
        a.wait_ready()
        b.wait_ready()
        wait_until(lambda: len(report_chats(fake_api)) >= 100, 60, "the round did not finish")
        users = list(range(7001, 7011))
        with httpx.Client(timeout=20) as client:
            for i, user in enumerate(users):  # the load balancer: alternate
                update = fake_api.inject_message(user, None, "/start", queue=False)
                worker = (a, b)[i % 2]
                assert client.post(worker.hook, json=update, headers={HEADER: SECRET}).is_success
        for user in users:
            fake_api.wait_for_messages(user, 1, timeout=30)
        assert fake_api.wait_idle(1.0, 30)
    assert sorted(report_chats(fake_api)) == chats  # every report, once
    assert all(len(fake_api.sent(user)) == 1 for user in users)  # every command, once


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_leader_killed_mid_round_the_standby_sends_the_rest_none_twice(
        fake_api: FakeBotAPI, make_database_url):
    users = 1500
    url = make_database_url("failover", migrated=True)
    chats = seed(url, users)
    with workers(Worker(fake_api, url, rate=100.0)) as (leader,):
        leader.wait_ready()
        wait_until(lambda: len(report_chats(fake_api)) >= 1, 60, "the leader never sent")
        with workers(Worker(fake_api, url, rate=100.0)) as (standby,):
            standby.wait_ready()
            wait_until(lambda: len(report_chats(fake_api)) >= users // 5, 60, "stalled")
            leader.proc.send_signal(signal.SIGKILL)  # mid-round, no clean-up
            leader.proc.wait(timeout=30)
            at_kill = len(report_chats(fake_api))
            # The standby takes the lock within LEADER_POLL_S of the session's end, then
            # its catch-up sends every report the dead leader had not claimed.
            wait_until(lambda: len(report_chats(fake_api)) >= users - CONCURRENT_SENDS, 120,
                       "the standby did not take over the round")
            assert fake_api.wait_idle(2.0, 60)
    sent = report_chats(fake_api)
    lost = sorted(set(chats) - set(sent))
    duplicates = len(sent) - len(set(sent))
    print(f"\n{users} reports: {at_kill} sent before SIGKILL, {len(set(sent))} in all, "
          f"{len(lost)} lost (claimed, unsent), {duplicates} twice")
    assert at_kill < users, "the kill came after the round: nothing was tested"
    assert duplicates == 0
    assert set(sent) <= set(chats)
    assert len(lost) <= CONCURRENT_SENDS  # the documented window
