"""A custom column type of the kind applications keep in their own package, imported by a revision file."""

import sqlalchemy as sa


class LowerCaseEmail(sa.types.TypeDecorator):
    """An e-mail address stored lower-cased, in a column of 320 characters."""

    impl = sa.String(320)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.lower() if value is not None else None
