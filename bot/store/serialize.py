"""Rows ↔ plain JSON-safe values, one canonical spelling per value.

Used by the audit log (before/after snapshots) and by export/import, so that an export, an
import into an empty database and a second export give identical bytes.
Decimal → shortest exact text ("4.35", "4500"); date → "YYYY-MM-DD"; datetime → ISO 8601 in
UTC with its offset; bool, int, str and None as JSON has them.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, Float, Integer, Numeric, Table
from sqlmodel import SQLModel

from bot.store.coltypes import UTCDateTime


def decimal_text(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def to_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def row_to_plain(row: SQLModel) -> dict[str, Any]:
    """Every column of a row, in table order, as plain values."""
    table: Table = row.__table__
    return {c.name: to_plain(getattr(row, c.name)) for c in table.columns}


def row_json(row: SQLModel) -> str:
    return json.dumps(row_to_plain(row), ensure_ascii=False, sort_keys=True)


def from_plain(column, value: Any) -> Any:
    """The Python value of a column from its plain form (the inverse of `to_plain`)."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, UTCDateTime):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(f"{column.name}: {value!r} has no UTC offset")
        return moment
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    if isinstance(kind, Boolean):
        if isinstance(value, bool):
            return value
        return {"true": True, "false": False}[str(value).lower()]
    if isinstance(kind, Float):
        return float(value)
    if isinstance(kind, Numeric):
        return Decimal(str(value))
    if isinstance(kind, Integer):
        if isinstance(value, bool):
            raise ValueError(f"{column.name}: expected a whole number, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"{column.name}: expected text, got {value!r}")
    return value
