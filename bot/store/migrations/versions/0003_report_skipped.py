"""Report delivery status `skipped`: a report the scheduler decided not to send (e.g. a
pre-market report missed until after the open) is recorded as such, not left `pending`.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD = "delivery_status IN ('pending', 'sent', 'failed')"
NEW = "delivery_status IN ('pending', 'sent', 'failed', 'skipped')"


def upgrade() -> None:
    with op.batch_alter_table("report_log") as batch:  # SQLite: a copy of report_log only
        batch.drop_constraint("ck_report_delivery", type_="check")
        batch.create_check_constraint("ck_report_delivery", NEW)


def downgrade() -> None:
    op.execute("UPDATE report_log SET delivery_status = 'failed' "
               "WHERE delivery_status = 'skipped'")
    with op.batch_alter_table("report_log") as batch:
        batch.drop_constraint("ck_report_delivery", type_="check")
        batch.create_check_constraint("ck_report_delivery", OLD)
