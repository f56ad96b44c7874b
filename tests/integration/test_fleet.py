"""Fleets: one run migrates many databases or schemas (MIGRATE_TARGETS_FILE), each with every single-run guarantee.

Every kind of fleet the issue names: PostgreSQL schemas and databases, MariaDB databases, SQLite files. A broken
target is one that holds a table ``poison``, where a revision fails; an unreachable target is a URL to a port nothing
listens on (with a password, which no output may show).
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alembic_sidecar.settings import FLEET_SAMPLE
from tests.fixtures.databases import (MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, Database, _MySession,
                                      _pg_admin, free_port, random_name, register_secret)
from tests.fixtures.revisions import LOG_TABLE

from .conftest import assert_exit, wait_until

pytestmark = pytest.mark.integration

KINDS = ("pg-schemas", "pg-databases", "mariadb-databases", "sqlite-files")
UNREACHABLE_PASSWORD = register_secret("fleet-Unreachable-pw-93")


@dataclass
class Member:
    """One target of a test fleet: its line and a test-side view of what it holds."""

    line: str
    db: Database
    schema: str | None = None

    def _table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def has(self, table: str) -> bool:
        if self.schema:
            return bool(self.db.scalar(f"SELECT count(*) FROM pg_tables WHERE schemaname = '{self.schema}' "
                                       f"AND tablename = '{table}'"))
        return table in self.db.tables()

    def revisions(self) -> list[str]:
        if not self.has("alembic_version"):
            return []
        return sorted(row[0] for row in self.db.rows(f"SELECT version_num FROM {self._table('alembic_version')}"))

    def applied(self) -> Counter:
        """How often each logged revision ran here."""
        if not self.has(LOG_TABLE):
            return Counter()
        return Counter(row[0] for row in self.db.rows(f"SELECT revision FROM {self._table(LOG_TABLE)}"))

    def execute(self, sql: str) -> None:
        self.db.execute(sql.replace("{schema}.", f"{self.schema}." if self.schema else ""))


class Fleet:
    """Members of one kind, the base settings their lines need, and the targets file."""

    def __init__(self, kind: str, tmp_path: Path, count: int) -> None:
        self.kind, self.tmp_path = kind, tmp_path
        self.env: dict[str, str] = {}
        self._cleanups: list = []
        self.members = [self._member(index) for index in range(count)]
        self.file = tmp_path / "targets"

    def _member(self, index: int) -> Member:
        if self.kind == "pg-schemas":
            if not self.env:
                name = random_name("fleet")
                admin = _pg_admin()
                admin.execute(f'CREATE DATABASE "{name}"')
                self._cleanups.append(lambda: (admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
                                               admin.close()))
                self.base = Database("postgresql", name, f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}",
                                     dict(host=PG_HOST, port=PG_PORT, user="postgres", database=name))
                self.env = {"DATABASE_URL": self.base.url}
            schema = f"tenant_{index}"
            self.base.execute(f"CREATE SCHEMA {schema}")
            return Member(f"schema={schema}", self.base, schema)
        if self.kind == "pg-databases":
            name = random_name("fleet")
            admin = _pg_admin()
            admin.execute(f'CREATE DATABASE "{name}"')
            self._cleanups.append(lambda: (admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
                                           admin.close()))
            self.env = {"DATABASE_URL": f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"}
            return Member(f"database={name}", Database("postgresql", name, "", dict(
                host=PG_HOST, port=PG_PORT, user="postgres", database=name)))
        if self.kind == "mariadb-databases":
            name = random_name("fleet")
            admin = _MySession(host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="")
            admin.execute(f"CREATE DATABASE `{name}`")
            self._cleanups.append(lambda: (admin.execute(f"DROP DATABASE IF EXISTS `{name}`"), admin.close()))
            self.env = {"DATABASE_URL": f"mariadb://root@{MARIADB_HOST}:{MARIADB_PORT}/mysql"}
            return Member(f"database={name}", Database("mariadb", name, "", dict(
                host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="", database=name)))
        path = self.tmp_path / f"tenant_{index}.sqlite"
        return Member(f"sqlite:///{path}", Database("sqlite", str(path), "", {}, path=path))

    def write(self, lines: list[str]) -> None:
        self.file.write_text("# the fleet\n\n" + "\n".join(lines) + "\n")

    def settings(self, **extra: str) -> dict[str, str]:
        return {**self.env, "MIGRATE_TARGETS_FILE": str(self.file), "MIGRATE_LOG_FORMAT": "json",
                "MIGRATE_PARALLEL": "2", **extra}

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()


@pytest.fixture
def fleet_of(tmp_path: Path) -> Iterator:
    made: list[Fleet] = []

    def make(kind: str, count: int) -> Fleet:
        made.append(Fleet(kind, tmp_path, count))
        return made[-1]
    yield make
    for fleet in made:
        fleet.close()


def unreachable_line() -> str:
    return f"postgresql://fleet:{UNREACHABLE_PASSWORD}@127.0.0.1:{free_port()}/nowhere"


def done_events(result) -> dict[int, dict]:
    """The target_done events by the target's line number in the file (the file starts with two other lines)."""
    return {event["line"] - 2: event for event in result.named("target_done")}


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_and_an_unreachable_target_are_reported_the_rest_migrated_and_a_rerun_after_fixing_completes(
        kind, fleet_of, revisions, sidecar):
    revisions.chain(2)
    failing = revisions.failing_where("poison")
    revisions.chain(1)
    fleet = fleet_of(kind, 6)
    good, broken, spare = fleet.members[:4], fleet.members[4], fleet.members[5]
    broken.execute("CREATE TABLE {schema}.poison (id INTEGER)")
    fleet.write([good[0].line, broken.line, good[1].line, unreachable_line(), good[2].line, good[3].line])

    result = sidecar.run(env=fleet.settings(MIGRATE_CONTINUE_ON_ERROR="true", MIGRATE_WAIT_TIMEOUT="2"))

    assert_exit(result, 1)  # a failed revision needs a person: it outranks the unreachable target's 3
    events = done_events(result)
    assert sorted(events) == [1, 2, 3, 4, 5, 6]
    assert (events[2]["outcome"], events[2]["exit_code"], events[2]["kind"], events[2]["applied"]) == \
        ("failed", 1, "migration failed", 2)  # the two revisions before the failing one stay
    assert failing in events[2]["error"]
    assert (events[4]["outcome"], events[4]["exit_code"]) == ("failed", 3)
    assert "***" in events[4]["target"] and "127.0.0.1" in events[4]["target"]
    for number in (1, 3, 5, 6):
        assert (events[number]["outcome"], events[number]["exit_code"], events[number]["applied"]) == \
            ("migrated", 0, 4), events[number]
    summary = result.one("fleet_complete")
    assert (summary["targets"], summary["migrated"], summary["failed"], summary["not_started"]) == (6, 4, 2, 0)
    assert [failed["line"] - 2 for failed in summary["failed_targets"]] == [2, 4]
    for member in good:
        assert member.revisions() == [revisions.head] and set(member.applied().values()) == {1}
    assert broken.revisions() == [revisions.ids[1]]  # the two revisions before the failing one stay applied
    termination = sidecar.termination_log.read_text()
    assert termination.startswith("exit 1: 6 targets: 4 migrated") and broken.line in termination

    broken.execute("DROP TABLE {schema}.poison")
    fleet.write([good[0].line, broken.line, good[1].line, spare.line, good[2].line, good[3].line])
    rerun = sidecar.run(env=fleet.settings())

    assert_exit(rerun, 0)
    events = done_events(rerun)
    assert [events[number]["outcome"] for number in range(1, 7)] == \
        ["unchanged", "migrated", "unchanged", "migrated", "unchanged", "unchanged"]
    assert events[2]["applied"] == 2 and events[4]["applied"] == 4
    for member in fleet.members:
        assert member.revisions() == [revisions.head] and set(member.applied().values()) == {1}, member.line


