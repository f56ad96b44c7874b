"""naming_models plus what no revision has made yet: a column users.display_name and a table audit."""
import sqlalchemy as sa

from naming_models import CONVENTION

metadata = sa.MetaData(naming_convention=CONVENTION)

users = sa.Table("users", metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("email", sa.String(200), nullable=False),
                 sa.Column("display_name", sa.String(80)),
                 sa.Index("ix_users_email", "email", unique=True))

items = sa.Table("items", metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
                 sa.Column("price", sa.Integer, nullable=False),
                 sa.Column("name", sa.String(100), nullable=False, index=True))

audit = sa.Table("audit", metadata, sa.Column("id", sa.Integer, primary_key=True))
