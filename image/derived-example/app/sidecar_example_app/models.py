"""The application's models, written for Python 3.14 and newer.

``User.items`` names ``Item`` before it is defined, without quotes. Python 3.14 evaluates annotations only when they
are asked for (PEP 649), so this module imports there; Python 3.11 to 3.13 evaluate them while the class body runs
and fail with ``NameError: name 'Item' is not defined``. A revision file that imports this module therefore needs a
sidecar image on 3.14 or newer: the image tag that matches the application's Python.
"""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class ItemStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    items: Mapped[list[Item]] = relationship(back_populates="owner")


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[ItemStatus] = mapped_column(sa.Enum(ItemStatus, native_enum=False, length=20),
                                               default=ItemStatus.DRAFT)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    owner: Mapped[User] = relationship(back_populates="items")
