"""Alembic environment. `bot.store.migrate` passes an open connection in
`config.attributes["connection"]`; the `alembic` command line falls back to the URL."""

from __future__ import annotations

from alembic import context

from bot.store.engine import database_url, make_engine
from bot.store.tables import METADATA

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    with engine.connect() as conn:
        conn.execution_options(sqlite_write=True)
        _run(conn)
        conn.commit()
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=True,  # SQLite can only alter a table by copying it
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `alvh db migrate`")
run_migrations_online()
