"""Alert log, report delivery tracking, position notes. Adds only; rewrites no user data.

Reports recorded under 0001 were recorded when sent, so they are marked `sent` at that time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.coltypes import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN only: positions are never copied or rewritten.
    op.add_column(
        "positions", sa.Column("notes", sa.String(500), nullable=False, server_default="")
    )
    # report_log holds no user-entered data; SQLite needs a table copy to add a CHECK.
    with op.batch_alter_table("report_log") as batch:
        batch.add_column(
            sa.Column("delivery_status", sa.String(8), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("sent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("error", sa.String(500), nullable=True))
        batch.create_check_constraint(
            "ck_report_delivery", "delivery_status IN ('pending', 'sent', 'failed')"
        )
    op.execute(
        "UPDATE report_log SET delivery_status = 'sent', sent_at = recorded_at, attempts = 1"
    )
    op.create_table(
        "alert_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("alert_key", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "alert_key", name="uq_alert_user_key"),
    )


def downgrade() -> None:
    op.drop_table("alert_log")
    with op.batch_alter_table("report_log") as batch:
        batch.drop_constraint("ck_report_delivery", type_="check")
        for column in ("error", "attempts", "sent_at", "delivery_status"):
            batch.drop_column(column)
    # Native DROP COLUMN (SQLite ≥ 3.35): a batch copy of positions would trip the foreign
    # keys that hedges and rolls hold on it.
    op.execute("ALTER TABLE positions DROP COLUMN notes")
