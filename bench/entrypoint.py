"""Benchmark `alembic-sidecar upgrade` against plain `alembic upgrade head` from an `alembic init -t async` project.

Both tools run as subprocesses, side by side in one run, against the same database server and the same generated
revision files:

1. apply N trivial revisions (default 500) to a fresh database;
2. a no-op run when the database is already at head with M revisions present (default 1000), beside the floor:
   a bare ``python -c`` process that imports the driver (asyncpg, aiomysql; sqlite3), logs in once and reads the
   version table, the least any tool could do;
3. peak memory (max RSS of the child, as GNU time reports it) of that no-op run;
4. detection (sidecar only, PostgreSQL): the time from a database that was down accepting a login to the sidecar
   starting its upgrade, read from the sidecar's JSON log timestamps.

Run it from the repository root: ``.venv/bin/python bench/entrypoint.py`` (``--help`` for the options). It prints a
table and writes it into ``bench/RESULTS.md`` between the ``entrypoint`` markers. Exit status: 0 when every figure was
measured (a missed target is a result, not a failure), 1 when the benchmark itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import dataclasses
import datetime as dt
import glob
import os
import platform
import random
import re
import shlex
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The test fixtures' throwaway PostgreSQL servers and log parsing serve here too; `python bench/...` puts only bench/
# on sys.path.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.fixtures.databases import PgServer  # noqa: E402
from tests.fixtures.output import log_events  # noqa: E402

# Every run goes through GNU time for its peak RSS: the ru_maxrss that os.wait4 gives for our own child starts at
# this process's RSS (Linux carries the pre-exec high-water mark over exec), so it read ~33 MiB for anything smaller.
GNU_TIME = Path("/usr/bin/time")
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- entrypoint:start -->", "<!-- entrypoint:end -->"
SIDECAR, PLAIN = "alembic-sidecar", "plain alembic"
# The same project with one change to its env.py, for reference: the sidecar's default transaction policy.
PLAIN_TPM = "plain alembic + transaction_per_migration"
# The least a no-op can cost: a bare Python process that imports the driver, logs in once, reads the version table.
FLOOR = "floor"

# Targets (ratio sidecar/reference at most ...) or an absolute bound: no-op, apply and the floor from issue 7
# (item 9), memory and detection from issue 2.
NOOP_TARGET, APPLY_TARGET, FLOOR_TARGET, MEMORY_TARGET, DETECTION_TARGET_S = 0.25, 1.0, 1.3, 1.0, 0.5

# Events after `database_ready` that mean the sidecar has started its upgrade, earliest first.
UPGRADE_START_EVENTS = ("lock_waiting", "lock_acquired", "revision_applied", "migration_complete")


class BenchError(Exception):
    """The benchmark itself could not take a measurement (a tool failed, a server is missing, ...)."""


# --------------------------------------------------------------------------------------------------------------------
# Revision files


REVISION = '''"""bench revision {n:04d}

