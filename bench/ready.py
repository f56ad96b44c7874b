"""Benchmark `alembic-sidecar ready` on PostgreSQL: how soon it notices the heads, and what one poll costs.

1. Detection delay: `ready` waits on a database one revision below the head; after a random 1.5-3 s this script
   moves the version table to the head with one UPDATE and notes when its commit returned; the delay is from there
   to `ready`'s `ready` event (and to the process's exit). Median of --repeat runs.
2. Per-poll cost: `ready` on a database that never reaches the heads, for --short and --long seconds; the extra
   polls of the long run against its extra CPU time (user + system, from os.wait4) and the server's own account
   (pg_stat_database: sessions, transactions, active_time). Beside it, the same for the fast no-op: `upgrade` at the
   head, which reads the version table with one login, the read each poll repeats.

Run it from the repository root: ``.venv/bin/python bench/ready.py`` (``--help`` for the options). It prints its
section and writes it into ``bench/RESULTS.md`` between the ``ready`` markers. It uses bench/entrypoint.py's servers,
tools and revisions.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from entrypoint import (WORK, BenchError, PostgreSQL, Tools, add_server_arguments, event_time, log_events,  # noqa: E402
                        machine_facts, progress, publish, revision_id, scratch_database, write_revisions)

START, END = "<!-- ready:start -->", "<!-- ready:end -->"
REVISIONS = 10


def environment(tools: Tools, url: str, versions: Path, **extra: str) -> dict[str, str]:
    return dict(tools.base_env, DATABASE_URL=url, MIGRATE_VERSIONS_DIR=str(versions), MIGRATE_LOG_FORMAT="json",
                MIGRATE_TERMINATION_LOG=str(WORK / "termination-log"), **extra)


def run(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, CPU seconds (user + system) and output of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=WORK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    return (os.waitstatus_to_exitcode(status), time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
            output)


async def _execute(backend: PostgreSQL, database: str, statement: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(host=backend.host, port=backend.port, user=backend.user, database=database)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _server_stats(backend: PostgreSQL, database: str) -> tuple[float, float, float]:
    """(sessions, committed transactions, active ms) of ``database`` as the server counts them."""
    import asyncpg
    conn = await asyncpg.connect(host=backend.host, port=backend.port, user=backend.user, database="postgres")
    try:
        row = await conn.fetchrow("SELECT sessions, xact_commit, active_time FROM pg_stat_database "
                                  "WHERE datname = $1", database)
        return float(row[0]), float(row[1]), float(row[2])
    finally:
        await conn.close()


def server_stats(backend: PostgreSQL, database: str) -> tuple[float, float, float]:
    time.sleep(1.2)  # a session's statistics reach the shared counters when it ends, at most a second later
    return asyncio.run(_server_stats(backend, database))


def detection(tools: Tools, backend: PostgreSQL, versions: Path, repeat: int) -> tuple[list[float], list[float]]:
    sidecar = str(tools.sidecar)
    event_delays, exit_delays = [], []
    below, head = revision_id(REVISIONS - 1), revision_id(REVISIONS)
    for attempt in range(repeat):
        with scratch_database(backend, "ready") as database:
            env = environment(tools, backend.url(database), versions)
            code, *_ = run([sidecar, "upgrade", below], env)
            if code != 0:
                raise BenchError(f"upgrade to {below} exited {code}")
            process = subprocess.Popen([sidecar, "ready"], env={**env, "MIGRATE_READY_TIMEOUT": "60"}, cwd=WORK,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(random.uniform(1.5, 3.0))
            asyncio.run(_execute(backend, database, f"UPDATE alembic_version SET version_num = '{head}'"))
            committed = time.time()
            output, _ = process.communicate(timeout=60)
            exited = time.time()
            if process.returncode != 0:
                raise BenchError(f"ready exited {process.returncode}:\n{output[-2000:]}")
            ready = [event for event in log_events(output) if event.get("event") == "ready"]
            event_delays.append(event_time(ready[0]) - committed)
            exit_delays.append(exited - committed)
            progress(f"detection {attempt + 1}/{repeat}: {event_delays[-1]:.3f} s")
    return event_delays, exit_delays


def polls_of(output: str) -> int:
    import re
    found = re.search(r"(\d+) polls?\)", output)
    if not found:
        raise BenchError(f"no poll count in ready's output:\n{output[-2000:]}")
    return int(found.group(1))


def poll_cost(tools: Tools, backend: PostgreSQL, versions: Path, short: float, long: float,
              noops: int) -> dict[str, float]:
    sidecar = str(tools.sidecar)
    with scratch_database(backend, "ready") as database:
        env = environment(tools, backend.url(database), versions)
        run([sidecar, "upgrade", revision_id(REVISIONS - 1)], env)
        measured = {}
        for label, seconds in (("short", short), ("long", long)):
            before = server_stats(backend, database)
            code, wall, cpu, output = run([sidecar, "ready"], {**env, "MIGRATE_READY_TIMEOUT": f"{seconds:g}"})
            after = server_stats(backend, database)
            if code != 8:
                raise BenchError(f"ready exited {code}, not 8:\n{output[-2000:]}")
            measured[label] = (polls_of(output), cpu, *(b - a for a, b in zip(before, after)))
            progress(f"ready for {seconds:g} s: {measured[label][0]} polls, {cpu:.3f} s CPU")
        (p1, c1, s1, x1, a1), (p2, c2, s2, x2, a2) = measured["short"], measured["long"]
        polls = p2 - p1
        result = {"polls": polls, "seconds": long - short, "cpu_ms": (c2 - c1) / polls * 1000,
                  "sessions": (s2 - s1) / polls, "xacts": (x2 - x1) / polls, "active_ms": (a2 - a1) / polls}
        run([sidecar, "upgrade"], env)
        run([sidecar, "upgrade"], env)  # warm-up
        before = server_stats(backend, database)
        cpus = []
        for _ in range(noops):
            code, wall, cpu, output = run([sidecar, "upgrade"], env)
            if code != 0 or '"migration_complete"' not in output or "database_ready" in output:
                raise BenchError(f"the no-op did not take the fast path:\n{output[-2000:]}")
            cpus.append(cpu)
        after = server_stats(backend, database)
        result.update({"noop_cpu_ms": statistics.median(cpus) * 1000, "noop_sessions": (after[0] - before[0]) / noops,
                       "noop_xacts": (after[1] - before[1]) / noops, "noop_active_ms": (after[2] - before[2]) / noops})
    return result


def section(command: str, started: str, detected: tuple[list[float], list[float]], cost: dict[str, float],
            loads: tuple[float, float], facts: Sequence[str]) -> str:
    events, exits = detected
    samples = ", ".join(f"{value:.3f}" for value in events)
    rows = "\n".join(f"| {name} | {value} |" for name, value in (
        (f"detection delay: version table at the head -> `ready` event, median of {len(events)}",
         f"{statistics.median(events):.3f} s (max {max(events):.3f} s)"),
        ("detection delay: -> `ready`'s exit, median", f"{statistics.median(exits):.3f} s"),
        ("one poll: `ready`'s CPU time (user + system)", f"{cost['cpu_ms']:.1f} ms"),
        ("one poll: server sessions (logins) / transactions / active time",
         f"{cost['sessions']:.2f} / {cost['xacts']:.2f} / {cost['active_ms']:.2f} ms"),
        ("one fast no-op (`upgrade` at the head), whole process: CPU time, median", f"{cost['noop_cpu_ms']:.1f} ms"),
        ("one fast no-op: server sessions / transactions / active time",
         f"{cost['noop_sessions']:.2f} / {cost['noop_xacts']:.2f} / {cost['noop_active_ms']:.2f} ms")))
    return f"""{START}
