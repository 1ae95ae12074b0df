"""Backup, export and import, through the `alvh db` command line as an operator runs them."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.cli import main
from bot.store import Conflict, HedgeInput, PositionInput, Store, ValidationError
from bot.store.tables import PositionRow, UserRow
from bot.store.transfer import dump_csv, dump_json, load

NOW = datetime(2026, 11, 25, 15, 30, 0, 123456, tzinfo=UTC)
ALICE, BOB = 111, 222
TRICKY = 'a,"b"\nc\r\n<b>&amp;</b> 🦅 \'; DROP TABLE users; --'


def _fill(store: Store) -> None:
    for tg in (ALICE, BOB):
        store.ensure_user(tg, -tg)
    store.update_settings(ALICE, param_overrides={"edr_trigger_pct": 1.02}, quiet_start="22:00",
                          quiet_end="06:00", timezone="Europe/London", report_chart=True)
    store.subscribe(ALICE)
    a = store.add_position(ALICE, PositionInput("SPX", date(2026, 12, 18), "4845", 4870.25, 5130,
                                                 5155, 3, 4.35, label=TRICKY, notes=TRICKY,
                                                 entry_delta=0.16))
    store.add_hedge(ALICE, a.id, HedgeInput("VIX_CALL_SPREAD", date(2026, 12, 16), 2, 1.15,
                                            strike=22, strike2=30))
    store.add_hedge(ALICE, None, HedgeInput("VIX_FUTURE", date(2026, 12, 16), 1, 18.25))
    store.add_position(BOB, PositionInput("XSP", date(2026, 12, 18), 480, 485, 515, 520, 1, 1.1))
    store.roll_position(ALICE, a.id, expiry=date(2027, 1, 15), k1=4800, k2=4825,
                        k3=5200, k4=5225, net_credit=-0.35)
    b = store.add_position(ALICE, PositionInput("SPXW", date(2026, 12, 4), 4900, 4925, 5100,
                                                5125, 1, 2.0))
    store.close_position(ALICE, b.id, 0.8)
    store.record_report(ALICE, date(2026, 11, 25), "morning")
    store.report_sent(ALICE, date(2026, 11, 25), "morning", ok=False, error="timeout, retrying")
    store.record_alert(ALICE, "edr:BREACHED:2026-11-25")


@pytest.fixture
def source(make_database_url):
    url = make_database_url("src")
    store = Store.open(url, clock=lambda: NOW)
    _fill(store)
    yield url, store
    store.close()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_import_export_is_identical(make_database_url, tmp_path, source, fmt, capsys):
    url, _ = source
    first = tmp_path / f"first.{fmt}"
    second = tmp_path / f"second.{fmt}"
    empty = make_database_url("empty")
    assert main(["db", "export", "--database-url", url, "--user", str(ALICE), "--format", fmt,
                 "--output", str(first)]) == 0
    assert main(["db", "import", "--database-url", empty, str(first)]) == 0
    assert main(["db", "export", "--database-url", empty, "--user", str(ALICE), "--format", fmt,
                 "--output", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    # and the restored book behaves like the original
    restored = Store.open(empty)
    (pos,) = restored.list_positions(ALICE)
    assert pos.label == TRICKY and pos.notes == TRICKY
    assert (pos.k2, pos.entry_credit, pos.roll_credits) == (Decimal("4825"), Decimal("4.35"),
                                                            Decimal("-0.35"))
    assert restored.get_settings(ALICE).param_overrides == {"edr_trigger_pct": 1.02}
    assert restored.record_report(ALICE, date(2026, 11, 25), "morning") is False
    assert restored.list_positions(BOB) == []  # only the exported user came across
    restored.close()
    # importing the same user twice is refused, not duplicated
    capsys.readouterr()
    assert main(["db", "import", "--database-url", empty, str(first)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_export_to_stdout_and_contents(source, capsys):
    url, _ = source
    assert main(["db", "export", "--database-url", url, "--user", str(ALICE)]) == 0
    data = json.loads(capsys.readouterr().out)
    tables = data["tables"]
    assert data["format"] == "alvh-store-export" and data["schema"] == "0007"
    assert [len(tables[t]) for t in ("users", "positions", "hedges", "rolls", "report_log",
                                     "alert_log")] == [1, 3, 2, 1, 1, 1]
    first = tables["positions"][0]
    assert (first["k1"], first["k2"], first["entry_credit"]) == ("4845", "4870.25", "4.35")
    assert first["opened_at"] == "2026-11-25T15:30:00.123456+00:00"
    assert tables["rolls"][0]["net_credit"] == "-0.35"
    assert tables["users"][0]["report_chart"] is True
    assert data == load(dump_csv(data)) == load(dump_json(data))


def test_import_refuses_bad_files(make_database_url, source):
    _, store = source
    data = store.export_user(ALICE)
    empty = Store.open(make_database_url("e"))
    with pytest.raises(ValidationError, match="not an ALVH store export"):
        load("hello,world\n")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load("{broken")
    bad = json.loads(json.dumps(data))
    bad["tables"]["positions"][0]["user_id"] = 99
    with pytest.raises(ValidationError, match="rows of another user"):
        empty.import_user(bad)
    bad = json.loads(json.dumps(data))
    bad["tables"]["positions"][0]["k1"] = "lots"
    with pytest.raises(ValidationError, match="could not be read"):
        empty.import_user(bad)
    bad = json.loads(json.dumps(data))
    bad["tables"]["positions"][0]["opened_at"] = "2026-11-25T15:30:00"
    with pytest.raises(ValidationError, match="has no UTC offset"):
        empty.import_user(bad)
    bad = json.loads(json.dumps(data))
    bad["tables"]["positions"][0]["k1"] = "6000"  # breaks the strike order
    with pytest.raises(ValidationError, match="refused"):
        empty.import_user(bad)
    assert empty.count(UserRow) == empty.count(PositionRow) == 0  # nothing half-imported
    empty.import_user(data)
    with pytest.raises(Conflict):
        empty.import_user(data)
    empty.close()


def test_exports_from_before_the_chart_setting_still_import(make_database_url, source):
    """Revision 0004 added users.report_chart: an older export (JSON without the key, CSV
    without the column) imports with the chart off; any other missing column is refused."""
    _, store = source
    data = store.export_user(ALICE)
    old = json.loads(json.dumps(data))
    del old["tables"]["users"][0]["report_chart"]
    old["schema"] = "0003"
    into_json = Store.open(make_database_url("j"))
    into_json.import_user(load(dump_json(old)))
    assert into_json.get_settings(ALICE).report_chart is False
    assert into_json.get_settings(ALICE).timezone == "Europe/London"
    into_json.close()

    lines = dump_csv(data).split("\n")
    header = lines.index("#table,users") + 1
    names = lines[header].split(",")
    col = names.index("report_chart")
    for i in (header, header + 1):  # the header and ALICE's row
        cells = lines[i].split(",")
        lines[i] = ",".join(cells[:col] + cells[col + 1:])
    into_csv = Store.open(make_database_url("c"))
    into_csv.import_user(load("\n".join(lines)))
    assert into_csv.get_settings(ALICE).report_chart is False
    into_csv.close()

    tz = names.index("timezone")
    lines[header] = ",".join(c for k, c in enumerate(lines[header].split(",")) if k != tz)
    with pytest.raises(ValidationError, match="columns of users do not match"):
        load("\n".join(lines))


def test_entry_delta_travels_with_export_and_roll(make_database_url, source):
    """Revision 0006: a position's entry delta is exported, imported, carried by a roll; an
    export from before it (no entry_delta) imports with none (the user's setting applies)."""
    _, store = source
    data = store.export_user(ALICE)
    deltas = [r["entry_delta"] for r in data["tables"]["positions"]]
    assert deltas == [0.16, 0.16, None]  # Alice's condor, the condor it rolled into, the SPXW
    into = Store.open(make_database_url("d"))
    into.import_user(load(dump_json(data)))
    assert [p.entry_delta for p in into.core_positions(ALICE)] == [0.16]
    into.close()
    into_old = _imported_without(make_database_url, data, "positions", "entry_delta", "0005")
    assert [p.entry_delta for p in into_old.core_positions(ALICE)] == [None]
    into_old.close()


def _imported_without(make_database_url, data: dict, table: str, column: str,
                      schema: str) -> Store:
    """`data` as an export from before `column` existed (revision `schema`), imported afresh."""
    old = json.loads(json.dumps(data))
    for row in old["tables"][table]:
        del row[column]
    old["schema"] = schema
    into = Store.open(make_database_url(f"before-{column}"))
    into.import_user(load(dump_json(old)))
    return into


def test_contracts_sold_from_a_line_travel_with_export(make_database_url, source):
    """Revision 0007: a line's qty_sold is exported and imported; an export from before it
    (no qty_sold) imports with none sold."""
    _, store = source
    store.add_hedge(ALICE, None, HedgeInput("VIX_CALL", date(2026, 12, 16), 4, 0.9, strike=22))
    (_future, calls) = store.list_hedges(ALICE, None, book_only=True)
    store.close_hedge(ALICE, calls.id, "1.50", qty=2)
    data = store.export_user(ALICE)
    sold = sorted((r["qty"], r["qty_sold"], r["status"]) for r in data["tables"]["hedges"])
    assert (2, 2, "open") in sold and (2, 0, "closed") in sold
    into = Store.open(make_database_url("q"))
    into.import_user(load(dump_json(data)))
    assert sorted(h.qty_sold for h in into.book_hedges(ALICE)) == [0, 2]
    into.close()
    into_old = _imported_without(make_database_url, data, "hedges", "qty_sold", "0006")
    assert [h.qty_sold for h in into_old.book_hedges(ALICE)] == [0, 0]
    into_old.close()


@pytest.mark.sqlite_only  # SQLite's online backup API; PostgreSQL: the pg_dump test below
def test_backup_while_writing(tmp_path, source, capsys):
    url, store = source
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            while not stop.is_set():
                store.add_position(BOB, PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130,
                                                      5155, 1, 3.0))
        except BaseException as err:  # asserted below
            errors.append(err)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = [tmp_path / "backups" / f"b{i}.db" for i in range(2)]
        for copy in copies:
            assert main(["db", "backup", "--database-url", url, str(copy)]) == 0
    finally:
        stop.set()
        thread.join()
    assert errors == []
    for copy in copies:
        con = sqlite3.connect(copy)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        positions = con.execute("SELECT count(*) FROM positions").fetchone()[0]
        audited = con.execute("SELECT count(*) FROM audit_log WHERE action = 'position.add'"
                              ).fetchone()[0]
        assert positions == audited  # a consistent cut: every row with its audit entry
        con.close()
    restored = Store.open(f"sqlite:///{copies[-1]}")
    assert restored.list_positions(ALICE)[0].label == TRICKY
    restored.close()


