"""create users and items; every constraint unnamed (the naming convention names them)

Revision ID: n1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "n1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("users",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("email", sa.String(200), nullable=False),
                    sa.UniqueConstraint("email"))
    op.create_table("items",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
                    sa.Column("price", sa.Integer, nullable=False),
                    sa.Column("name", sa.String(100), nullable=False, index=True),
                    # Named, but through the convention's %(constraint_name)s: the database sees
                    # ck_items_price_positive only when the convention applies.
                    sa.CheckConstraint("price >= 0", name="price_positive"))


def downgrade() -> None:
    op.drop_table("items")
    op.drop_table("users")
