"""Per-position entry delta Δ_e (METHOD §8: it sets the watch and tested delta levels), set at
/add with `delta 0.16`. Adds one nullable column (existing positions stay NULL: the user's
setting applies); rewrites no data.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("positions", sa.Column("entry_delta", sa.Float(), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite ≥ 3.35), as 0004 and 0005 do: no table copy.
    op.execute("ALTER TABLE positions DROP COLUMN entry_delta")
