"""The models at revision n3, on a MetaData with the naming convention Alembic's documentation recommends."""
import sqlalchemy as sa

CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=CONVENTION)

users = sa.Table("users", metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("email", sa.String(200), nullable=False),
                 sa.Index("ix_users_email", "email", unique=True))

items = sa.Table("items", metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
                 sa.Column("price", sa.Integer, nullable=False),
                 sa.Column("name", sa.String(100), nullable=False, index=True))