@pytest.mark.parametrize("kind", ("pg-schemas", "sqlite-files"))
def test_without_continue_on_error_a_failure_starts_no_new_target(kind, fleet_of, revisions, sidecar):
    revisions.failing_where("poison")
    fleet = fleet_of(kind, 4)
    fleet.members[1].execute("CREATE TABLE {schema}.poison (id INTEGER)")
    fleet.write([member.line for member in fleet.members])

    result = sidecar.run(env=fleet.settings(MIGRATE_PARALLEL="1"))

    assert_exit(result, 1)
    assert sorted(done_events(result)) == [1, 2]
    summary = result.one("fleet_complete")
    assert (summary["migrated"], summary["failed"], summary["not_started"], summary["stopped"]) == (1, 1, 2, "failure")
    assert [member.revisions() for member in fleet.members] == [[revisions.head], [], [], []]
    assert "2 not started" in sidecar.termination_log.read_text()
    # The sample that --help and docs/operations.md show has the fields of the real events.
    sample_failed, sample_summary = (json.loads(line) for line in FLEET_SAMPLE.splitlines())
    assert set(done_events(result)[2]) == set(sample_failed)
    assert set(summary) == set(sample_summary)
    assert set(summary["failed_targets"][0]) == set(sample_summary["failed_targets"][0])


