"""Many writers at once (threads and processes), and a writer killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from bot.store import PositionInput, Store
from bot.store.migrate import migrate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
THREADS, WRITES_PER_THREAD = 20, 25

CHILD = r"""
import sys
from datetime import date
from bot.store import PositionInput, Store

url, tg, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = Store.open(url, migrate=False)
store.ensure_user(tg, tg)
for i in range(count):
    row = store.add_position(tg, PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130,
                                               5155, 1, 3.0, label=f"{tg}-{i}"))
    print(row.id, flush=True)  # only after the commit returned
"""


def _condor(label: str) -> PositionInput:
    return PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130, 5155, 1, 3.0, label=label)


def _child(url: str, tg: int, count: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, url, str(tg), str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=PROJECT_ROOT)


def _run_threads(target, n):
    errors: list[BaseException] = []

    def guarded(i):
        try:
            target(i)
        except BaseException as err:  # collected and asserted in the test
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_many_threads_write_at_once(make_database_url):
    store = Store.open(make_database_url("alvh"))
    users = [1000 + i for i in range(THREADS)]
    _run_threads(lambda i: store.ensure_user(users[i], users[i]), THREADS)

    def writer(i):
        for j in range(WRITES_PER_THREAD):
            store.add_position(users[i], _condor(f"{i}-{j}"))

    _run_threads(writer, THREADS)
    labels = Counter()
    ids = []
    for tg in users:
        rows = store.list_positions(tg)
        assert len(rows) == WRITES_PER_THREAD
        labels.update(r.label for r in rows)
        ids += [r.id for r in rows]
    assert len(ids) == len(set(ids)) == THREADS * WRITES_PER_THREAD
    assert set(labels.values()) == {1} and len(labels) == THREADS * WRITES_PER_THREAD
    # each write carried its audit entry with it
    assert sum(len(store.audit_trail(tg, limit=1000)) for tg in users) == \
        THREADS * (WRITES_PER_THREAD + 1)
    store.close()


def test_racing_report_claims_yield_exactly_one_sender(make_database_url):
    store = Store.open(make_database_url("alvh"))
    store.ensure_user(7, 7)
    results: list[bool] = []
    lock = threading.Lock()

    def claim(_):
        won = store.record_report(7, date(2026, 11, 25), "morning")
        alert = store.record_alert(7, "edr:BREACHED")
        with lock:
            results.append((won, alert))

    _run_threads(claim, 16)
    assert sum(r[0] for r in results) == 1 and sum(r[1] for r in results) == 1
    assert len(store.reports(7)) == 1
    store.close()


def test_several_processes_write_at_once(make_database_url):
    url = make_database_url("alvh")
    migrate(url)
    procs = [_child(url, 500 + i, 20) for i in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
    printed = [int(x) for out, _ in outs for x in out.split()]
    store = Store.open(url)
    stored = [r.id for tg in (500, 501, 502) for r in store.list_positions(tg)]
    assert sorted(printed) == sorted(stored) and len(set(stored)) == 60
    store.close()


@pytest.mark.sqlite_only  # PostgreSQL's own crash safety is not ours to test
@pytest.mark.timeout(120)
def test_sigkill_mid_burst_leaves_a_consistent_file(tmp_path):
    path = tmp_path / "alvh.db"
    url = f"sqlite:///{path}"
    migrate(url)
    proc = _child(url, 42, 100_000)
    committed: list[int] = []
    for line in proc.stdout:
        committed.append(int(line))
        if len(committed) >= 60:
            break
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    committed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    stored = {r[0] for r in con.execute("SELECT id FROM positions")}
    assert set(committed) <= stored
    assert len(stored) - len(committed) <= 1  # at most the one committed but not yet printed
    # no half-written change: every position arrived together with its audit entry
    audited = {r[0] for r in con.execute(
        "SELECT entity_id FROM audit_log WHERE action = 'position.add'")}
    assert audited == stored
    con.close()
    store = Store.open(url)  # and it opens and writes normally afterwards
    store.add_position(42, _condor("after"))
    assert len(store.list_positions(42)) == len(stored) + 1
    store.close()


@pytest.mark.sqlite_only  # SQLite's file lock and busy timeout
def test_a_long_lock_is_a_clear_error_and_a_short_one_is_waited_out(tmp_path, monkeypatch):
    import bot.store.engine as engine_module
    from bot.store import StoreError

    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(engine_module, "LOCKED_RETRIES", 1)
    path = tmp_path / "alvh.db"
    store = Store.open(f"sqlite:///{path}")
    store.ensure_user(9, 9)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError, match="busy right now"):
        store.add_position(9, _condor("blocked"))
    # released 0.1 s later, while the writer is inside its busy wait or retry: it goes through
    timer = threading.Timer(0.1, lambda: blocker.execute("COMMIT"))
    timer.start()
    store.add_position(9, _condor("waited"))
    timer.join()
    blocker.close()
    assert [r.label for r in store.list_positions(9)] == ["waited"]
    store.close()
