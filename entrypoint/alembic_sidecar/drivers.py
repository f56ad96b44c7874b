"""Driver quirks, kept free of SQLAlchemy so the fast path can use them too."""

from __future__ import annotations


def mysql_wire_password(password: str) -> str:
    """aiomysql encodes a str password as latin-1; MySQL hashed the UTF-8 bytes. Hand it text that encodes to those."""
    return password.encode("utf-8").decode("latin-1")
