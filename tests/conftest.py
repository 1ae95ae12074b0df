"""The database every store, service, job and end-to-end test runs on.

`database_url` is a fresh, empty database for one test; `make_database_url(name)` gives more.
By default they are SQLite files in the test's tmp folder. With `ALVH_TEST_PG=1` (`make
test-pg`) a throw-away PostgreSQL 16 is started once for the session (tests/pgtest.py) and each
call creates a new database on it; `ALVH_TEST_DATABASE_URL=postgresql+psycopg://...` uses a
server you run instead (its user must be allowed CREATE DATABASE).

On PostgreSQL only the tests that use a database run (the rest ran on SQLite already), minus
those marked `sqlite_only` (PRAGMA, file backup); `postgres_only` tests run only there.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TEST_PG_ENV = "ALVH_TEST_PG"
TEST_DATABASE_URL_ENV = "ALVH_TEST_DATABASE_URL"
DATABASE_FIXTURES = {"make_database_url", "make_shared_database_url"}


def on_postgres() -> bool:
    return os.environ.get(TEST_PG_ENV) == "1" or os.environ.get(
        TEST_DATABASE_URL_ENV, "").startswith("postgresql")


def pytest_configure(config: pytest.Config) -> None:
    # Files the code puts in its data folder (bot/paths.py) go to a throw-away one.
    os.environ["ALVH_DATA_DIR"] = tempfile.mkdtemp(prefix="alvh-test-data-")
    config.addinivalue_line("markers", "sqlite_only: SQLite by nature (PRAGMA, file copies)")
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL (ALVH_TEST_PG=1)")
    config.addinivalue_line("markers", "slow: builds or starts processes; still runs in CI")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    pg = on_postgres()
    keep, drop = [], []
    for item in items:
        uses_db = bool(DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))
        if pg:
            wanted = uses_db and item.get_closest_marker("sqlite_only") is None
        else:
            wanted = item.get_closest_marker("postgres_only") is None
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class _Postgres:
    """A server's admin connection; creates and drops one database per request."""

    def __init__(self, admin_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.base = make_url(admin_url)
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.counter = itertools.count(1)
        self.prefix = f"alvh_t{os.getpid()}_"

    def create(self, name: str, template: str | None = None) -> str:
        from sqlalchemy.engine import make_url

        db = self.prefix + f"{next(self.counter)}_" + re.sub(r"\W", "_", name)[:30]
        clone = f' TEMPLATE "{make_url(template).database}"' if template else ""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db}"{clone}')
        return self.base.set(database=db).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" '
                                 "WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Postgres | None]:
    """None on SQLite; else the PostgreSQL the session's databases are created on."""
    if not on_postgres():
        yield None
        return
    given = os.environ.get(TEST_DATABASE_URL_ENV, "")
    if given.startswith("postgresql"):
        server = _Postgres(given)
        yield server
        server.admin.dispose()
        return
    from pgtest import start_postgres

    cluster = start_postgres()
    server = _Postgres(cluster.url)
    try:
        yield server
    finally:
        server.admin.dispose()
        cluster.stop()


@pytest.fixture(scope="session")
def _migrated_template(postgres_server, tmp_path_factory) -> str:
    """One database at the newest schema, cloned by `make_database_url(migrated=True)`
    (migrating every test's database costs more than copying one)."""
    from bot.store.migrate import migrate

    if postgres_server is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'alvh.db'}"
    else:
        url = postgres_server.create("template")
    migrate(url)
    return url


def _factory(folder: Path, postgres_server, request: pytest.FixtureRequest,
             created: list[str]) -> Callable[..., str]:
    by_name: dict[str, str] = {}

    def new(name: str = "alvh", migrated: bool = False) -> str:
        """The same name gives the same database again (like a file path would)."""
        stem = name.removesuffix(".db")
        if stem in by_name:
            return by_name[stem]
        template = request.getfixturevalue("_migrated_template") if migrated else None
        if postgres_server is None:
            path = folder / f"{stem}.db"
            if template:
                shutil.copy(template.removeprefix("sqlite:///"), path)
            url = f"sqlite:///{path}"
        else:
            url = postgres_server.create(stem, template)
            created.append(url)
        by_name[stem] = url
        return url

    return new


@pytest.fixture
def make_database_url(tmp_path: Path, postgres_server, request) -> Iterator[Callable[..., str]]:
    """`make_database_url("name", migrated=False)` → the URL of a new database, empty or at
    the newest schema (an SQLite file in tmp_path, or a PostgreSQL database dropped after the
    test)."""
    created: list[str] = []
    yield _factory(tmp_path, postgres_server, request, created)
    for url in created:
        postgres_server.drop(url)


@pytest.fixture(scope="session")
def make_shared_database_url(tmp_path_factory, postgres_server, request):
    """`make_database_url` for module- and session-scoped fixtures."""
    created: list[str] = []
    yield _factory(tmp_path_factory.mktemp("shared"), postgres_server, request, created)
    for url in created:
        postgres_server.drop(url)


@pytest.fixture
def database_url(make_database_url) -> str:
    return make_database_url("alvh")