def test_cli_errors_are_one_line(make_database_url, tmp_path, capsys):
    url = make_database_url("x")
    assert main(["db", "migrate", "--database-url", url]) == 0
    assert "revision 0007" in capsys.readouterr().out
    assert main(["db", "export", "--database-url", url, "--user", "5"]) == 1
    err = capsys.readouterr().err
    assert err == "error: no user with Telegram id 5 in this database\n"
    assert main(["db", "import", "--database-url", url, str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err.startswith("error: No such file")


@pytest.mark.postgres_only
def test_backup_on_postgresql_names_the_pg_dump_command_and_it_works(
        make_database_url, tmp_path, source, capsys):
    """`alvh db backup` cannot copy a server's database: it prints the pg_dump command to run;
    run as printed (with the pgserver wheel's client), it restores the book into a new
    database."""
    import shlex
    import subprocess

    from pgtest import pg_bindir

    url, _ = source
    dump = tmp_path / "alvh.dump"
    assert main(["db", "backup", "--database-url", url, str(dump)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: backup copies an SQLite file; on PostgreSQL run pg_dump")
    command = shlex.split(err.split(" run ", 1)[1].split(" (restore:")[0])
    subprocess.run([str(pg_bindir() / command[0]), *command[1:]], check=True)
    target = make_database_url("restored")
    plain = target.replace("+psycopg", "")
    subprocess.run([str(pg_bindir() / "pg_restore"), "--no-owner", "--dbname", plain,
                    str(dump)], check=True)
    restored = Store.open(target)
    assert restored.list_positions(ALICE)[0].label == TRICKY
    assert restored.get_settings(ALICE).param_overrides == {"edr_trigger_pct": 1.02}
    restored.add_position(BOB, PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130, 5155,
                                             1, 3.0))  # and the sequences came along
    restored.close()


def test_import_advances_the_id_sequences(make_database_url, source):
    """After `alvh db import` the next row gets a new id: on PostgreSQL the rows came in with
    their ids, the sequences stayed at 1, and the next write failed with "Conflict: that
    record already exists"."""
    _, store = source
    data = store.export_user(ALICE)
    target = Store.open(make_database_url("imported"), clock=lambda: NOW)
    target.import_user(data)
    before = {p.id for p in target.list_positions(ALICE, status=None)}
    added = target.add_position(ALICE, PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130,
                                                     5155, 1, 3.0))
    assert added.id not in before and added.id > max(before)
    target.ensure_user(BOB + 1, BOB + 1)  # users, hedges, audit rows: every table moves on
    target.add_hedge(ALICE, added.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.0,
                                                 strike=22))
    assert target.record_report(ALICE, date(2026, 11, 26), "morning") is True
    target.record_alert(ALICE, "edr:CALM:2026-11-26")
    target.close()
