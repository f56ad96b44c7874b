"""users.email unique through an index instead of the convention-named constraint

Revision ID: n3
Revises: n2
"""
from alembic import op

revision = "n3"
down_revision = "n2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email", type_="unique")
        batch.create_index("ix_users_email", ["email"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_email")
        batch.create_unique_constraint(None, ["email"])