@pytest.mark.parametrize("kind", ("pg-databases", "mariadb-databases"))
def test_a_failed_canary_starts_nothing_else(kind, fleet_of, revisions, sidecar):
    revisions.chain(1)
    revisions.failing_where("poison")
    fleet = fleet_of(kind, 4)
    fleet.members[0].execute("CREATE TABLE {schema}.poison (id INTEGER)")
    fleet.write([member.line for member in fleet.members])

    result = sidecar.run(env=fleet.settings(MIGRATE_CANARY="2", MIGRATE_CONTINUE_ON_ERROR="true",
                                            MIGRATE_PARALLEL="4"))

    assert_exit(result, 1)
    assert sorted(done_events(result)) == [1, 2]  # both canaries ran; nothing after them
    summary = result.one("fleet_complete")
    assert (summary["failed"], summary["not_started"], summary["stopped"]) == (1, 2, "canary")
    assert fleet.members[1].revisions() == [revisions.head]
    assert [member.revisions() for member in fleet.members[2:]] == [[], []]


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_mid_fleet_leaves_every_target_consistent_and_unlocked_and_a_rerun_resumes(
        kind, fleet_of, revisions, sidecar, tmp_path):
    marker = tmp_path / "slow-started"
    # The first revision creates its table IF NOT EXISTS too: a target interrupted inside it on MySQL/MariaDB keeps
    # the table (implicit DDL commit, as documented) and its rerun must be able to run it again.
    revisions.slow(0)
    revisions.slow(30, marker)
    revisions.chain(1)
    fleet = fleet_of(kind, 5)
    fleet.write([member.line for member in fleet.members])

    running = sidecar.start(env=fleet.settings(MIGRATE_PARALLEL="2"))
    wait_until(marker.exists, timeout=30, what="a slow revision to start")
    running.send(signal.SIGTERM)
    result = running.wait(30)

    assert_exit(result, 143)
    events = done_events(result)
    assert result.one("fleet_complete")["not_started"] == 5 - len(events) >= 3
    assert any(event["outcome"] == "interrupted" and event["exit_code"] == 143 for event in events.values())
    for member in fleet.members:
        # Consistent: the version table names a revision whose work is all there, each revision's work once.
        recorded = member.revisions()
        assert recorded in ([], [revisions.ids[0]]), (member.line, recorded)
        assert set(member.applied()) == set(recorded)

    rerun = sidecar.run(env=fleet.settings(MIGRATE_LOCK_TIMEOUT="5", TEST_SLOW_SECONDS="0"))

    assert_exit(rerun, 0)  # a lock left behind would fail it with exit 4
    for member in fleet.members:
        assert member.revisions() == [revisions.head] and set(member.applied().values()) == {1}, member.line


@pytest.mark.parametrize("kind", KINDS)
def test_two_fleet_runs_at_once_apply_every_revision_exactly_once(kind, fleet_of, revisions, sidecar):
    revisions.chain(3)
    fleet = fleet_of(kind, 6)
    fleet.write([member.line for member in fleet.members])

    first = sidecar.start(env=fleet.settings(MIGRATE_PARALLEL="3"))
    second = sidecar.start(env=fleet.settings(MIGRATE_PARALLEL="3"))
    results = [first.wait(120), second.wait(120)]

    for result in results:
        assert_exit(result, 0)
    for member in fleet.members:
        assert member.revisions() == [revisions.head]
        assert member.applied() == Counter({rev: 1 for rev in revisions.ids}), member.line
    applied = [event["applied"] for result in results for event in result.named("target_done")]
    assert sorted(applied) == [0] * 6 + [3] * 6  # each target migrated by one run, found done by the other


