"""One SQLAlchemy Engine per database, configured for safe concurrent use.

SQLite: WAL journal (readers never block the writer), foreign keys ON, a busy timeout, and
write transactions opened with `BEGIN IMMEDIATE` so two writers queue on the lock instead of
one failing half-way with "database is locked" when it upgrades a read lock.
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from bot.paths import data_dir, in_data_dir

# A relative SQLite path is a file in the data folder (bot/paths.py): by default alvh.db there.
DEFAULT_DATABASE_URL = "sqlite:///alvh.db"
DATABASE_URL_ENV = "DATABASE_URL"

SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for the lock before failing
# FULL: a committed row survives a power cut as well as a killed process (a ledger, not a cache).
SQLITE_SYNCHRONOUS = "FULL"
LOCKED_RETRIES = 5  # whole-transaction retries after the busy timeout ran out
LOCKED_BACKOFF_S = 0.05  # first pause between retries; doubles each time

# SQLite has no DECIMAL: SQLAlchemy stores Numeric(12, 4) as a float and rounds it back to 4
# places on the way out, which is exact for every value of that scale (see coltypes.Money).
warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support Decimal")

T = TypeVar("T")


def database_url(env: dict[str, str] | None = None) -> str:
    """DATABASE_URL from the environment, else from `.env` (the current directory's, else the
    data folder's), else the default."""
    if env is None:
        env = dict(os.environ)
    url = (env.get(DATABASE_URL_ENV) or "").strip()
    if not url:
        for folder in (Path.cwd(), data_dir(env, create=False)):
            if (folder / ".env").is_file():
                url = (dotenv_values(folder / ".env").get(DATABASE_URL_ENV) or "").strip()
                break
    return url or DEFAULT_DATABASE_URL


def resolve_url(url: str) -> str:
    """Make a relative SQLite path absolute in the data folder and create its directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = in_data_dir(parsed.database)
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(resolve_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    url = resolve_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    in_memory = not parsed.database or parsed.database == ":memory:"
    kwargs: dict = {"connect_args": {"check_same_thread": False}}
    if in_memory:  # one shared connection, or every session would see its own empty database
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            _ensure_wal(cur)
        cur.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _ensure_wal(cur) -> None:
    """Switch a file to WAL once. Switching needs an exclusive lock, and SQLite answers "locked"
    at once, without its busy handler, when another connection opens the same new file at the
    same moment; so wait and retry here, within the busy timeout."""
    pause, waited = 0.005, 0.0
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err).lower() or waited * 1000 >= SQLITE_BUSY_TIMEOUT_MS:
                raise
            time.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.2)


def is_locked_error(err: BaseException) -> bool:
    text = str(getattr(err, "orig", err)).lower()
    return isinstance(err, exc.OperationalError) and ("locked" in text or "busy" in text)


def retry_locked(fn: Callable[[], T]) -> T:
    """Run a whole transaction again when SQLite stayed locked past the busy timeout."""
    pause = LOCKED_BACKOFF_S
    for attempt in range(LOCKED_RETRIES + 1):
        try:
            return fn()
        except exc.OperationalError as err:
            if not is_locked_error(err) or attempt == LOCKED_RETRIES:
                raise
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")
