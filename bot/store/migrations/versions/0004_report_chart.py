"""User setting `report_chart`: send the EDR-history chart with the pre-market report.
Adds one column with a default (false for every existing user); rewrites no user data.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN only: users is never copied (positions, hedges and rolls point at it).
    op.add_column("users", sa.Column("report_chart", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite ≥ 3.35): a batch copy of users would trip the foreign keys.
    op.execute("ALTER TABLE users DROP COLUMN report_chart")
