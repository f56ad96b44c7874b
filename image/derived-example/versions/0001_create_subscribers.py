"""create subscribers (a column of the application's own type)

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sidecar_example_types import LowerCaseEmail

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", LowerCaseEmail(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subscribers")