Revision ID: {rev}
Revises: {down}
Create Date: 2026-11-21 00:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down_repr}
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    {downgrade}
'''


def revision_id(n: int) -> str:
    return f"b{n:04d}"


def revisions_directory(directory: Path, count: int, text: Callable[[int], str], name: str = "bench") -> Path:
    """`count` revision files, ``text(n)`` each, written once: a directory that already holds them is kept."""
    marker = directory / ".complete"
    if marker.exists() and marker.read_text() == str(count):
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for n in range(1, count + 1):
        (directory / f"{n:04d}_{name}.py").write_text(text(n))
    # Both tools load revision files through importlib, which reads __pycache__: compile once so that neither
    # tool's first timed run pays for the other's bytecode.
    compileall.compile_dir(str(directory), quiet=1)
    marker.write_text(str(count))
    return directory


def write_revisions(directory: Path, count: int) -> Path:
    """Write `count` chained revisions: odd ones create a small table, even ones add a column to it."""
    def text(n: int) -> str:
        if n % 2:
            upgrade = (f'op.create_table("bench_{n:04d}", sa.Column("id", sa.Integer, primary_key=True), '
                       f'sa.Column("name", sa.String(50)))')
            downgrade = f'op.drop_table("bench_{n:04d}")'
        else:
            upgrade = f'op.add_column("bench_{n - 1:04d}", sa.Column("c_{n:04d}", sa.Integer, nullable=True))'
            downgrade = f'op.drop_column("bench_{n - 1:04d}", "c_{n:04d}")'
        down = repr(revision_id(n - 1)) if n > 1 else "None"
        return REVISION.format(n=n, rev=revision_id(n), down=revision_id(n - 1) if n > 1 else "",
                               down_repr=down, upgrade=upgrade, downgrade=downgrade)
    return revisions_directory(directory, count, text)


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def publish(section: str, start: str, end: str, *, write: bool = True) -> None:
    """Print a benchmark's section and, unless told not to, put it into RESULTS.md between its markers."""
    print(section)
    if write:
        write_results(section, start, end)


def machine_block(facts: Sequence[str]) -> str:
    return "Machine:\n" + "\n".join("- " + fact for fact in facts)


# --------------------------------------------------------------------------------------------------------------------
# Database servers


class Backend:
    """One database server: URLs for both tools, and throwaway databases on it."""

    name: str

    def url(self, database: str) -> str:
        raise NotImplementedError

    def create(self, database: str) -> None:
        raise NotImplementedError

    def drop(self, database: str) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def floor(self, database: str) -> list[str]:
        """``python`` arguments of the floor: import the driver, log in once, print the version table's rows."""
        raise NotImplementedError


# The floor programs, as short as a user would write them: no timeouts, no checks, the driver's defaults.
FLOOR_PG = """import asyncio, sys
import asyncpg
async def main(host, port, user, database):
    connection = await asyncpg.connect(host=host, port=int(port), user=user, database=database)
    try:
        print(*[row[0] for row in await connection.fetch('SELECT version_num FROM alembic_version')])
    finally:
        await connection.close()
asyncio.run(main(*sys.argv[1:]))
"""
FLOOR_MYSQL = """import asyncio, sys
import aiomysql
async def main(host, port, user, database):
    connection = await aiomysql.connect(host=host, port=int(port), user=user, password='', db=database)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute('SELECT version_num FROM alembic_version')
            print(*[row[0] for row in await cursor.fetchall()])
    finally:
        connection.close()
asyncio.run(main(*sys.argv[1:]))
"""
FLOOR_SQLITE = """import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
try:
    print(*[row[0] for row in connection.execute('SELECT version_num FROM alembic_version')])
finally:
    connection.close()
"""


class PostgreSQL(Backend):
    name = "postgresql"

    def __init__(self, host: str, port: int, user: str) -> None:
        self.host, self.port, self.user = host, port, user

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    async def _admin(self, *statements: str) -> str:
        import asyncpg
        conn = await asyncpg.connect(host=self.host, port=self.port, user=self.user, database="postgres")
        try:
            result = ""
            for statement in statements:
                result = await conn.fetchval(statement) if statement.startswith("SHOW") else await conn.execute(
                    statement)
            return str(result)
        finally:
            await conn.close()

    def create(self, database: str) -> None:
        asyncio.run(self._admin(f'CREATE DATABASE "{database}"'))

    def drop(self, database: str) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))

    def version(self) -> str:
        return "PostgreSQL " + asyncio.run(self._admin("SHOW server_version"))

    def floor(self, database: str) -> list[str]:
        return ["-c", FLOOR_PG, self.host, str(self.port), self.user, database]


class MariaDB(Backend):
    name = "mariadb"

    def __init__(self, host: str, port: int, user: str) -> None:
        self.host, self.port, self.user = host, port, user

    def url(self, database: str) -> str:
        return f"mysql+aiomysql://{self.user}@{self.host}:{self.port}/{database}"

    async def _admin(self, statement: str) -> str:
        import aiomysql
        conn = await aiomysql.connect(host=self.host, port=self.port, user=self.user, password="")
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(statement)
                row = await cursor.fetchone()
                return str(row[0]) if row else ""
        finally:
            conn.close()

    def create(self, database: str) -> None:
        asyncio.run(self._admin(f"CREATE DATABASE `{database}`"))

    def drop(self, database: str) -> None:
        asyncio.run(self._admin(f"DROP DATABASE IF EXISTS `{database}`"))

    def version(self) -> str:
        return "MariaDB " + asyncio.run(self._admin("SELECT VERSION()"))

    def floor(self, database: str) -> list[str]:
        return ["-c", FLOOR_MYSQL, self.host, str(self.port), self.user, database]


class SQLite(Backend):
    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def url(self, database: str) -> str:
        return f"sqlite+aiosqlite:///{self.directory / database}.db"

    def create(self, database: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def drop(self, database: str) -> None:
        for path in glob.glob(f"{self.directory / database}.db*"):
            os.unlink(path)

    def version(self) -> str:
        import sqlite3
        return "SQLite " + sqlite3.sqlite_version

    def floor(self, database: str) -> list[str]:
        return ["-c", FLOOR_SQLITE, f"{self.directory / database}.db"]


@contextlib.contextmanager
def scratch_database(backend: Backend, label: str) -> Iterator[str]:
    database = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    backend.create(database)
    try:
        yield database
    finally:
        backend.drop(database)


# --------------------------------------------------------------------------------------------------------------------
# Running the two tools


@dataclasses.dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float  # user + system time of the child: what machine load does not inflate
    max_rss_kib: int
    stdout: str
    stderr: str


class Tools:
    """Runs `alembic-sidecar upgrade` and plain `alembic upgrade head` the same way: a subprocess, timed, wait4'ed."""

    def __init__(self, bin_dir: Path) -> None:
        bin_dir = bin_dir.absolute()
        self.sidecar = bin_dir / "alembic-sidecar"
        self.alembic = bin_dir / "alembic"
        self.python = bin_dir / "python"  # the interpreter both tools run on (their scripts' #! line)
        self.plain_dir = WORK / "plain"
        self.plain_tpm_dir = WORK / "plain-tpm"
        self.logs = WORK / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        if not os.access(GNU_TIME, os.X_OK):
            raise BenchError(f"{GNU_TIME} (GNU time) measures peak memory; install it: apt-get install time")
        if not os.access(self.alembic, os.X_OK):
            raise BenchError(f"{self.alembic} is not installed; run {ROOT}/tests/run -m unit, which makes .venv")
        self.base_env = {k: v for k, v in os.environ.items()
                         if not k.startswith(("DB_", "MIGRATE_", "PYTHON"))
                         and k not in ("DATABASE_URL", "ALEMBIC_CONFIG")}

    def init_plain(self) -> None:
        """`alembic init -t async` once, as a user would, into bench/.work/plain (and a copy, plain-tpm)."""
        if not (self.plain_dir / "alembic.ini").exists():
            self.plain_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(self.alembic), "init", "-t", "async", "alembic"], cwd=self.plain_dir, check=True,
                           stdout=subprocess.DEVNULL, env=self.base_env)
        if not (self.plain_tpm_dir / "alembic.ini").exists():
            shutil.copytree(self.plain_dir, self.plain_tpm_dir, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("bench-*.ini", "__pycache__"))
            env_py = self.plain_tpm_dir / "alembic" / "env.py"
            old = "context.configure(connection=connection, target_metadata=target_metadata)"
            if old not in env_py.read_text():
                raise BenchError(f"the generated {env_py} has no line {old!r} to patch")
            env_py.write_text(env_py.read_text().replace(
                old, "context.configure(connection=connection, target_metadata=target_metadata, "
                     "transaction_per_migration=True)"))

    def plain_ini(self, project: Path, url: str, versions: Path) -> Path:
        """The generated alembic.ini with only its URL and version_locations changed."""
        text = (project / "alembic.ini").read_text()
        text, urls = re.subn(r"(?m)^sqlalchemy\.url = .*$", lambda _: "sqlalchemy.url = " + url.replace("%", "%%"),
                             text)
        text, scripts = re.subn(r"(?m)^(script_location = .*)$",
                                lambda m: f"{m.group(1)}\nversion_locations = {versions}", text)
        if urls != 1 or scripts != 1:
            raise BenchError("the generated alembic.ini has no sqlalchemy.url or script_location line")
        path = project / f"bench-{uuid.uuid4().hex[:8]}.ini"
        path.write_text(text)
        return path

    def command(self, tool: str, url: str, versions: Path) -> tuple[list[str], dict[str, str], Path, Path | None]:
        """argv, environment, working directory, and the file to delete afterwards."""
        if tool == SIDECAR:
            if not os.access(self.sidecar, os.X_OK):
                raise BenchError(f"{self.sidecar} is not installed; run: cd {ROOT} && .venv/bin/pip install -q -e . "
                                 "--no-deps")
            env = dict(self.base_env, DATABASE_URL=url, MIGRATE_VERSIONS_DIR=str(versions), MIGRATE_LOG_FORMAT="json",
                       MIGRATE_TERMINATION_LOG=str(WORK / "termination-log"))
            return [str(self.sidecar), "upgrade"], env, WORK, None
        project = self.plain_tpm_dir if tool == PLAIN_TPM else self.plain_dir
        ini = self.plain_ini(project, url, versions)
        return [str(self.alembic), "-c", str(ini), "upgrade", "head"], dict(self.base_env), project, ini

    def run(self, tool: str, url: str, versions: Path, tag: str) -> Run:
        argv, env, cwd, scratch = self.command(tool, url, versions)
        return self.spawn(tool, argv, env, cwd, scratch, tag)

    def run_floor(self, backend: Backend, database: str, tag: str) -> Run:
        """The floor, in the same interpreter and environment as the tools."""
        return self.spawn(FLOOR, [str(self.python), *backend.floor(database)], dict(self.base_env), WORK, None, tag)

    def spawn(self, tool: str, argv: list[str], env: dict[str, str], cwd: Path, scratch: Path | None,
              tag: str, on_start: Callable[[int], object] | None = None) -> Run:
        """Run ``argv`` under GNU time; ``on_start`` gets the pid of that time process as soon as it exists."""
        out_path = self.logs / f"{tag}-{tool.replace(' ', '-')}.out"
        err_path = self.logs / f"{tag}-{tool.replace(' ', '-')}.err"
        rss_path = self.logs / f"{tag}-{tool.replace(' ', '-')}.rss"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            started = time.perf_counter()
            process = subprocess.Popen([str(GNU_TIME), "-o", str(rss_path), "-f", "%M", *argv], env=env, cwd=cwd,
                                       stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            if on_start is not None:
                on_start(process.pid)
            # time's usage includes the tool's (a reaped child); its few ms of its own are noise here
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
        if scratch:
            scratch.unlink()
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout, stderr = out_path.read_text(), err_path.read_text()
        if process.returncode != 0:
            tail = "\n".join((stdout + stderr).strip().splitlines()[-8:])
            raise BenchError(f"{tool} exited {process.returncode} ({shlex.join(argv)}):\n{tail}")
        max_rss_kib = int(rss_path.read_text().split()[-1])  # GNU time's %M: KiB
        return Run(seconds, usage.ru_utime + usage.ru_stime, max_rss_kib, stdout, stderr)


# --------------------------------------------------------------------------------------------------------------------
# Measurements


@dataclasses.dataclass
class Row:
    measure: str
    backend: str
    sidecar: float | None
    plain: float | None
    unit: str
    target: str
    verdict: str
    samples: str = ""
    reference: str = PLAIN  # what `plain` holds: plain alembic, or the floor

    @property
    def ratio(self) -> str:
        if self.sidecar is None or self.plain is None or not self.plain:
            return "-"
        return f"{self.sidecar / self.plain:.2f}x"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:g} {unit}"


def samples_text(values: dict[str, list[float]], unit: str) -> str:
    return "; ".join(f"{tool}: " + ", ".join(fmt(v, unit).split()[0] for v in vs) for tool, vs in values.items())


def ratio_row(measure: str, backend: str, values: dict[str, list[float]], unit: str, limit: float | None,
              reference: str = PLAIN) -> Row:
    """Medians of the sidecar and `reference`; `limit` None makes an informational row without a verdict."""
    sidecar, plain = statistics.median(values[SIDECAR]), statistics.median(values[reference])
    if limit is None:
        return Row(measure, backend, sidecar, plain, unit, "(information)", "-", samples_text(values, unit),
                   reference)
    verdict = "PASS" if sidecar <= limit * plain else "MISS"
    name = "plain" if reference == PLAIN else reference
    return Row(measure, backend, sidecar, plain, unit, f"<= {limit:g}x {name}", verdict, samples_text(values, unit),
               reference)


def alternate(repeat: int, tools: Sequence[str] = (SIDECAR, PLAIN)) -> Iterator[tuple[int, str]]:
    """Interleave the tools and rotate who goes first, so drift on the machine hurts all alike."""
    for i in range(repeat):
        shift = i % len(tools)
        for tool in (*tools[shift:], *tools[:shift]):
            yield i, tool


def apply_runs(tools: Tools, backend: Backend, versions: Path, count: int,
               schedule: Sequence[tuple[int, str]], keep: str | None = None) -> dict[str, list[Run]]:
    """An apply of `count` revisions for each (round, tool) of `schedule`, each to a fresh database.

    With `keep`, the first run goes to that database instead, which stays at head for the caller."""
    runs: dict[str, list[Run]] = {tool: [] for _, tool in schedule}
    for n, (i, tool) in enumerate(schedule):
        target = contextlib.nullcontext(keep) if keep and n == 0 else scratch_database(backend, "apply")
        with target as database:
            run = tools.run(tool, backend.url(database), versions, f"{backend.name}-apply-{count}-{i}")
        if tool == SIDECAR:
            applied = [e for e in log_events(run.stdout) if e.get("event") == "revision_applied"]
            if len(applied) != count:
                raise BenchError(f"the sidecar logged {len(applied)} revision_applied events, expected {count}")
        elif (ran := run.stderr.count("Running upgrade ")) != count:
            raise BenchError(f"plain alembic logged {ran} 'Running upgrade' lines, expected {count}")
        runs[tool].append(run)
        progress(f"{backend.name} apply {count} #{i + 1} {tool}: {run.seconds:.3f} s (CPU {run.cpu_seconds:.3f} s)")
    return runs


def noop_runs(tools: Tools, backend: Backend, versions: Path, count: int, schedule: Sequence[tuple[int, str]],
              at_head: str | None = None, warm_up: bool = True) -> dict[str, list[Run]]:
    """A no-op run for each (round, tool) of `schedule` against one database at head, each tool warmed up first.

    Without `at_head`, a scratch database is brought to head first by plain alembic (not timed)."""
    runs: dict[str, list[Run]] = {tool: [] for _, tool in schedule}
    with contextlib.nullcontext(at_head) if at_head else scratch_database(backend, "noop") as database:
        url = backend.url(database)

        def run_one(tool: str, tag: str) -> Run:
            if tool == FLOOR:
                return tools.run_floor(backend, database, tag)
            return tools.run(tool, url, versions, tag)

        if not at_head:
            tools.run(PLAIN, url, versions, f"{backend.name}-noop-setup")
        for tool in runs if warm_up else ():  # warm-up: page cache, the tools' own bytecode
            run_one(tool, f"{backend.name}-noop-warmup")
        for i, tool in schedule:
            run = run_one(tool, f"{backend.name}-noop-{count}-{i}")
            if tool == SIDECAR:
                summary = [e for e in log_events(run.stdout) if e.get("event") == "migration_complete"]
                if not summary or summary[-1].get("applied") not in (0, "0"):
                    raise BenchError("the sidecar's no-op run did not log migration_complete with applied=0")
            elif tool == FLOOR and run.stdout.split() != [revision_id(count)]:
                raise BenchError(f"the floor read {run.stdout.strip()!r} from the version table, expected "
                                 f"{revision_id(count)}")
            runs[tool].append(run)
            progress(f"{backend.name} no-op {count} #{i + 1} {tool}: {run.seconds:.3f} s "
                     f"(CPU {run.cpu_seconds:.3f} s), {run.max_rss_kib / 1024:.1f} MiB")
    return runs


def wall(runs: dict[str, list[Run]]) -> dict[str, list[float]]:
    return {tool: [run.seconds for run in rs] for tool, rs in runs.items()}


def cpu_time(runs: dict[str, list[Run]]) -> dict[str, list[float]]:
    return {tool: [run.cpu_seconds for run in rs] for tool, rs in runs.items()}


def bench_apply(tools: Tools, backend: Backend, versions: Path, count: int, repeat: int) -> list[Row]:
    runs = apply_runs(tools, backend, versions, count, list(alternate(repeat, (SIDECAR, PLAIN, PLAIN_TPM))))
    values, cpu = wall(runs), cpu_time(runs)
    tpm = {SIDECAR: values[SIDECAR], PLAIN: values[PLAIN_TPM]}
    tpm_cpu = {SIDECAR: cpu[SIDECAR], PLAIN: cpu[PLAIN_TPM]}
    reference = [ratio_row(f"apply {count}, plain with `transaction_per_migration=True` (the sidecar's default)",
                           backend.name, tpm, "s", None),
                 ratio_row(f"apply {count}, plain with `transaction_per_migration=True`: CPU time", backend.name,
                           tpm_cpu, "s", None)]
    for row in reference:
        row.samples = ""  # already listed with the apply rows
    return [ratio_row(f"apply {count} revisions", backend.name, values, "s", APPLY_TARGET),
            ratio_row(f"apply {count} revisions: CPU time of the process", backend.name, cpu, "s", None),
            *reference]


def bench_noop(tools: Tools, backend: Backend, versions: Path, count: int, repeat: int) -> list[Row]:
    runs = noop_runs(tools, backend, versions, count, list(alternate(repeat, (SIDECAR, PLAIN, FLOOR))))
    times, cpu = wall(runs), cpu_time(runs)
    rss = {tool: [run.max_rss_kib / 1024 for run in rs] for tool, rs in runs.items()}
    floor = [ratio_row(f"no-op at head ({count} revisions) vs the floor", backend.name, times, "s", FLOOR_TARGET,
                       FLOOR),
             ratio_row(f"no-op at head ({count} revisions) vs the floor: CPU time", backend.name, cpu, "s", None,
                       FLOOR),
             ratio_row(f"peak RSS of the no-op ({count} revisions) vs the floor", backend.name, rss, "MiB", None,
                       FLOOR)]
    for row in floor:
        row.samples = ""  # already listed with the rows against plain alembic
    return [ratio_row(f"no-op at head ({count} revisions)", backend.name, times, "s", NOOP_TARGET),
            ratio_row(f"no-op at head ({count} revisions): CPU time of the process", backend.name, cpu, "s", None),
            ratio_row(f"peak RSS of the no-op ({count} revisions)", backend.name, rss, "MiB", MEMORY_TARGET),
            *floor]


# --------------------------------------------------------------------------------------------------------------------
# Detection: a PostgreSQL cluster of our own that starts while the sidecar waits for it


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def pg_login(port: int, user: str = "postgres", database: str = "postgres") -> bool:
    """A complete login (StartupMessage .. ReadyForQuery) with the bare wire protocol: cheap enough to poll at 2 ms."""
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            while True:
                kind = recv_exact(sock, 1)
                body = recv_exact(sock, struct.unpack("!i", recv_exact(sock, 4))[0] - 4)
                if kind == b"E" or (kind == b"R" and struct.unpack("!i", body[:4])[0] != 0):
                    return False  # "the database system is starting up", or a password was asked for
                if kind == b"Z":
                    sock.sendall(b"X\0\0\0\4")
                    return True
    except OSError:
        return False


def event_time(event: dict[str, object]) -> float:
    stamp = dt.datetime.fromisoformat(str(event["timestamp"]))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def bench_detection(tools: Tools, versions: Path, repeat: int, pg_bin: Path | None, os_user: str,
                    delay: tuple[float, float], seed: int) -> list[Row]:
    """Sidecar started against a server that is down; the server starts after a random delay."""
    chooser = random.Random(seed)
    ready_deltas: list[float] = []
    start_deltas: list[float] = []
    late = 0
    for i in range(3 * repeat):
        if len(ready_deltas) == repeat:
            break
        # A fresh server each run (initdb is not timed): every run starts from a database without revisions.
        server = PgServer(host_auth="trust", bindir=pg_bin, os_user=os_user)
        try:
            accepted, events = _detection_run(tools, server, versions, chooser.uniform(*delay), i)
        finally:
            server.stop()
        ready = [e for e in events if e.get("event") == "database_ready"]
        if not ready:
            raise BenchError(f"the sidecar logged no database_ready event; see {tools.logs}/detect-{i}.out")
        if ready[0].get("attempts") == 1:
            # Its first login worked: the sidecar was still starting up when the server came up, so this
            # run measured its start-up, not its detection. Not a sample (counted in the report).
            late += 1
            progress(f"detection #{i + 1}: the sidecar had not started waiting yet; run discarded")
            continue
        ready_at = event_time(ready[0])
        later = [event_time(e) for e in events if e.get("event") in UPGRADE_START_EVENTS
                 and event_time(e) >= ready_at]
        ready_deltas.append(ready_at - accepted)
        start_deltas.append((min(later) if later else ready_at) - accepted)
        progress(f"detection #{i + 1}: database_ready +{ready_deltas[-1]:.3f} s, "
                 f"upgrade start +{start_deltas[-1]:.3f} s after the first accepted login")
    if not ready_deltas:
        raise BenchError(f"all {late} detection runs started the server before the sidecar waited; "
                         "raise --detect-delay")
    note = f" ({late} run(s) discarded: the sidecar was still starting up)" if late else ""
    ready_median, start_median = statistics.median(ready_deltas), statistics.median(start_deltas)
    return [
        Row("detection: accepts login -> `database_ready`", "postgresql", ready_median, None, "s",
            f"< {DETECTION_TARGET_S:g} s", "PASS" if ready_median < DETECTION_TARGET_S else "MISS",
            samples_text({SIDECAR: ready_deltas}, "s") + note),
        Row("detection: accepts login -> upgrade starts (first lock/revision event)", "postgresql", start_median,
            None, "s", f"< {DETECTION_TARGET_S:g} s", "PASS" if start_median < DETECTION_TARGET_S else "MISS",
            samples_text({SIDECAR: start_deltas}, "s") + note),
    ]


def _detection_run(tools: Tools, server: PgServer, versions: Path, delay: float,
                   i: int) -> tuple[float, list[dict[str, object]]]:
    """One sidecar run against the down server; returns when the server first accepted a login, and the log."""
    url = f"postgresql+asyncpg://postgres@{server.host}:{server.port}/postgres"
    argv, env, cwd, _ = tools.command(SIDECAR, url, versions)
    env["MIGRATE_WAIT_TIMEOUT"] = "60"
    out_path = tools.logs / f"detect-{i}.out"
    with open(out_path, "w") as out, open(tools.logs / f"detect-{i}.err", "w") as err:
        sidecar = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            time.sleep(delay)
            if sidecar.poll() is not None:
                raise BenchError(f"the sidecar exited {sidecar.returncode} before the database started; "
                                 f"see {out_path}")
            server.launch()
            deadline = time.monotonic() + 60
            while True:
                attempt = time.time()  # resolution: one poll interval plus one login, a few ms
                if pg_login(server.port):
                    accepted = attempt
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"the temporary server never accepted a login; its log ends:\n"
                                     f"{server.log_tail()}")
                time.sleep(0.002)
            code = sidecar.wait(120)
        except BaseException:
            sidecar.kill()
            sidecar.wait()
            raise
    if code != 0:
        raise BenchError(f"the sidecar exited {code} in the detection run; see {out_path}")
    return accepted, log_events(out_path.read_text())


# --------------------------------------------------------------------------------------------------------------------
# Report


def machine_facts(backends: Sequence[Backend], bin_dir: Path) -> list[str]:
    def version_of(module: str) -> str:
        from importlib import metadata
        try:
            return metadata.version(module)
        except metadata.PackageNotFoundError:
            return "?"
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    python = subprocess.run([str(bin_dir / "python"), "-c", "import sys; print(sys.version.split()[0])"],
                            capture_output=True, text=True).stdout.strip() or platform.python_version()
    facts = [
        f"nproc: {len(os.sched_getaffinity(0))} ({cpu})",
        f"kernel: {platform.system()} {platform.release()}",
        f"python: {python}; alembic {version_of('alembic')}, SQLAlchemy {version_of('sqlalchemy')}, "
        f"asyncpg {version_of('asyncpg')}, aiomysql {version_of('aiomysql')}, alembic-sidecar "
        f"{version_of('alembic-sidecar')}",
    ]
    revision = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip()
    if revision:
        facts.append(f"repository at {revision}")
    for backend in backends:
        with contextlib.suppress(Exception):
            facts.append(f"{backend.name}: {backend.version()}")
    return facts


def table(rows: Sequence[Row]) -> str:
    lines = ["| measurement | database | alembic-sidecar | plain alembic (or floor) | ratio | target | result |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        reference = fmt(row.plain, row.unit) + (f" ({row.reference})" if row.reference != PLAIN else "")
        lines.append(f"| {row.measure} | {row.backend} | {fmt(row.sidecar, row.unit)} | {reference} "
                     f"| {row.ratio} | {row.target} | {row.verdict} |")
    return "\n".join(lines)


def report(rows: Sequence[Row], facts: Sequence[str], command: str, args: argparse.Namespace, started: str,
           errors: Sequence[str]) -> str:
    samples = "\n".join(f"- {row.measure} ({row.backend}): {row.samples}" for row in rows if row.samples)
    broken = "".join(f"\n**Not measured:** {error}\n" for error in errors)
    low, high = args.detect_delay
    return f"""{START}
## Entrypoint: `alembic-sidecar upgrade` vs plain `alembic upgrade head`

Produced by `{command}` on {started}.

{table(rows)}
{broken}
How: medians of {args.repeat_apply} apply runs, {args.repeat_noop} no-op runs and {args.repeat_detect} detection
runs. A time is the wall time of the whole process (start-up, imports, connect, work, exit); both tools run as
subprocesses, interleaved, against the same server and the same generated revision files (odd revisions create a
small table, even ones add a column; bytecode compiled beforehand). Plain alembic is an `alembic init -t async`
project with its generated `env.py` unchanged (one transaction for the whole upgrade, no lock, no wait); the
`transaction_per_migration` rows use a copy whose `env.py` differs only by that option, the sidecar's default. The
sidecar runs with its defaults (wait, lock, one transaction per migration, JSON logs). The floor is the least a
no-op can do: `python -c` on the same interpreter that imports the driver (asyncpg; aiomysql; sqlite3, which the
sidecar's SQLite fast path uses too), logs in once with the driver's defaults, prints the rows of
`SELECT version_num FROM alembic_version` and exits; it runs interleaved with the two tools in the no-op rounds, and
the rows marked "(floor)" compare the sidecar with it. Each apply run gets a fresh database; the no-op runs share
one database at head, after one untimed warm-up run per tool. Every run is started through GNU time
(`/usr/bin/time -f %M`), whose maximum resident set size of the tool is the peak memory (the `ru_maxrss` that
`os.wait4` gives this script for its own child starts at this script's RSS, about 33 MiB, because Linux carries the
high-water mark over exec; sidecar figures before 2026-11-30 were that); CPU time is the user + system time of the
tool, from `os.wait4`. Detection starts the sidecar against a fresh temporary PostgreSQL server that is down, starts the
server {low:g}-{high:g} s later (random), polls a full login every 2 ms, and subtracts the first accepted login from
the sidecar's JSON log timestamps; a run in which the sidecar's first login already worked (it was still starting
up) is discarded. PASS/MISS compares the medians with the targets (no-op, apply and floor from issue 7, memory and
detection from issue 2); "(information)" rows have no target.

Samples, in run order:
{samples}

Machine:
{chr(10).join('- ' + fact for fact in facts)}
{END}"""


def write_results(section: str, start: str = START, end: str = END) -> None:
    """Replace only the section between `start` and `end`; everything else in the file stays as it is."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def publish(section: str, no_write: bool, start: str, end: str) -> int:
    """Print a bench's section and, unless ``no_write`` (--no-write), write it between its markers; exit status 0."""
    print(section)
    if not no_write:
        write_results(section, start, end)
    return 0


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------------


def add_server_arguments(parser: argparse.ArgumentParser, databases_help: str) -> None:
    """--databases, --pg, --mariadb and --bin-dir: which servers and which installed tools to measure."""
    parser.add_argument("--databases", default="postgresql", help=databases_help)
    parser.add_argument("--pg", default="127.0.0.1:5432", help="PostgreSQL host:port (user postgres, trust)")
    parser.add_argument("--mariadb", default="127.0.0.1:3306", help="MariaDB host:port (user root, no password)")
    parser.add_argument("--bin-dir", default=str(Path(sys.executable).parent),
                        help="where alembic and alembic-sidecar are installed")


def make_backends(args: argparse.Namespace) -> list[Backend]:
    """The servers named by --databases; ValueError names one it does not know."""
    backends: list[Backend] = []
    for name in args.databases.split(","):
        if name == "postgresql":
            host, port = args.pg.rsplit(":", 1)
            backends.append(PostgreSQL(host, int(port), "postgres"))
        elif name in ("mariadb", "mysql"):
            host, port = args.mariadb.rsplit(":", 1)
            backends.append(MariaDB(host, int(port), "root"))
        elif name == "sqlite":
            backends.append(SQLite(WORK / "sqlite"))
        else:
            raise ValueError(f"unknown database {name!r}")
    return backends


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_server_arguments(parser, "comma-separated: postgresql, mariadb, sqlite (detection runs on PostgreSQL only)")
    parser.add_argument("--apply-revisions", type=int, default=500)
    parser.add_argument("--noop-revisions", type=int, default=1000)
    parser.add_argument("--repeat-apply", type=int, default=3)
    parser.add_argument("--repeat-noop", type=int, default=7)
    parser.add_argument("--repeat-detect", type=int, default=5)
    parser.add_argument("--detect-delay", type=float, nargs=2, default=(1.5, 3.0), metavar=("MIN", "MAX"),
                        help="seconds between starting the sidecar and starting the server")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--pg-bin", help="directory of initdb/pg_ctl (default: newest /usr/lib/postgresql/*/bin)")
    parser.add_argument("--pg-os-user", default="postgres",
                        help="OS user that owns and runs the temporary server (when run as root)")
    parser.add_argument("--only", default="apply,noop,detect", help="comma-separated subset of apply,noop,detect")
    parser.add_argument("--no-write", action="store_true", help=f"print only; leave {RESULTS.name} alone")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = "cd <repo> && .venv/bin/python bench/entrypoint.py" + (" " + shlex.join(argv) if argv else "")
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    only = set(args.only.split(","))
    load_at_start = os.getloadavg()[0]
    try:
        backends = make_backends(args)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    rows: list[Row] = []
    errors: list[str] = []
    try:
        tools = Tools(Path(args.bin_dir))
        tools.init_plain()
        apply_dir = write_revisions(WORK / f"versions-{args.apply_revisions}", args.apply_revisions)
        noop_dir = write_revisions(WORK / f"versions-{args.noop_revisions}", args.noop_revisions)
        facts = machine_facts(backends, Path(args.bin_dir))
    except (BenchError, OSError, subprocess.CalledProcessError) as error:
        print(f"bench broke: {error}", file=sys.stderr)
        return 1
    for backend in backends:
        steps = [("noop", lambda b=backend: bench_noop(tools, b, noop_dir, args.noop_revisions, args.repeat_noop)),
                 ("apply", lambda b=backend: bench_apply(tools, b, apply_dir, args.apply_revisions,
                                                         args.repeat_apply))]
        for step, measure in steps:
            if step not in only:
                continue
            try:
                rows.extend(measure())
            except Exception as error:  # one broken measurement must not hide the others
                errors.append(f"{step} on {backend.name}: {type(error).__name__}: {error}")
    if "detect" in only and any(b.name == "postgresql" for b in backends):
        try:
            rows.extend(bench_detection(tools, write_revisions(WORK / "versions-3", 3), args.repeat_detect,
                                        Path(args.pg_bin) if args.pg_bin else None, args.pg_os_user,
                                        tuple(args.detect_delay), args.seed))
        except Exception as error:
            errors.append(f"detection: {type(error).__name__}: {error}")
    facts.append(f"load average (1 min) at start {load_at_start:.2f}, at end {os.getloadavg()[0]:.2f} "
                 "(other work on the machine inflates wall times; CPU-time rows are less sensitive)")
    section = report(rows, facts, command, args, started, errors)
    print(table(rows))
    for error in errors:
        print(f"\nNOT MEASURED: {error}", file=sys.stderr)
    if not args.no_write:
        write_results(section)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
