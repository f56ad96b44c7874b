"""create orders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 00:00:02
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("total_cents", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_orders_account_id", "orders", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_account_id", table_name="orders")
    op.drop_table("orders")
