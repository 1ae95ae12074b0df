"""One scheduler among bot processes sharing a database (bot/store/leader.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store import Store

REPO = Path(__file__).resolve().parents[1]
TAKEOVER_LIMIT_S = 30  # a generous bound for a loaded machine (the job polls every 15 s)

LEADER_CHILD = """
import sys, time
from bot.store import Store
store = Store.open(sys.argv[1])
print(store.leadership().try_acquire(), flush=True)
time.sleep(600)
"""


@pytest.mark.sqlite_only  # a single process is assumed there
def test_on_sqlite_every_process_leads(make_database_url):
    url = make_database_url("solo")
    a, b = Store.open(url), Store.open(url)
    assert a.leadership().try_acquire() and b.leadership().try_acquire()
    a.close()
    b.close()


@pytest.mark.postgres_only
def test_one_leader_and_a_clean_handover(make_database_url):
    url = make_database_url("two")
    other = make_database_url("other")
    a, b, c = Store.open(url), Store.open(url), Store.open(other)
    assert a.leadership().try_acquire() is True
    assert b.leadership().try_acquire() is False
    assert a.leadership().try_acquire() is True  # still ours
    assert c.leadership().try_acquire() is True  # another database: its own leader
    a.close()  # a stopping leader releases at once
    assert b.leadership().try_acquire() is True
    b.close()
    c.close()


@pytest.mark.postgres_only
@pytest.mark.timeout(120)
def test_a_killed_leader_is_replaced(make_database_url):
    url = make_database_url("killed")
    Store.open(url).close()  # migrated before the child starts
    child = subprocess.Popen([sys.executable, "-c", LEADER_CHILD, url], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "True", child.stderr.read()
        standby = Store.open(url)
        assert standby.leadership().try_acquire() is False
        os.kill(child.pid, signal.SIGKILL)  # no clean-up: the database notices the session end
        child.wait(timeout=30)
        deadline = time.monotonic() + TAKEOVER_LIMIT_S
        while not standby.leadership().try_acquire():
            assert time.monotonic() < deadline, "the standby never took over"
            time.sleep(0.2)
        standby.close()
    finally:
        if child.poll() is None:
            child.kill()
