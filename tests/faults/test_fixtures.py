"""The fault fixtures themselves: each one really injects its fault, and undoes it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import subprocess
import time
from urllib.parse import urlsplit

import asyncpg
import pymysql
import pytest

from tests.fixtures.faults import (
    database_on, holding_migration_lock, iptables, lock_free, lock_holders, mariadb_limited_database, pg_lock_key,
    read_only, restart, sqlite_lock_path, table_lock, wait_lock_free,
)

from .conftest import pg_sessions

pytestmark = pytest.mark.faults

#: PostgreSQL's SSLRequest: the server answers one byte ("N" here), which shows bytes moving on a raw socket.
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def startup_message(database: str) -> bytes:
    """A protocol 3.0 StartupMessage; a trust server answers with an Authentication message, type "R"."""
    body = struct.pack("!i", 196608) + b"user\0postgres\0database\0" + database.encode() + b"\0\0"
    return struct.pack("!i", len(body) + 4) + body


def ask(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    return sock.recv(1)


def pg(host: str, port: int, database: str, **kw):
    return asyncpg.connect(host=host, port=port, user="postgres", database=database, timeout=5, **kw)


# --- the proxy ------------------------------------------------------------------------------------------------------

def test_proxy_blackhole_stalls_both_ways_keeps_sockets_open_and_forward_delivers(pg_database, tcp_proxy):
    proxy = tcp_proxy(5432)
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        sock.sendall(SSL_REQUEST)
        assert ask(sock, 5) == b"N"
        proxy.blackhole()
        sock.sendall(startup_message(pg_database.name))
        with pytest.raises(TimeoutError):
            ask(sock, 1)
        # New connections are accepted but never reach the server.
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as fresh:
            fresh.sendall(SSL_REQUEST)
            with pytest.raises(TimeoutError):
                ask(fresh, 1)
        assert proxy.connections == 2
        proxy.forward()
        assert ask(sock, 5) == b"R", "the message held in the blackhole is delivered once it forwards again"


def test_proxy_forwards_a_real_session_and_reset_ends_it_with_an_rst(pg_database, tcp_proxy):
    proxy = tcp_proxy(5432)

    async def scenario() -> None:
        conn = await pg(proxy.host, proxy.port, pg_database.name)
        assert await conn.fetchval("SELECT current_database()") == pg_database.name
        assert proxy.reset() == 1
        with pytest.raises((OSError, asyncpg.exceptions.ConnectionDoesNotExistError)):
            await conn.fetchval("SELECT 1")
        conn.terminate()
        # The proxy keeps working after a reset.
        again = await pg(proxy.host, proxy.port, pg_database.name)
        assert await again.fetchval("SELECT 1") == 1
        await again.close()

    asyncio.run(scenario())
    # The server saw the reset too: the first session is gone.
    deadline = time.time() + 5
    while pg_sessions(pg_database) and time.time() < deadline:
        time.sleep(0.05)
    assert pg_sessions(pg_database) == []


def test_proxy_reset_is_a_tcp_rst_on_a_raw_socket(tcp_proxy):
    proxy = tcp_proxy(5432)
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        sock.sendall(SSL_REQUEST)
        assert ask(sock, 5) == b"N"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            sock.sendall(SSL_REQUEST)
            ask(sock, 5)


def test_proxy_delay_adds_latency_each_way(pg_database, tcp_proxy):
    proxy = tcp_proxy(5432)

    async def round_trip(conn) -> float:
        started = time.monotonic()
        await conn.fetchval("SELECT 1")
        return time.monotonic() - started

    async def scenario() -> None:
        conn = await pg(proxy.host, proxy.port, pg_database.name)
        proxy.delay(0.1)
        assert await round_trip(conn) >= 0.2
        proxy.forward()
        assert await round_trip(conn) < 0.1
        await conn.close()

    asyncio.run(scenario())


# --- partitions -----------------------------------------------------------------------------------------------------

def test_partition_drops_tcp_both_ways_spares_the_unix_socket_and_heals(own_pg_server, network_partition):
    server = own_pg_server
    database = database_on(server)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        cut = network_partition(server.port)
        sock.sendall(SSL_REQUEST)  # the send succeeds: the packets are lost, as in a real partition
        with pytest.raises(TimeoutError):
            ask(sock, 1.5)
        with socket.socket() as fresh, pytest.raises(TimeoutError):
            fresh.settimeout(1.5)
            fresh.connect((server.host, server.port))
        assert database.scalar("SELECT 1") == 1, "the test's admin session uses the Unix socket"
        cut.heal()
        # TCP retransmits the request: the socket stayed open and nothing was reset.
        assert ask(sock, 15) == b"N"
    listing = subprocess.run([*iptables(), "-S"], capture_output=True, text=True).stdout
    assert f"port={server.port}" not in listing


def test_partition_rules_are_removed_when_the_block_fails(own_pg_server):
    from tests.fixtures.faults import partition

    with pytest.raises(RuntimeError), partition(own_pg_server.port):
        raise RuntimeError("the test failed inside the partition")
    listing = subprocess.run([*iptables(), "-S"], capture_output=True, text=True).stdout
    assert f"port={own_pg_server.port}" not in listing


# --- PgBouncer ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_pgbouncer_pools_in_the_mode_asked_for(pg_database, pgbouncer, pool_mode):
    bouncer = pgbouncer(pool_mode)
    probe = "faults-fixture-probe"

    async def scenario() -> None:
        conn = await asyncpg.connect(**bouncer.connect(pg_database), timeout=5)
        assert await conn.fetchval("SELECT current_database()") == pg_database.name
        await conn.execute(f"SELECT pg_advisory_lock({pg_lock_key(probe)})")
        await conn.close()

    asyncio.run(scenario())
    # Session pooling resets the server connection (DISCARD ALL) when the client leaves; transaction pooling does
    # not, so a session lock stays on the pooled server connection: the trap the sidecar must not fall into.
    if pool_mode == "session":
        wait_lock_free(pg_database, 5, name=probe)
    else:
        time.sleep(0.5)
        assert lock_holders(pg_database, name=probe), "transaction pooling should keep the session lock"


# --- restarts, read-only, table locks, the migration lock -----------------------------------------------------------

def test_restart_ends_every_session_and_the_server_comes_back(own_pg_server):
    server = own_pg_server
    database = database_on(server)

    async def session_survives(mode: str) -> bool:
        conn = await pg(server.host, server.port, database.name)
        restart(server, mode)
        try:
            await conn.fetchval("SELECT 1")
            return True
        except (OSError, asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError):
            return False
        finally:
            conn.terminate()

    for mode in ("fast", "immediate"):
        assert not asyncio.run(session_survives(mode)), mode
        assert database.scalar("SELECT 1") == 1


def test_read_only_postgresql_database_refuses_writes_in_new_sessions_until_the_block_ends(pg_database):
    with read_only(pg_database):
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
            pg_database.execute("CREATE TABLE t (id int)")
    pg_database.execute("CREATE TABLE t (id int)")


def test_read_only_mariadb_server_of_our_own_refuses_a_plain_login(own_mariadb_server):
    with mariadb_limited_database(own_mariadb_server) as database:
        url = urlsplit(database.url)

        def create(table: str) -> None:
            conn = pymysql.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                                   database=database.name)
            try:
                conn.cursor().execute(f"CREATE TABLE {table} (id int)")
            finally:
                conn.close()

        with read_only(database, own_mariadb_server):
            with pytest.raises(pymysql.err.OperationalError) as refused:
                create("t1")
            assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only
        create("t2")


def test_read_only_never_touches_the_shared_mariadb_server(mariadb_database):
    with pytest.raises(ValueError), read_only(mariadb_database):
        pass


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_table_lock_blocks_ddl_until_released(request, fixture):
    database = request.getfixturevalue(fixture)
    database.execute("CREATE TABLE busy (id int)")
    with table_lock(database, "busy") as holder:
        other = database.session()
        try:
            if database.driver == "postgresql":
                other.execute("SET lock_timeout = '300ms'")
                with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                    other.execute("ALTER TABLE busy ADD COLUMN extra int")
            else:
                other.execute("SET SESSION lock_wait_timeout = 1")
                with pytest.raises(pymysql.err.OperationalError) as waited:
                    other.execute("ALTER TABLE busy ADD COLUMN extra int")
                assert waited.value.args[0] == 1205  # ER_LOCK_WAIT_TIMEOUT
        finally:
            other.close()
        holder.release()
    database.execute("ALTER TABLE busy ADD COLUMN extra int")


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_lock_helpers_see_the_sidecars_migration_lock_on_servers(request, fixture):
    database = request.getfixturevalue(fixture)
    assert lock_free(database)
    with holding_migration_lock(database, "some-other-lock"):
        assert lock_free(database), "another lock name is another lock"
    with holding_migration_lock(database):
        assert lock_holders(database)
    wait_lock_free(database, 5)


def test_lock_helpers_see_the_sqlite_flock(sqlite_database):
    sqlite_database.path.touch()
    assert lock_free(sqlite_database)
    fd = os.open(sqlite_lock_path(sqlite_database), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert lock_holders(sqlite_database) == ["flock"]
    finally:
        os.close(fd)
    assert lock_free(sqlite_database)
