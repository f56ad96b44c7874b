"""create users and items (the status values come from the application's models, which need Python 3.14+)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sidecar_example_app.models import ItemStatus

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("status", sa.Enum(ItemStatus, native_enum=False, length=20), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("items")
    op.drop_table("users")