def test_each_shard_runs_the_targets_at_its_positions_and_no_other(fleet_of, revisions, sidecar):
    revisions.chain(1)
    fleet = fleet_of("pg-schemas", 5)
    fleet.write([member.line for member in fleet.members])

    shard_one = sidecar.run(env=fleet.settings(MIGRATE_SHARDS="2", JOB_COMPLETION_INDEX="1"))

    assert_exit(shard_one, 0)
    assert sorted(done_events(shard_one)) == [2, 4]
    assert [bool(member.revisions()) for member in fleet.members] == [False, True, False, True, False]
    assert shard_one.one("fleet_complete")["shard"] == 1

    shard_zero = sidecar.run(env=fleet.settings(MIGRATE_SHARDS="2", JOB_COMPLETION_INDEX="0"))

    assert_exit(shard_zero, 0)
    assert sorted(done_events(shard_zero)) == [1, 3, 5]
    for member in fleet.members:
        assert member.applied() == Counter({revisions.head: 1})


def test_a_target_whose_login_is_refused_fails_with_exit_5_and_no_password_in_any_output(
        pg_password_server, fleet_of, revisions, sidecar):
    from urllib.parse import quote

    revisions.chain(1)
    fleet = fleet_of("sqlite-files", 1)
    server = pg_password_server
    wrong = register_secret("fleet-Wrong-pw-4711")
    with server.database() as database:
        fleet.write([fleet.members[0].line, database.url,
                     f"postgresql://{quote(server.user, safe='')}:{wrong}@{server.host}:{server.port}/postgres"])

        result = sidecar.run(env=fleet.settings(MIGRATE_CONTINUE_ON_ERROR="true"))  # checks for every secret

        assert_exit(result, 5)
        events = done_events(result)
        assert [events[number]["exit_code"] for number in (1, 2, 3)] == [0, 0, 5]
        assert database.revisions() == [revisions.head]


@pytest.mark.parametrize(("bad", "extra", "words"), [
    (f"postgresql://app:{UNREACHABLE_PASSWORD}@127.0.0.1:0/app", {}, "MIGRATE_TARGETS_FILE line 5"),
    ("schema=no-dashes", {}, "MIGRATE_TARGETS_FILE line 5"),
    ("schema=tenant_2", {"MIGRATE_SHARDS": "2"}, "needs JOB_COMPLETION_INDEX"),
], ids=["port-zero", "bad-schema-name", "shards-without-index"])
def test_a_bad_list_is_refused_before_any_target_is_touched(bad, extra, words, fleet_of, revisions, sidecar):
    from .conftest import assert_clean_failure

    revisions.chain(1)
    fleet = fleet_of("pg-schemas", 2)
    fleet.write([fleet.members[0].line, fleet.members[1].line, bad])

    result = sidecar.run(env=fleet.settings(**extra))

    assert_clean_failure(result, 2, words)
    assert not result.named("target_done") and not result.named("database_ready")
    assert [member.revisions() for member in fleet.members] == [[], []]
    assert sidecar.termination_log.read_text().startswith("exit 2 (configuration error): ")


def test_a_fleet_and_a_single_run_of_the_same_schema_never_apply_a_revision_twice(fleet_of, revisions, sidecar,
                                                                                     tmp_path):
    marker = tmp_path / "slow-started"
    revisions.chain(1)
    revisions.slow(2, marker)
    fleet = fleet_of("pg-schemas", 2)
    fleet.write([member.line for member in fleet.members])
    schema = fleet.members[0].schema
    single = sidecar.start(env={"DATABASE_URL": f"{fleet.base.url}?options=-csearch_path%3D{schema}",
                                "MIGRATE_VERSION_TABLE_SCHEMA": schema, "MIGRATE_LOG_FORMAT": "json"})
    wait_until(marker.exists, timeout=30, what="the single run's slow revision to start")

    result = sidecar.run(env=fleet.settings())

    assert_exit(single.wait(60), 0)
    assert_exit(result, 0)
    assert done_events(result)[1]["applied"] == 0  # it waited for the single run's lock, then found it done
    waited = [event for event in result.named("lock_acquired") if event["target"] == f"schema={schema}"]
    assert waited and waited[0]["waited_ms"] > 200, waited
    for member in fleet.members:
        assert member.applied() == Counter({rev: 1 for rev in revisions.ids}), member.line
