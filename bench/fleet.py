"""Benchmark a fleet on PostgreSQL: N tenant schemas x M revisions, `alembic-sidecar upgrade` over a targets file
against the recipe users run today, a shell loop of plain `alembic -x tenant=NAME upgrade head`.

The recipe is Alembic's cookbook "Rudimental Schema-Level Multi Tenancy": an env.py that reads the tenant from
``-x tenant=``, sets ``search_path`` to it on the connection, commits, points the dialect's default schema at it and
runs the migrations; a shell loop calls it once per tenant (``set -e``: it stops at the first failure). Our env.py
for it is RECIPE_ENV_PY, written on `alembic init -t async`'s template (the bench's driver is asyncpg).

1. apply: every schema empty, both tools bring all of them to the head (the sidecar at MIGRATE_PARALLEL 1, 4, 16);
2. no-op: every schema already at the head, both tools run again;
3. peak memory (GNU time's maximum RSS) of each sidecar run; for the loop, of its largest `alembic` process.

Each run is checked afterwards: every schema holds its own version table at the head and its own tables. Run it from
the repository root: ``.venv/bin/python bench/fleet.py`` (``--help`` for the options). It prints its section and
writes it into ``bench/RESULTS.md`` between the ``fleet`` markers. It uses bench/entrypoint.py's servers, tools,
revisions and report helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from entrypoint import (SIDECAR, WORK, BenchError, PostgreSQL, Row, Run, Tools, add_server_arguments,  # noqa: E402
                        machine_facts, progress, publish, revision_id, scratch_database, table, write_revisions)

START, END = "<!-- fleet:start -->", "<!-- fleet:end -->"
RECIPE = "plain alembic, cookbook -x tenant= loop"
APPLY_TARGET = 0.15

# The cookbook's steps on the async template's connection (its sync Connection, inside run_sync).
RECIPE_ENV_PY = '''"""One tenant schema per run: `alembic -x tenant=NAME upgrade head` (Alembic's cookbook recipe)."""
import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import async_engine_from_config

config = context.config
target_metadata = None


def do_run_migrations(connection):
    tenant = context.get_x_argument(as_dictionary=True).get("tenant")
    if not tenant:
        raise SystemExit("pass the tenant schema: alembic -x tenant=NAME upgrade head")
    # Every CREATE, ALTER and DROP, and the version table, land in the tenant's schema.
    connection.execute(text('SET search_path TO "%s"' % tenant))
    connection.commit()  # SQLAlchemy 2 begins a transaction on that statement: end it before Alembic begins its own
    connection.dialect.default_schema_name = tenant  # reflection in terms of the tenant too
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations():
    engine = async_engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                      poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


asyncio.run(run_async_migrations())
'''

# The loop a user writes: one process per tenant, stop at the first failure.
LOOP = 'set -e\nwhile read -r tenant; do\n  "$ALEMBIC" -c "$INI" -x "tenant=$tenant" upgrade head\ndone < "$TENANTS"\n'


def tenant(n: int) -> str:
    return f"tenant_{n:04d}"


async def _admin(backend: PostgreSQL, database: str, *statements: str) -> list:
    import asyncpg
    conn = await asyncpg.connect(host=backend.host, port=backend.port, user=backend.user, database=database)
    try:
        results = []
        for statement in statements:
            results.append(await conn.fetch(statement) if statement.startswith("SELECT") else await conn.execute(
                statement))
        return results
    finally:
        await conn.close()


def reset_schemas(backend: PostgreSQL, database: str, tenants: Sequence[str]) -> None:
    """Every tenant schema empty (dropped and created again)."""
    drops = "; ".join(f'DROP SCHEMA IF EXISTS "{t}" CASCADE' for t in tenants)
    creates = "; ".join(f'CREATE SCHEMA "{t}"' for t in tenants)
    asyncio.run(_admin(backend, database, drops, creates))


def check_at_head(backend: PostgreSQL, database: str, tenants: Sequence[str], head: str, tables: int) -> None:
    """Each schema holds its own version table at `head` and its own `tables` bench tables; nothing is in public."""
    union = " UNION ALL ".join(f"SELECT '{t}' AS schema, version_num FROM \"{t}\".alembic_version" for t in tenants)
    versions, counts, public = asyncio.run(_admin(
        backend, database, f"SELECT schema, version_num FROM ({union}) v",
        "SELECT table_schema, count(*) FROM information_schema.tables WHERE table_name LIKE 'bench_%' "
        "GROUP BY table_schema",
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"))
    wrong = [(r[0], r[1]) for r in versions if r[1] != head]
    if len(versions) != len(tenants) or wrong:
        raise BenchError(f"{len(versions)} version rows for {len(tenants)} schemas; not at {head}: {wrong[:5]}")
    per_schema = {r[0]: r[1] for r in counts}
    if per_schema != {t: tables for t in tenants}:
        raise BenchError(f"bench tables per schema differ from {tables}: {sorted(per_schema.items())[:5]}")
    if public[0][0] != 0:
        raise BenchError(f"{public[0][0]} tables landed in public")


def tree_pss_kib(root: int) -> int:
    """Proportional set size of ``root`` and all its descendants: forked workers share pages, so RSS would overcount."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            found = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)
            total += int(found[1]) if found else 0
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # the process ended while we looked
    return total


class PeakPss:
    """Samples a process tree's PSS every `interval` seconds from its start to its end; ``peak_kib`` is the highest."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.peak_kib = interval, 0
        self._thread: threading.Thread | None = None

    def __call__(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
        self._thread.start()

    def _sample(self, pid: int) -> None:
        stopped = threading.Event()
        while Path(f"/proc/{pid}").exists() and not stopped.wait(self.interval):
            self.peak_kib = max(self.peak_kib, tree_pss_kib(pid))

    def join(self) -> int:
        if self._thread is not None:
            self._thread.join()
        return self.peak_kib


class Fleet:
    """Both sides of the comparison over one database of tenant schemas."""

    def __init__(self, tools: Tools, backend: PostgreSQL, database: str, versions: Path, tenants: Sequence[str]):
        self.tools, self.backend, self.database, self.versions = tools, backend, database, versions
        self.tenants = list(tenants)
        self.tenants_file = WORK / "fleet-tenants.txt"
        self.tenants_file.write_text("".join(f"{t}\n" for t in self.tenants))
        self.targets_file = WORK / "fleet-targets.txt"
        self.targets_file.write_text("".join(f"schema={t}\n" for t in self.tenants))
        self.project = WORK / "plain-tenant"

    def init_recipe(self) -> None:
        """`alembic init -t async`, as a user starts, with the recipe's env.py in place of the generated one."""
        if not (self.project / "alembic.ini").exists():
            self.project.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(self.tools.alembic), "init", "-t", "async", "alembic"], cwd=self.project, check=True,
                           stdout=subprocess.DEVNULL, env=self.tools.base_env)
        (self.project / "alembic" / "env.py").write_text(RECIPE_ENV_PY)
        shutil.rmtree(self.project / "alembic" / "__pycache__", ignore_errors=True)

    def recipe(self, tag: str) -> tuple[Run, int]:
        """The loop's run, and its peak PSS (KiB): bash and the one `alembic` it waits for."""
        ini = self.tools.plain_ini(self.project, self.backend.url(self.database), self.versions)
        env = dict(self.tools.base_env, ALEMBIC=str(self.tools.alembic), INI=str(ini), TENANTS=str(self.tenants_file))
        sampler = PeakPss()
        run = self.tools.spawn(RECIPE, ["bash", "-c", LOOP], env, self.project, ini, tag, sampler)
        return run, sampler.join()

    def sidecar(self, parallel: int, tag: str) -> tuple[Run, int]:
        """The run, and the peak PSS (KiB) of the sidecar and its workers together."""
        env = dict(self.tools.base_env, DATABASE_URL=self.backend.url(self.database),
                   MIGRATE_VERSIONS_DIR=str(self.versions), MIGRATE_TARGETS_FILE=str(self.targets_file),
                   MIGRATE_PARALLEL=str(parallel), MIGRATE_LOG_FORMAT="json",
                   MIGRATE_TERMINATION_LOG=str(WORK / "termination-log"))
        sampler = PeakPss()
        run = self.tools.spawn(SIDECAR, [str(self.tools.sidecar), "upgrade"], env, WORK, None, tag, sampler)
        return run, sampler.join()

    def check(self, revisions: int) -> None:
        check_at_head(self.backend, self.database, self.tenants, revision_id(revisions), (revisions + 1) // 2)


Measured = tuple[Run, int]  # a run and its peak PSS in KiB


def measure(fleet: Fleet, revisions: int, parallels: Sequence[int], only: set[str]) -> dict[str, dict[str, Measured]]:
    """{"apply"/"noop": {label: (run, peak PSS)}}, each run checked; every apply starts from empty schemas."""
    runs: dict[str, dict[str, Measured]] = {"apply": {}, "noop": {}}
    sides = ([(RECIPE, fleet.recipe)] if "recipe" in only else []) + (
        [(f"{SIDECAR} parallel {p}", lambda tag, p=p: fleet.sidecar(p, tag)) for p in parallels]
        if "sidecar" in only else [])
    for label, run in sides:
        reset_schemas(fleet.backend, fleet.database, fleet.tenants)
        for kind in ("apply", "noop"):
            progress(f"{kind}: {label} ...")
            result, pss = runs[kind][label] = run(f"fleet-{kind}-{label.replace(' ', '-')}")
            fleet.check(revisions)
            progress(f"{kind}: {label}: {result.seconds:.2f} s, CPU {result.cpu_seconds:.2f} s, "
                     f"peak PSS {pss / 1024:.1f} MiB, largest process {result.max_rss_kib / 1024:.1f} MiB")
    return runs


def rows_of(runs: dict[str, dict[str, Measured]], tenants: int, revisions: int, headline: int) -> list[Row]:
    rows = []
    for kind, what in (("apply", f"apply {revisions} revisions to {tenants} schemas"),
                       ("noop", f"no-op: {tenants} schemas already at the head")):
        recipe, recipe_pss = runs[kind].get(RECIPE, (None, None))
        for label, (run, pss) in runs[kind].items():
            if label == RECIPE:
                continue
            parallel = int(label.rsplit(" ", 1)[1])
            limit = APPLY_TARGET if kind == "apply" and parallel == headline else None
            plain = recipe.seconds if recipe else None
            verdict = "-" if limit is None or plain is None else (
                "PASS" if run.seconds <= limit * plain else "MISS")
            rows.append(Row(f"{what}, MIGRATE_PARALLEL={parallel}", "postgresql", run.seconds, plain, "s",
                            f"<= {limit:g}x plain" if limit else "(information)", verdict))
            rows.append(Row(f"{what}, MIGRATE_PARALLEL={parallel}: CPU time", "postgresql", run.cpu_seconds,
                            recipe.cpu_seconds if recipe else None, "s", "(information)", "-"))
            rows.append(Row(f"peak memory (PSS of all processes), {what}, MIGRATE_PARALLEL={parallel}",
                            "postgresql", pss / 1024, recipe_pss / 1024 if recipe else None, "MiB",
                            "(information)", "-"))
        if recipe and len(runs[kind]) == 1:
            rows.append(Row(what, "postgresql", None, recipe.seconds, "s", "(sidecar side not run)", "-"))
            rows.append(Row(f"{what}: CPU time", "postgresql", None, recipe.cpu_seconds, "s", "(information)", "-"))
    return rows


def section(command: str, started: str, rows: Sequence[Row], tenants: int, revisions: int, headline: int,
            loads: tuple[str, str], facts: Sequence[str]) -> str:
    return f"""{START}
## Fleet: {tenants} PostgreSQL schemas x {revisions} revisions, one `alembic-sidecar upgrade` vs the cookbook's loop

Produced by `{command}` on {started}.

**The machine was shared** with other engineers' work on its 2 CPUs: `uptime` said "{loads[0]}" at the start and
"{loads[1]}" at the end. One run of each; wall times move with that load, CPU times less.

{table(rows)}

How: one database with {tenants} empty schemas (`tenant_0000`, ...) and {revisions} revisions from
bench/entrypoint.py (odd ones create a small table, even ones add a column; bytecode compiled beforehand). "plain
alembic" is the recipe users run today, Alembic's cookbook "Rudimental Schema-Level Multi Tenancy": an
`alembic init -t async` project whose env.py (bench/fleet.py's RECIPE_ENV_PY, ours, after the cookbook) reads
`-x tenant=`, sets `search_path` to that schema, commits, sets the dialect's default schema and runs the migrations,
called by `bash` once per tenant (`set -e`), as one timed process. The sidecar runs once over a targets file of
`schema=tenant_NNNN` lines (MIGRATE_TARGETS_FILE) at MIGRATE_PARALLEL 1, 4 and 16, its other settings at their
defaults (wait, a lock per target, one transaction per revision, JSON logs). Each apply starts from empty schemas
(dropped and created again, untimed); the no-op runs right after, over the same schemas at the head. After every
run the script checks that each schema holds its own version table at the head and its own tables, and that nothing
landed in `public`. The target (<= {APPLY_TARGET:g}x, issue 18) is the apply at MIGRATE_PARALLEL={headline}. Peak
memory is the highest sum of the proportional set size (PSS, /proc/PID/smaps_rollup) over the whole process tree,
sampled every 50 ms: for the loop, bash and the one `alembic` it waits for; for the sidecar, the parent and its
forked per-target workers (at most MIGRATE_PARALLEL at a time), whose shared pages PSS counts once.

Machine:
{chr(10).join('- ' + fact for fact in facts)}
{END}"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_server_arguments(parser, "postgresql only")
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--revisions", type=int, default=5)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 16], help="MIGRATE_PARALLEL values")
    parser.add_argument("--headline", type=int, default=4, help="the MIGRATE_PARALLEL the target applies to")
    parser.add_argument("--only", default="recipe,sidecar", help="comma-separated subset of recipe,sidecar")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    command = "cd <repo> && .venv/bin/python bench/fleet.py" + (" " + shlex.join(argv) if argv else "")
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_at_start = uptime()
    host, port = args.pg.rsplit(":", 1)
    backend = PostgreSQL(host, int(port), "postgres")
    try:
        tools = Tools(Path(args.bin_dir))
        versions = write_revisions(WORK / f"versions-{args.revisions}", args.revisions)
        facts = machine_facts([backend], Path(args.bin_dir))
        with scratch_database(backend, "fleet") as database:
            fleet = Fleet(tools, backend, database, versions, [tenant(n) for n in range(args.tenants)])
            fleet.init_recipe()
            runs = measure(fleet, args.revisions, args.parallel, set(args.only.split(",")))
    except (BenchError, OSError, subprocess.SubprocessError) as error:
        print(f"bench broke: {error}", file=sys.stderr)
        return 1
    rows = rows_of(runs, args.tenants, args.revisions, args.headline)
    text = section(command, started, rows, args.tenants, args.revisions, args.headline, (load_at_start, uptime()),
                   facts)
    return publish(text, args.no_write, START, END)


if __name__ == "__main__":
    sys.exit(main())
