"""Initial schema: users, positions, hedges, rolls, audit log, report log, EDR readings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.coltypes import Dollars, Money, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tg_user_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("report_time", sa.String(5), nullable=False),
        sa.Column("alerts_enabled", sa.Boolean(), nullable=False),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("param_overrides", sa.Text(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("root", sa.String(8), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("k1", Money(), nullable=False),
        sa.Column("k2", Money(), nullable=False),
        sa.Column("k3", Money(), nullable=False),
        sa.Column("k4", Money(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("entry_credit", Money(), nullable=False),
        sa.Column("roll_credits", Money(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("opened", sa.Date(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closing_debit", Money(), nullable=True),
        sa.Column("realised_pnl", Dollars(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("id", "user_id", name="uq_positions_id_user"),
        sa.ForeignKeyConstraint(
            ["parent_id", "user_id"], ["positions.id", "positions.user_id"],
            name="fk_positions_parent_same_user",
        ),
        sa.CheckConstraint(
            "status IN ('open', 'closed', 'rolled', 'expired')", name="ck_positions_status"
        ),
        sa.CheckConstraint("k1 < k2 AND k2 < k3 AND k3 < k4", name="ck_positions_strikes"),
        sa.CheckConstraint("qty > 0", name="ck_positions_qty"),
    )
    op.create_index("ix_positions_user_status", "positions", ["user_id", "status"])
    op.create_table(
        "hedges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("position_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("layer", sa.String(2), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("strike", Money(), nullable=True),
        sa.Column("strike2", Money(), nullable=True),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("close_price", Money(), nullable=True),
        sa.Column("realised_pnl", Dollars(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["position_id", "user_id"], ["positions.id", "positions.user_id"],
            name="fk_hedges_position_same_user",
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_hedges_status"),
        sa.CheckConstraint(
            "kind IN ('VIX_CALL', 'VIX_CALL_SPREAD', 'VIX_FUTURE')", name="ck_hedges_kind"
        ),
        sa.CheckConstraint("layer IN ('L1', 'L2', 'L3')", name="ck_hedges_layer"),
        sa.CheckConstraint("qty > 0", name="ck_hedges_qty"),
    )
    op.create_index("ix_hedges_user_position", "hedges", ["user_id", "position_id"])
    op.create_table(
        "rolls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("old_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("new_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("net_credit", Money(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["old_id", "user_id"], ["positions.id", "positions.user_id"],
                                name="fk_rolls_old_same_user"),
        sa.ForeignKeyConstraint(["new_id", "user_id"], ["positions.id", "positions.user_id"],
                                name="fk_rolls_new_same_user"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("before_json", sa.Text(), nullable=True),
        sa.Column("after_json", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_user_at", "audit_log", ["user_id", "at"])
    op.create_table(
        "report_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("session_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "session_date", "kind", name="uq_report_user_session_kind"),
    )
    op.create_table(
        "edr_readings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_date", sa.Date(), nullable=False, unique=True),
        sa.Column("edr_pct", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("edr_readings", "report_log", "audit_log", "rolls", "hedges", "positions",
                  "users"):
        op.drop_table(table)
