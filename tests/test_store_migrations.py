"""Alembic migrations on real databases (SQLite files; PostgreSQL with ALVH_TEST_PG=1): from
empty, from 0001 with data, concurrently (threads and processes)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.store import Store
from bot.store.engine import make_engine
from bot.store.migrate import current_revision, head_revision, migrate
from bot.store.tables import METADATA

REPO = Path(__file__).resolve().parents[1]
TABLES_0001 = ("users", "positions", "hedges", "rolls", "audit_log", "report_log",
               "edr_readings")


def test_from_empty_reaches_head_and_matches_the_models(tmp_path, monkeypatch, database_url):
    monkeypatch.chdir(tmp_path)  # scripts are found by package path, not the working directory
    engine = make_engine(database_url)
    assert migrate(engine) == head_revision() == "0007"
    names = set(inspect(engine).get_table_names())
    assert set(TABLES_0001) | {"alert_log", "alembic_version"} == names
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                 METADATA)
    assert diffs == []
    assert migrate(engine) == "0007"  # a second run is a no-op
    engine.dispose()


@pytest.mark.sqlite_only
def test_pragmas_wal_foreign_keys_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'alvh.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()


def _snapshot(target, tables):
    """Column names and rows of `tables` (a file path for SQLite, else a URL)."""
    engine = make_engine(target if "://" in str(target) else f"sqlite:///{target}")
    out = {}
    try:
        with engine.connect() as conn:
            for t in tables:
                cols = [c["name"] for c in inspect(conn).get_columns(t)]
                rows = conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY id")
                out[t] = (cols, [tuple(r) for r in rows])
    finally:
        engine.dispose()
    return out


@pytest.mark.sqlite_only  # the 0001 rows are written as SQLite stored them
def test_upgrade_from_0001_keeps_every_row(tmp_path):
    path = tmp_path / "old.db"
    assert migrate(f"sqlite:///{path}", "0001") == "0001"
    con = sqlite3.connect(path)
    con.executescript("""
        INSERT INTO users VALUES (1, 1001, 1001, 'Europe/London', '07:30', 1, '22:00', '06:00',
            '{"edr_trigger_pct": 1.0}', 1, '2026-01-02 10:00:00.000000',
            '2026-01-03 11:00:00.000000');
        INSERT INTO users VALUES (2, 2002, -100200, 'America/New_York', '08:45', 0, NULL, NULL,
            '{}', 0, '2026-01-02 10:00:00.000000', '2026-01-02 10:00:00.000000');
        INSERT INTO positions VALUES (1, 1, 'SPX', '2026-02-20', 4845, 4870, 5130, 5155, 2,
            4.35, 0, '<b>Feb</b> 🦅 & co', 'rolled', '2026-01-05', '2026-01-05 15:00:00.000000',
            '2026-01-20 15:00:00.000000', NULL, NULL, NULL, NULL);
        INSERT INTO positions VALUES (2, 1, 'SPX', '2026-03-20', 4800, 4825, 5200, 5225, 2,
            4.35, 1.2, '<b>Feb</b> 🦅 & co', 'open', '2026-01-20', '2026-01-20 15:00:00.000000',
            NULL, NULL, NULL, 1, NULL);
        INSERT INTO positions VALUES (3, 2, 'XSP', '2026-02-27', 480.5, 485, 515, 519.5, 10,
            1.05, 0, '', 'closed', '2026-01-06', '2026-01-06 15:00:00.000000',
            '2026-01-09 15:00:00.000000', 0.4, 650.0, NULL, NULL);
        INSERT INTO hedges VALUES (1, 1, 2, 'VIX_CALL_SPREAD', 'L2', '2026-02-18', 22, 30, 3,
            1.15, 'open', '2026-01-20 15:05:00.000000', NULL, NULL, NULL, NULL);
        INSERT INTO hedges VALUES (2, 1, NULL, 'VIX_FUTURE', 'L1', '2026-02-18', NULL, NULL, 1,
            18.25, 'closed', '2026-01-20 15:05:00.000000', '2026-01-25 15:05:00.000000',
            19.5, 1250, NULL);
        INSERT INTO rolls VALUES (1, 1, 1, 2, 1.2, '2026-01-20 15:00:00.000000');
        INSERT INTO audit_log VALUES (1, 1, 'position.add', 'position', 1, NULL, '{"id": 1}',
            '2026-01-05 15:00:00.000000');
        INSERT INTO report_log VALUES (1, 1, '2026-01-05', 'morning',
            '2026-01-05 13:45:00.000000');
        INSERT INTO edr_readings VALUES (1, '2026-01-05', 0.9432, 'BREACHED', 'cboe',
            '2026-01-05 21:20:00.000000');
    """)
    con.commit()
    con.close()
    before = _snapshot(path, TABLES_0001)

    store = Store.open(f"sqlite:///{path}")  # opening migrates to head
    assert current_revision(store.engine) == "0007"
    after = _snapshot(path, TABLES_0001)
    for table, (cols, rows) in before.items():
        new_cols, new_rows = after[table]
        idx = [new_cols.index(c) for c in cols]
        assert [tuple(r[i] for i in idx) for r in new_rows] == rows, table

    # The new columns got their defaults; 0001's reports were sent when recorded.
    con = sqlite3.connect(path)
    assert con.execute("SELECT notes FROM positions").fetchall() == [("",)] * 3
    assert con.execute("SELECT delivery_status, sent_at = recorded_at, attempts "
                       "FROM report_log").fetchall() == [("sent", 1, 1)]
    assert con.execute("SELECT count(*) FROM alert_log").fetchone() == (0,)
    # 0004: users from before the chart setting do not get the chart with their report
    assert con.execute("SELECT tg_user_id, report_chart FROM users ORDER BY id").fetchall() == [
        (1001, 0), (2002, 0)]
    # 0005: a reading from before the closes were kept has them unknown
    assert con.execute("SELECT spx, vix, vix9d, vix3m, vvix FROM edr_readings").fetchall() == [
        (None,) * 5]
    # 0006: positions from before the per-position entry delta use the user's setting (NULL)
    assert con.execute("SELECT entry_delta FROM positions").fetchall() == [(None,)] * 3
    # 0007: lines from before partial sales were recorded had none sold
    assert con.execute("SELECT qty, qty_sold FROM hedges ORDER BY id").fetchall() == [
        (3, 0), (1, 0)]
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()

    # And the store reads the old rows exactly.
    pos = store.get_position(1001, 2)
    assert (pos.k1, pos.entry_credit, pos.roll_credits) == (Decimal("4800"), Decimal("4.35"),
                                                            Decimal("1.2"))
    assert pos.label == "<b>Feb</b> 🦅 & co" and pos.parent_id == 1
    assert store.get_position(2002, 3).k1 == Decimal("480.5")
    assert [h.id for h in store.list_hedges(1001, 2)] == [1]
    core = store.core_positions(1001)
    assert [p.id for p in core] == [2] and core[0].net_credit == 4.35 + 1.2
    assert core[0].hedges[0].strike2 == 30.0
    settings = store.get_settings(1001)
    assert settings.param_overrides == {"edr_trigger_pct": 1.0}
    assert (settings.quiet_start, settings.quiet_end) == ("22:00", "06:00")
    assert settings.report_chart is False
    assert store.update_settings(1001, report_chart=True).report_chart is True
    # The 0001 report still blocks a second send of that session.
    assert store.record_report(1001, date(2026, 1, 5), "morning") is False
    store.close()


def test_concurrent_start_ups_migrate_once(make_database_url):
    """Several processes starting on one new database at once (here threads, each its own
    engine): all end at head. Switching a new SQLite file to WAL is the racy step, so several
    fresh databases."""
    for round_no in range(5):
        url = make_database_url(f"fresh{round_no}")
        results, errors = [], []

        def start(url=url, results=results, errors=errors):
            try:
                results.append(migrate(url))
            except Exception as err:  # collected, asserted below
                errors.append(err)

        threads = [threading.Thread(target=start) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and results == ["0007"] * 6


MIGRATE_CHILD = """
import sys, time
from bot.store.migrate import migrate
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))  # every child starts its upgrade at once
print(migrate(sys.argv[1]), flush=True)
"""


def test_concurrent_start_up_processes_migrate_once(make_database_url):
    """Four bot processes starting on one new database: on PostgreSQL without a lock around
    the runner, one won and three crashed with UniqueViolation (pg_type_typname_nsp_index)."""
    for round_no in range(2):
        url = make_database_url(f"procs{round_no}")
        start_at = time.time() + 2.0  # after every interpreter has imported the store
        procs = [subprocess.Popen([sys.executable, "-c", MIGRATE_CHILD, url, str(start_at)],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, [err[-1500:] for _, err in outs]
        assert [out.strip() for out, _ in outs] == ["0007"] * 4


def test_downgrade_to_0001_and_back_keeps_the_book(database_url):
    from bot.store import HedgeInput, PositionInput
    from bot.store.migrate import downgrade

    url = database_url
    store = Store.open(url)
    store.ensure_user(5, 5)
    store.update_settings(5, report_chart=True)  # dropped at 0003, false again after
    pos = store.add_position(5, PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130, 5155,
                                              1, 4.35, label="keep me", notes="dropped at 0001"))
    store.add_hedge(5, pos.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.2, strike=22))
    store.record_report(5, date(2026, 11, 25), "premarket")
    store.report_skipped(5, date(2026, 11, 25), "premarket", "after the open")
    store.record_edr_reading(date(2026, 11, 24), 1.0646, "BREACHED", "VIX", vix=16.9, spx=6800)
    closes = ["spx", "vix", "vix9d", "vix3m", "vvix"]
    assert downgrade(store.engine, "0004") == "0004"
    cols, rows = _snapshot(url, ("edr_readings",))["edr_readings"]
    assert not set(closes) & set(cols) and [r[cols.index("edr_pct")] for r in rows] == [1.0646]
    assert migrate(store.engine) == "0007"
    [reading] = store.edr_readings()
    assert (reading.edr_pct, reading.vix, reading.spx) == (1.0646, None, None)  # back unknown
    before = _snapshot(url, ("users", "hedges", "rolls", "edr_readings"))
    assert downgrade(store.engine, "0003") == "0003"
    assert "report_chart" not in _snapshot(url, ("users",))["users"][0]
    assert downgrade(store.engine, "0001") == "0001"
    assert migrate(store.engine) == "0007"
    after = _snapshot(url, ("users", "hedges", "rolls", "edr_readings"))
    chart = before["users"][0].index("report_chart")
    assert [r[chart] for r in after["users"][1]] == [0]  # the dropped setting comes back off
    assert {t: v for t, v in after.items() if t != "users"} == {
        t: v for t, v in before.items() if t != "users"}
    assert [r[:chart] + r[chart + 1:] for r in after["users"][1]] == [
        r[:chart] + r[chart + 1:] for r in before["users"][1]]
    got = store.get_position(5, pos.id)
    assert (got.label, got.entry_credit, got.notes) == ("keep me", Decimal("4.35"), "")
    store.close()
