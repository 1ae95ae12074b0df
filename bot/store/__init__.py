"""The positions store: SQLModel tables on SQLite (or PostgreSQL), Alembic migrations, and the
`Store` repository every front end calls. See docs/store.md."""

from bot.store.engine import DEFAULT_DATABASE_URL, database_url, make_engine
from bot.store.errors import Conflict, NotFound, StoreError, ValidationError
from bot.store.inputs import HedgeInput, PositionInput
from bot.store.migrate import migrate
from bot.store.service import Book, Store, UserSettings, to_core_hedge, to_core_position
from bot.store.tables import (
    AlertLogRow,
    AuditRow,
    EdrReadingRow,
    HedgeRow,
    PositionRow,
    ReportLogRow,
    RollRow,
    UserRow,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AlertLogRow",
    "AuditRow",
    "Book",
    "Conflict",
    "EdrReadingRow",
    "HedgeInput",
    "HedgeRow",
    "NotFound",
    "PositionInput",
    "PositionRow",
    "ReportLogRow",
    "RollRow",
    "Store",
    "StoreError",
    "UserRow",
    "UserSettings",
    "ValidationError",
    "database_url",
    "make_engine",
    "migrate",
    "to_core_hedge",
    "to_core_position",
]
