"""Backup, export and import.

`backup` copies the live SQLite file with SQLite's online backup API (consistent while the bot
writes). `export_user` gives one user's rows in canonical plain values (see `serialize`);
`dump_json`/`dump_csv` write them, `load` reads either back, and `import_user` restores them
with their ids (moving PostgreSQL's id sequences past them), so export → import into an empty
database → export gives identical bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Engine, Float, Integer, Table, exc, insert, select, text

from bot.store.engine import sqlite_path
from bot.store.errors import Conflict, NotFound, StoreError, ValidationError, integrity_error
from bot.store.migrate import head_revision
from bot.store.serialize import from_plain, to_plain
from bot.store.tables import (
    AlertLogRow,
    AuditRow,
    HedgeRow,
    PositionRow,
    ReportLogRow,
    RollRow,
    UserRow,
)

EXPORT_FORMAT = "alvh-store-export"
EXPORT_VERSION = 1
# Parent rows before the rows that refer to them.
USER_TABLES: tuple[Table, ...] = tuple(t.__table__ for t in (
    UserRow, PositionRow, HedgeRow, RollRow, AuditRow, ReportLogRow, AlertLogRow))
_BY_NAME = {t.name: t for t in USER_TABLES}
# Columns added after exports already existed, with what their absence in an older export
# means (revision 0004: no chart with the report). Any other missing value stays an error.
LATER_COLUMNS: dict[str, dict[str, Any]] = {"users": {"report_chart": False},
                                            # revision 0006: no per-position entry delta
                                            "positions": {"entry_delta": None},
                                            # revision 0007: no contracts sold from a line
                                            "hedges": {"qty_sold": 0}}


def backup(engine: Engine, path: str | Path) -> Path:
    """Copy the database to `path` (replaced atomically), then verify the copy."""
    if sqlite_path(str(engine.url)) is None:
        raise StoreError(pg_dump_guidance(engine, path))
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.unlink(missing_ok=True)
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(partial)
        try:
            raw.driver_connection.backup(target)
            verdict = target.execute("PRAGMA integrity_check").fetchone()[0]
            # One self-contained file: no -wal/-shm companions needed to read the copy.
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
    finally:
        raw.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise StoreError(f"the backup copy failed its integrity check: {verdict}")
    os.replace(partial, path)
    return path


def pg_dump_guidance(engine: Engine, path: str | Path) -> str:
    """What to run instead on PostgreSQL: pg_dump takes a consistent snapshot while the bot
    writes, and its custom format restores with pg_restore (docs/operations.md)."""
    url = engine.url.set(drivername="postgresql")
    shown = url.render_as_string(hide_password=True).replace("***", "<password>")
    return ("backup copies an SQLite file; on PostgreSQL run "
            f"pg_dump --format=custom --file {path} '{shown}' "
            f"(restore: pg_restore --clean --if-exists --dbname '<url>' {path})")


def export_user(engine: Engine, tg_user_id: int) -> dict[str, Any]:
    """Every row that belongs to the user, table by table, ordered by id."""
    with engine.connect() as conn:
        user = conn.execute(select(UserRow.__table__).where(
            UserRow.__table__.c.tg_user_id == tg_user_id)).mappings().first()
        if user is None:
            raise NotFound(f"no user with Telegram id {tg_user_id} in this database")
        tables: dict[str, list[dict[str, Any]]] = {}
        for table in USER_TABLES:
            key = table.c.id if table.name == "users" else table.c.user_id
            rows = conn.execute(select(table).where(key == user["id"]).order_by(table.c.id))
            tables[table.name] = [{c.name: to_plain(r[c.name]) for c in table.columns}
                                  for r in rows.mappings()]
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "schema": head_revision(),
            "tables": tables}


def dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def dump_csv(data: dict[str, Any]) -> str:
    """One CSV file: a header line, then per table a `#table` line, its column names and rows.
    Empty cells are NULL (no nullable text column ever holds an empty string)."""
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow([f"#{EXPORT_FORMAT}", data["version"], data["schema"]])
    for table in USER_TABLES:
        w.writerow(["#table", table.name])
        names = [c.name for c in table.columns]
        w.writerow(names)
        for row in data["tables"][table.name]:
            w.writerow([_csv_cell(row[n]) for n in names])
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load(text: str) -> dict[str, Any]:
    """An export (JSON or CSV, told apart by its first character) as plain data."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValidationError([f"not valid JSON: {err}"], "import") from None
    else:
        data = _load_csv(text)
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ValidationError(["this file is not an ALVH store export"], "import")
    if data.get("version") != EXPORT_VERSION:
        raise ValidationError([f"export version {data.get('version')!r} is not supported "
                               f"(expected {EXPORT_VERSION})"], "import")
    return data


