"""Hedge lines remember how many of their contracts were sold (`/hedge <id> remove <n> x<qty>`):
the exit rules ask to "sell half" once per line, not again of what is left (docs/engine.md,
decision 42). Adds one column with a default (0 for every existing line); rewrites no data.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN only, as 0004: hedges is never copied (no batch table rebuild).
    op.add_column("hedges", sa.Column("qty_sold", sa.Integer(), nullable=False,
                                      server_default=sa.text("0")))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite ≥ 3.35), as 0004–0006 do: no table copy.
    op.execute("ALTER TABLE hedges DROP COLUMN qty_sold")
