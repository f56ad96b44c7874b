"""the owner foreign key cascades; the price check goes: both found by their convention names

Revision ID: n2
Revises: n1
"""
from alembic import op

revision = "n2"
down_revision = "n1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: plain ALTERs on PostgreSQL and MariaDB, a copy of the table on SQLite.
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint("fk_items_owner_id_users", type_="foreignkey")
        batch.create_foreign_key(None, "users", ["owner_id"], ["id"], ondelete="CASCADE")
        # op.f(): the name is final; the ck convention would otherwise be applied to it a second time.
        batch.drop_constraint(op.f("ck_items_price_positive"), type_="check")


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.create_check_constraint("price_positive", "price >= 0")
        batch.drop_constraint("fk_items_owner_id_users", type_="foreignkey")
        batch.create_foreign_key(None, "users", ["owner_id"], ["id"])
