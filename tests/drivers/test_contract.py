"""The driver contract: one suite every database's driver must pass, against the real servers (as golang-migrate's
``database/testing``). A new backend gets its fixture added to BACKENDS and nothing else."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import text

from alembic_sidecar import databases
from alembic_sidecar.databases.base import Driver
from alembic_sidecar.endpoint import Endpoint, parse_url
from alembic_sidecar.failures import Fault
from alembic_sidecar.settings import from_environ
from alembic_sidecar.waiting import create_engine

pytestmark = pytest.mark.integration

BACKENDS = {"postgresql": "pg_database", "mariadb": "mariadb_database", "sqlite": "sqlite_database"}


@pytest.fixture(params=list(BACKENDS))
def database(request):
    """Each backend's fresh database (a SQLite file that exists, empty)."""
    found = request.getfixturevalue(BACKENDS[request.param])
    if found.path is not None:
        sqlite3.connect(found.path).close()
    return found


def _driver(database) -> tuple[Endpoint, Driver]:
    endpoint = parse_url(database.url, "test")
    return endpoint, databases.driver_for(endpoint.backend)


def _create_versions(database, *revisions: str) -> None:
    session = database.session()
    try:
        session.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        for revision in revisions:
            session.execute(f"INSERT INTO alembic_version VALUES ('{revision}')")
    finally:
        session.close()


def test_every_backend_has_one_driver_under_its_names():
    for backend in databases.backends():
        driver = databases.driver_for(backend)
        assert isinstance(driver, Driver)
        assert backend in driver.names
        assert all(databases.backend_for(name) is not None for name in driver.names)
    assert set(BACKENDS) <= set(databases.backends())


def test_a_missing_version_table_reads_as_empty(database):
    endpoint, driver = _driver(database)

    async def bare() -> tuple[str, ...]:
        connection = await driver.connect(endpoint, 5)
        try:
            return await driver.read_versions(connection, "alembic_version")
        finally:
            await driver.close(connection)

    assert asyncio.run(driver.read_versions_now(endpoint, "alembic_version", None, 5)) == ()
    assert asyncio.run(bare()) == ()


def test_the_version_table_reads_sorted_with_one_login(database):
    endpoint, driver = _driver(database)
    _create_versions(database, "b2", "a1")
    assert asyncio.run(driver.read_versions_now(endpoint, "alembic_version", None, 5)) == ("a1", "b2")


def test_tables_of_ours_read_on_one_login_columns_as_asked_and_a_missing_one_as_none(database):
    endpoint, driver = _driver(database)
    _create_versions(database, "a1")
    database.execute("CREATE TABLE ledger (revision VARCHAR(32) NOT NULL, file_sha256 VARCHAR(64) NOT NULL)")
    database.execute("INSERT INTO ledger VALUES ('a1', 'abc')")
    found = asyncio.run(driver.read_tables_now(endpoint, [
        ("alembic_version", None, ("version_num",)), ("ledger", None, ("file_sha256", "revision")),
        ("no_such_ledger", None, ("revision",))], 5))
    assert found == [[("a1",)], [("abc", "a1")], None]


async def _session(engine, driver: Driver, settings, endpoint: Endpoint):
    """A connection of the engine the runner uses, prepared as ours is, and the lock it would take."""
    connection = await engine.connect()
    raw = await connection.get_raw_connection()
    token = await driver.prepare_session(raw.driver_connection, settings, None)
    await connection.commit()
    return connection, driver.lock(connection, settings, endpoint, token)


def test_only_one_session_holds_the_lock(database):
    endpoint, driver = _driver(database)
    settings = from_environ({"DATABASE_URL": database.url}, [])

    async def nothing(raw) -> None:
        return None

    async def run() -> list[bool]:
        engine, _ = create_engine(endpoint, driver, nothing)
        try:
            first, first_lock = await _session(engine, driver, settings, endpoint)
            second, second_lock = await _session(engine, driver, settings, endpoint)
            outcomes = [await first_lock.try_acquire(), await second_lock.try_acquire()]
            await first_lock.release()
            outcomes += [await second_lock.try_acquire(), await first_lock.try_acquire()]
            await second_lock.release()
            await first.close()
            await second.close()
            return outcomes
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == [True, False, True, False]


# A database file has no login to refuse: this part of the contract is the servers'.
@pytest.mark.parametrize("backend", [name for name in BACKENDS if databases.driver_for(name).is_server])
def test_a_refused_login_is_an_access_fault(request, backend):
    database = request.getfixturevalue(BACKENDS[backend])
    endpoint, driver = _driver(database)
    stranger = Endpoint(endpoint.backend, endpoint.host, endpoint.port, "no_such_user_sc", None, endpoint.database)
    with pytest.raises(Exception) as refused:
        asyncio.run(driver.read_versions_now(stranger, "alembic_version", None, 5))
    assert driver.classify(refused.value) is Fault.ACCESS


def test_a_session_ended_on_the_server_is_classified_unavailable(database):
    endpoint, driver = _driver(database)
    if not driver.is_server:
        # A file's sessions end with the process: nobody outside can end them, and the contract says so.
        assert driver.backend_id_query is None and driver.kill_statement(1) is None
        return

    async def nothing(raw) -> None:
        return None

    async def run() -> BaseException | None:
        engine, _ = create_engine(endpoint, driver, nothing)
        try:
            victim = await engine.connect()
            backend_id = (await victim.execute(text(driver.backend_id_query))).scalar()
            await victim.commit()
            killer = await driver.connect(endpoint, 5)
            try:
                await driver.execute_raw(killer, driver.kill_statement(backend_id))
            finally:
                await driver.close(killer)
            for _ in range(50):  # the server ends the session asynchronously
                try:
                    await victim.execute(text("SELECT 1"))
                    await victim.commit()
                except Exception as exc:
                    return exc
                await asyncio.sleep(0.1)
            return None
        finally:
            await engine.dispose()

    ended = asyncio.run(run())
    assert ended is not None, "the session was not ended"
    assert driver.classify(ended) is Fault.UNAVAILABLE
