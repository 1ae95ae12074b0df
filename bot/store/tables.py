"""The store's tables (SQLModel). The Alembic revisions in `migrations/versions` build exactly
this schema; `tests/test_store_migrations.py` checks the two never drift apart.

Conventions: money and strikes are `Decimal` (see `coltypes.Money`); timestamps are aware UTC;
dates are exchange (America/New_York) calendar dates; status and kind columns are short strings
guarded by CHECK constraints (portable, unlike SQLite- or PostgreSQL-only enum types).
Rows are never deleted by the application: a deleted position or hedge gets `deleted_at`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from bot.store.coltypes import Dollars, Money, UTCDateTime

LABEL_MAX_CHARS = 64
NOTES_MAX_CHARS = 500
TIMEZONE_MAX_CHARS = 64
ALERT_KEY_MAX_CHARS = 128
ERROR_MAX_CHARS = 500

POSITION_STATUSES = ("open", "closed", "rolled", "expired")
HEDGE_STATUSES = ("open", "closed")
HEDGE_KINDS = ("VIX_CALL", "VIX_CALL_SPREAD", "VIX_FUTURE")
HEDGE_LAYERS = ("L1", "L2", "L3")
DELIVERY_STATUSES = ("pending", "sent", "failed", "skipped")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _money(nullable: bool = False):
    return Field(default=None if nullable else Decimal(0), sa_type=Money(), nullable=nullable)


def _dollars():
    return Field(default=None, sa_type=Dollars(), nullable=True)


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    tg_user_id: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    timezone: str = Field(default="America/New_York", sa_type=String(TIMEZONE_MAX_CHARS))
    report_time: str = Field(default="08:45", sa_type=String(5))  # HH:MM in `timezone`
    alerts_enabled: bool = Field(default=True)
    quiet_start: str | None = Field(default=None, sa_type=String(5), nullable=True)  # HH:MM
    quiet_end: str | None = Field(default=None, sa_type=String(5), nullable=True)
    param_overrides: str = Field(default="{}", sa_type=Text)  # JSON object, sorted keys
    subscribed: bool = Field(default=False)
    # revision 0004: the EDR-history chart goes out with the pre-market report
    report_chart: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class PositionRow(SQLModel, table=True):
    """One iron condor. C0 is `entry_credit`, ΣR is `roll_credits` (index points per condor);
    `realised_pnl` is in dollars (points × multiplier × qty)."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("id", "user_id", name="uq_positions_id_user"),
        # A roll's parent must belong to the same user: enforced by the database too.
        ForeignKeyConstraint(
            ["parent_id", "user_id"], ["positions.id", "positions.user_id"],
            name="fk_positions_parent_same_user",
        ),
        CheckConstraint(_in("status", POSITION_STATUSES), name="ck_positions_status"),
        CheckConstraint("k1 < k2 AND k2 < k3 AND k3 < k4", name="ck_positions_strikes"),
        CheckConstraint("qty > 0", name="ck_positions_qty"),
        Index("ix_positions_user_status", "user_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False)
    root: str = Field(sa_type=String(8))
    expiry: date
    k1: Decimal = _money()
    k2: Decimal = _money()
    k3: Decimal = _money()
    k4: Decimal = _money()
    qty: int = Field(sa_type=Integer)
    entry_credit: Decimal = _money()
    roll_credits: Decimal = _money()
    label: str = Field(default="", sa_type=String(LABEL_MAX_CHARS))
    notes: str = Field(default="", sa_type=String(NOTES_MAX_CHARS))  # revision 0002
    status: str = Field(default="open", sa_type=String(8))
    opened: date  # exchange date the condor was opened (drives its entry DTE)
    # Δ_e, the entry short delta of this position (revision 0006); None: the user's setting
    entry_delta: float | None = Field(default=None, sa_type=Float, nullable=True)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    closing_debit: Decimal | None = _money(nullable=True)
    realised_pnl: Decimal | None = _dollars()
    parent_id: int | None = Field(default=None, nullable=True)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class HedgeRow(SQLModel, table=True):
    """A VIX hedge layer, on one position or (`position_id` None) on the user's whole book.
    `cost` and `close_price` are points per contract; `realised_pnl` is dollars."""

    __tablename__ = "hedges"
    __table_args__ = (
        ForeignKeyConstraint(
            ["position_id", "user_id"], ["positions.id", "positions.user_id"],
            name="fk_hedges_position_same_user",
        ),
        CheckConstraint(_in("status", HEDGE_STATUSES), name="ck_hedges_status"),
        CheckConstraint(_in("kind", HEDGE_KINDS), name="ck_hedges_kind"),
        CheckConstraint(_in("layer", HEDGE_LAYERS), name="ck_hedges_layer"),
        CheckConstraint("qty > 0", name="ck_hedges_qty"),
        Index("ix_hedges_user_position", "user_id", "position_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False)
    position_id: int | None = Field(default=None, nullable=True)
    kind: str = Field(sa_type=String(16))
    layer: str = Field(default="L2", sa_type=String(2))
    expiry: date
    strike: Decimal | None = _money(nullable=True)
    strike2: Decimal | None = _money(nullable=True)
    qty: int = Field(sa_type=Integer)
    # contracts of this line sold earlier (`remove <n> x<qty>`); it was bought as qty + qty_sold
    qty_sold: int = Field(default=0, sa_type=Integer)
    cost: Decimal = _money()
    status: str = Field(default="open", sa_type=String(8))
    opened_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    close_price: Decimal | None = _money(nullable=True)
    realised_pnl: Decimal | None = _dollars()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class RollRow(SQLModel, table=True):
    """old → new; `net_credit` R in points per condor (negative: a debit)."""

    __tablename__ = "rolls"
    __table_args__ = (
        ForeignKeyConstraint(["old_id", "user_id"], ["positions.id", "positions.user_id"],
                             name="fk_rolls_old_same_user"),
        ForeignKeyConstraint(["new_id", "user_id"], ["positions.id", "positions.user_id"],
                             name="fk_rolls_new_same_user"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False)
    old_id: int = Field(unique=True)  # a position is rolled at most once
    new_id: int = Field(unique=True)
    net_credit: Decimal = _money()
    at: datetime = Field(sa_type=UTCDateTime)


class AuditRow(SQLModel, table=True):
    """Every change a user made, written in the same transaction as the change."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_user_at", "user_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False)
    action: str = Field(sa_type=String(32))  # e.g. position.add, hedge.close
    entity: str = Field(sa_type=String(16))  # position | hedge | user
    entity_id: int | None = Field(default=None, nullable=True)
    before_json: str | None = Field(default=None, sa_type=Text, nullable=True)
    after_json: str | None = Field(default=None, sa_type=Text, nullable=True)
    at: datetime = Field(sa_type=UTCDateTime)


class ReportLogRow(SQLModel, table=True):
    """At most one report per user, trading session and kind (the UNIQUE makes it race-safe)."""

    __tablename__ = "report_log"
    __table_args__ = (
        UniqueConstraint("user_id", "session_date", "kind", name="uq_report_user_session_kind"),
        CheckConstraint(_in("delivery_status", DELIVERY_STATUSES), name="ck_report_delivery"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False)
    session_date: date
    kind: str = Field(sa_type=String(32))
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    # revision 0002: delivery tracking
    delivery_status: str = Field(default="pending", sa_type=String(8))
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    attempts: int = Field(default=0, sa_type=Integer)
    error: str | None = Field(default=None, sa_type=String(ERROR_MAX_CHARS), nullable=True)


class EdrReadingRow(SQLModel, table=True):
    """The official EDR % of one session's close (not per user)."""

    __tablename__ = "edr_readings"

    id: int | None = Field(default=None, primary_key=True)
    session_date: date = Field(unique=True)
    edr_pct: float
    state: str = Field(sa_type=String(16))
    source: str = Field(sa_type=String(32))
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    # revision 0005: the session's closes, which fill a close history that lags (NULL: unknown)
    spx: float | None = Field(default=None, nullable=True)
    vix: float | None = Field(default=None, nullable=True)
    vix9d: float | None = Field(default=None, nullable=True)
    vix3m: float | None = Field(default=None, nullable=True)
    vvix: float | None = Field(default=None, nullable=True)


class AlertLogRow(SQLModel, table=True):
    """Alerts already sent (revision 0002): the scheduler sends each key once per user."""

    __tablename__ = "alert_log"
    __table_args__ = (UniqueConstraint("user_id", "alert_key", name="uq_alert_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False)
    alert_key: str = Field(sa_type=String(ALERT_KEY_MAX_CHARS))
    at: datetime = Field(sa_type=UTCDateTime)


METADATA = SQLModel.metadata