def _load_csv(text: str) -> dict[str, Any]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or len(rows[0]) != 3 or rows[0][0] != f"#{EXPORT_FORMAT}":
        raise ValidationError(["this file is not an ALVH store export"], "import")
    tables: dict[str, list[dict[str, Any]]] = {}
    i = 1
    while i < len(rows):
        if len(rows[i]) != 2 or rows[i][0] != "#table" or rows[i][1] not in _BY_NAME:
            raise ValidationError([f"line {i + 1}: expected '#table,<name>'"], "import")
        table = _BY_NAME[rows[i][1]]
        header = rows[i + 1] if i + 1 < len(rows) else []
        later = LATER_COLUMNS.get(table.name, {})
        # An older export lacks the later columns; nothing else may differ.
        expected = [c.name for c in table.columns]
        if header != expected and header != [n for n in expected if n not in later]:
            raise ValidationError([f"line {i + 2}: columns of {table.name} do not match"],
                                  "import")
        columns = [table.c[n] for n in header]
        i += 2
        records = tables.setdefault(table.name, [])
        while i < len(rows) and not (rows[i] and rows[i][0] == "#table"):
            if len(rows[i]) != len(header):
                raise ValidationError([f"line {i + 1}: expected {len(header)} cells"], "import")
            records.append({c.name: _csv_value(c, v) for c, v in zip(columns, rows[i],
                                                                        strict=True)})
            i += 1
    version = int(rows[0][1]) if rows[0][1].isdigit() else rows[0][1]
    return {"format": EXPORT_FORMAT, "version": version, "schema": rows[0][2],
            "tables": tables}


def _csv_value(column, cell: str) -> Any:
    """A CSV cell as the plain value JSON would hold (ints, bools and floats typed)."""
    if cell == "" and column.nullable:
        return None
    kind = column.type
    try:
        if isinstance(kind, Boolean):
            return {"true": True, "false": False}[cell]
        if isinstance(kind, Float):
            return float(cell)
        if isinstance(kind, Integer):
            return int(cell)
    except (KeyError, ValueError):
        raise ValidationError([f"{column.table.name}.{column.name}: cannot read {cell!r}"],
                              "import") from None
    return cell


def import_user(engine: Engine, data: dict[str, Any]) -> int:
    """Restore one exported user with the original ids; returns the Telegram user id.

    Refuses (Conflict) when the user already exists or an id is taken: import restores into a
    database that does not hold this user yet (a fresh file, or a move between servers).
    """
    tables = data.get("tables")
    if not isinstance(tables, dict):
        raise ValidationError(["the export has no tables"], "import")
    users = tables.get("users") or []
    if len(users) != 1:
        raise ValidationError(["an export holds exactly one user"], "import")
    parsed: dict[str, list[dict[str, Any]]] = {}
    try:
        for table in USER_TABLES:
            later = LATER_COLUMNS.get(table.name, {})
            parsed[table.name] = [
                {c.name: from_plain(c, row.get(c.name, later.get(c.name)))
                 for c in table.columns}
                for row in tables.get(table.name) or []
            ]
    except (ValueError, KeyError, TypeError, ArithmeticError) as err:
        raise ValidationError([f"a value could not be read: {err}"], "import") from None
    user = parsed["users"][0]
    for name, rows in parsed.items():
        if name != "users" and any(r["user_id"] != user["id"] for r in rows):
            raise ValidationError([f"{name} holds rows of another user"], "import")
    try:
        _insert_all(engine, parsed, user)
    except exc.IntegrityError as err:
        raise integrity_error(err) from err
    return user["tg_user_id"]


def _insert_all(engine: Engine, parsed: dict[str, list[dict[str, Any]]],
                user: dict[str, Any]) -> None:
    with engine.connect() as conn:
        conn.execution_options(sqlite_write=True)
        with conn.begin():
            users_t = UserRow.__table__
            if conn.execute(select(users_t.c.id).where(
                    users_t.c.tg_user_id == user["tg_user_id"])).first():
                raise Conflict(f"user {user['tg_user_id']} already exists in this database")
            for table in USER_TABLES:
                rows = parsed[table.name]
                ids = [r["id"] for r in rows]
                if ids and conn.execute(select(table.c.id).where(table.c.id.in_(ids))).first():
                    raise Conflict(f"ids in {table.name} are already taken: import into a "
                                   "database that does not hold them")
                if rows:
                    conn.execute(insert(table), rows)
            if conn.dialect.name == "postgresql":
                _advance_sequences(conn)


def _advance_sequences(conn) -> None:
    """Rows came in with their ids, past PostgreSQL's id sequences: move each sequence to the
    table's highest id, or the next insert collides ("that record already exists"). SQLite
    takes max(id) + 1 by itself."""
    for table in USER_TABLES:
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
            f"GREATEST((SELECT max(id) FROM {table.name}), 1))"))
