"""The same models as naming_models, as ORM classes on a declarative base."""
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from naming_models import CONVENTION


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (sa.Index("ix_users_email", "email", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200))


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    price: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
