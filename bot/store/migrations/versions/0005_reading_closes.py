"""The session's closes (SPX, VIX, VIX9D, VIX3M, VVIX) with each official EDR reading, so the
recorded closes can fill a provider close history that lags. Adds nullable columns only
(readings from before stay NULL: unknown); rewrites no data.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLOSE_COLUMNS = ("spx", "vix", "vix9d", "vix3m", "vvix")


def upgrade() -> None:
    # ADD COLUMN only: the readings are never copied.
    for name in CLOSE_COLUMNS:
        op.add_column("edr_readings", sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite ≥ 3.35), as 0004 does: no table copy.
    for name in reversed(CLOSE_COLUMNS):
        op.execute(f"ALTER TABLE edr_readings DROP COLUMN {name}")
