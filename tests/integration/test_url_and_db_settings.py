"""A URL's port is checked before any login, in every form (issue 14, item 8)."""

from __future__ import annotations

import pytest

from .conftest import assert_clean_failure

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("form", ["postgresql", "mysql"])
def test_port_0_in_a_url_is_exit_2_not_the_default_port(pg_database, mariadb_database, revisions, sidecar, form):
    """Before, port 0 read as "no port" and the run migrated the server on the default port."""
    revisions.chain(1)
    db = pg_database if form == "postgresql" else mariadb_database
    host = "127.0.0.1:5432" if form == "postgresql" else "127.0.0.1:3306"
    result = sidecar.run(env={"DATABASE_URL": db.url.replace(host, "127.0.0.1:0")})
    assert_clean_failure(result, 2, "DATABASE_URL", "port 0", "1 to 65535")
    assert db.tables() == []
