"""Portable column types (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Numeric
from sqlalchemy.types import TypeDecorator

# Prices, strikes and credits: users type 4.35 and must read 4.35 back, so exact decimals.
# 12 digits, 4 after the point: up to 99,999,999.9999 (SQLite keeps them as 8-byte floats,
# which hold 15 significant digits, so every value of this scale round-trips exactly).
MONEY_PRECISION = 12
MONEY_SCALE = 4


# Realised P&L in dollars, to the cent: 13 digits before the point, 15 significant in all.
DOLLARS_PRECISION = 15
DOLLARS_SCALE = 2


def Money() -> Numeric:
    return Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)


def Dollars() -> Numeric:
    return Numeric(DOLLARS_PRECISION, DOLLARS_SCALE, asdecimal=True)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out.

    SQLite drops the offset of a stored datetime; storing UTC and re-attaching it on the way
    out makes the column behave the same on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
