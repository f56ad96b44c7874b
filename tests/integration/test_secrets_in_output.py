"""No password reaches stdout, stderr or the termination log, however it was given, on success and on failure."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.fixtures.databases import assert_no_secrets, register_secret

from .conftest import assert_clean_failure, assert_exit

pytestmark = pytest.mark.integration

#: A wrong password as hostile as the right one: it must not show either.
WRONG_PASSWORD = register_secret("wr0ng:p@ss/w%rd#? ü")

#: A revision whose error carries the live connection URL with its password, as a careless revision might print it.
ECHO_URL_AND_FAIL = '''\
    url = op.get_bind().engine.url
    raise RuntimeError("revision {rev} fails on purpose; connected with " + url.render_as_string(hide_password=False)
                       + " password=" + repr(url.password) + " query=" + repr(dict(url.query)))
'''

SOURCES = ["url-userinfo", "url-query", "DB_PASSWORD", "DB_PASSWORD_FILE"]


def _environment(server, db, source: str, password: str, tmp_path: Path) -> dict[str, str]:
    """Log in as the odd user with ``password`` given one way."""
    if source == "url-userinfo":
        return {"DATABASE_URL": server.url(db.name, server.user, password)}
    if source == "url-query":
        user = quote(server.user, safe="")
        return {"DATABASE_URL": f"postgresql://{user}@{server.host}:{server.port}/{db.name}"
                                f"?password={quote_plus(password)}"}
    parts = {"DB_DRIVER": "postgresql", "DB_HOST": server.host, "DB_PORT": str(server.port),
             "DB_USER": server.user, "DB_NAME": db.name}
    if source == "DB_PASSWORD":
        return {**parts, "DB_PASSWORD": password}
    path = tmp_path / "db-password"
    path.write_text(password + "\n", encoding="utf-8")
    return {**parts, "DB_PASSWORD_FILE": str(path)}


def _pieces(password: str) -> set[str]:
    """Fragments of ``password`` that betray it, in the encodings a URL or a driver gives it (SQLAlchemy renders a
    space as is); a masker that stopped at the space would leave the first fragment behind."""
    found = set()
    for form in (password, quote(password, safe=""), quote_plus(password), quote(password, safe=" +")):
        found.add(form)
        found.update(piece for piece in form.split(" ") if len(piece) >= 8)
    return found


def _assert_password_hidden(result, termination_log: Path, password: str) -> None:
    assert termination_log.exists() and termination_log.read_text().strip(), "no termination log was written"
    outputs = {"stdout": result.stdout, "stderr": result.stderr, "termination log": termination_log.read_text()}
    for name, text in outputs.items():
        leaked = sorted(piece for piece in _pieces(password) if piece in text)
        assert not leaked, f"the password leaked into {name} in {len(leaked)} form(s) (not shown)"
        assert_no_secrets(text)


@pytest.mark.parametrize("source", SOURCES)
def test_no_password_in_any_output_when_the_upgrade_succeeds(pg_password_server, revisions, sidecar, tmp_path,
                                                            source):
    server = pg_password_server
    revisions.chain(1)
    with server.database() as db:
        env = {**_environment(server, db, source, server.password, tmp_path), "MIGRATE_LOG_LEVEL": "debug",
               "MIGRATE_WAIT_TIMEOUT": "5"}
        result = sidecar.run("upgrade", env=env, check_secrets=False)
        assert_exit(result, 0)
        assert db.revisions() == [revisions.head], "the login should have worked"
    _assert_password_hidden(result, sidecar.termination_log, server.password)


@pytest.mark.parametrize("source", SOURCES)
def test_no_password_in_any_output_when_a_revision_fails_quoting_the_url(pg_password_server, revisions, sidecar,
                                                                        tmp_path, source):
    server = pg_password_server
    revisions.chain(1)
    bad = revisions.add(ECHO_URL_AND_FAIL, message="echoes the url")
    with server.database() as db:
        env = {**_environment(server, db, source, server.password, tmp_path), "MIGRATE_LOG_LEVEL": "debug",
               "MIGRATE_WAIT_TIMEOUT": "5"}
        result = sidecar.run("upgrade", env=env, check_secrets=False)
        failed = assert_clean_failure(result, 1, bad, "fails on purpose")
    assert f":{server.port}/" in failed["error"], "the URL should still be shown, masked"
    _assert_password_hidden(result, sidecar.termination_log, server.password)


@pytest.mark.parametrize("source", SOURCES)
def test_no_password_in_any_output_when_the_password_is_wrong(pg_password_server, revisions, sidecar, tmp_path,
                                                              source):
    server = pg_password_server
    revisions.chain(1)
    with server.database() as db:
        env = {**_environment(server, db, source, WRONG_PASSWORD, tmp_path), "MIGRATE_LOG_LEVEL": "debug",
               "MIGRATE_WAIT_TIMEOUT": "5"}
        result = sidecar.run("upgrade", env=env, check_secrets=False, timeout=30)
        assert_clean_failure(result, 5)
        assert db.tables() == []
    _assert_password_hidden(result, sidecar.termination_log, WRONG_PASSWORD)
