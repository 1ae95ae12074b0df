"""Programmatic Alembic: `migrate(url)` brings a database to the newest schema.

The scripts are found through this package's path, never the working directory. The upgrade
runs in one write transaction, so two processes starting at once take turns and the second finds
the work done: on SQLite that is `BEGIN IMMEDIATE`; on PostgreSQL a transaction-level advisory
lock taken first (without it, four processes creating the same tables crashed three of them with
UniqueViolation on pg_type). DDL is transactional on both: a failed upgrade leaves nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from bot.store.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock keys of the migration runner: this constant and the database's name
# (bot/store/leader.py uses 0x414C5602 for the scheduler).
MIGRATION_LOCK_KEY = 0x414C5601


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _run(target: str | Engine, step, revision: str) -> str | None:
    """Run one Alembic command (upgrade/downgrade) in a single write transaction."""
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        cfg = alembic_config()
        with engine.connect() as conn:
            conn.execution_options(sqlite_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":  # released at commit or rollback
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key, "
                                      "hashtext(current_database()))"),
                                 {"key": MIGRATION_LOCK_KEY})
                cfg.attributes["connection"] = conn
                step(cfg, revision)
        return current_revision(engine)
    finally:
        if isinstance(target, str):
            engine.dispose()


def migrate(target: str | Engine, revision: str = "head") -> str | None:
    """Upgrade to `revision` (default head); returns the revision the database is at."""
    return _run(target, command.upgrade, revision)


def downgrade(target: str | Engine, revision: str) -> str | None:
    """Step the schema back to `revision` (operations only; take a backup first)."""
    return _run(target, command.downgrade, revision)