## `alembic-sidecar ready`: detection delay and per-poll cost (PostgreSQL)

Produced by `{command}` on {started}.

**The machine was shared** with other engineers' test suites: load average (1 min) {loads[0]:.2f} at the start and
{loads[1]:.2f} at the end, on 2 CPUs.

| measurement | value |
|---|---|
{rows}

How: detection: `ready` (MIGRATE_READY_TIMEOUT=60) starts on a database one revision below the head ({REVISIONS}
revisions from bench/entrypoint.py); 1.5-3 s later (random, so the moment falls anywhere in a poll's period) this
script sets the version table to the head with one UPDATE on its own connection, and the delay runs from that
commit's return to the timestamp of `ready`'s `ready` event (and to the process's exit). A poll starts at most once
a second, up to 0.25 s later (jitter), so the expected delay is about half a period plus one login and read.
Samples (s): {samples}.

Per poll: `ready` against a database that never reaches the head, twice, the second run with a MIGRATE_READY_TIMEOUT
{cost['seconds']:g} s longer; its extra polls ({cost['polls']:g}, counted in the exit-8 message) against its extra CPU
time and the extra `pg_stat_database` counts (sessions, xact_commit, active_time) of that database.
The fast no-op's row is the same count for `alembic-sidecar upgrade` at the head (the fast path: one login, one read,
no SQLAlchemy), over whole processes, so its CPU time includes the interpreter's start-up that a poll does not pay;
the server figures compare a poll with the read the fast no-op makes.

Machine:
{chr(10).join('- ' + fact for fact in facts)}
{END}"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_server_arguments(parser, "postgresql only")
    parser.add_argument("--repeat", type=int, default=10, help="detection runs")
    parser.add_argument("--short", type=float, default=2.0, help="MIGRATE_READY_TIMEOUT of the short run")
    parser.add_argument("--long", type=float, default=32.0, help="MIGRATE_READY_TIMEOUT of the long run")
    parser.add_argument("--noops", type=int, default=10, help="fast no-op runs")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    random.seed(args.seed)
    command = "cd <repo> && .venv/bin/python bench/ready.py" + (" " + shlex.join(argv) if argv else "")
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_at_start = os.getloadavg()[0]
    host, port = args.pg.rsplit(":", 1)
    backend = PostgreSQL(host, int(port), "postgres")
    try:
        tools = Tools(Path(args.bin_dir))
        versions = write_revisions(WORK / f"versions-{REVISIONS}", REVISIONS)
        facts = machine_facts([backend], Path(args.bin_dir))
        detected = detection(tools, backend, versions, args.repeat)
        cost = poll_cost(tools, backend, versions, args.short, args.long, args.noops)
    except (BenchError, OSError, subprocess.SubprocessError) as error:
        print(f"bench broke: {error}", file=sys.stderr)
        return 1
    text = section(command, started, detected, cost, (load_at_start, os.getloadavg()[0]), facts)
    return publish(text, args.no_write, START, END)


if __name__ == "__main__":
    sys.exit(main())
