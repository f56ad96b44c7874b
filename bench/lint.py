"""Benchmark `alembic-sidecar lint` against the manual recipe, `alembic upgrade --sql base:head | squawk`.

Both run as subprocesses on the same generated revisions (default 200, each with a few operations, some risky) for
PostgreSQL, with no server: the recipe from an `alembic init -t async` project (bench/entrypoint.py's), piping
Alembic's offline SQL into the same squawk binary that `lint` runs. One warm-up run of each (page cache, bytecode),
then one timed run of each; the figure is the ratio of their wall times. The recipe prints squawk's findings on one
SQL stream (no revision, file or line of the revision); `lint` prints each on its revision file's line.

Run it from the repository root: ``.venv/bin/python bench/lint.py`` (``--help`` for the options). It prints its
section and writes it into ``bench/RESULTS.md`` between the ``lint`` markers.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from entrypoint import (WORK, BenchError, Tools, bench_parser, machine_block, machine_facts,  # noqa: E402
                        publish, revision_id, revisions_directory)

START, END = "<!-- lint:start -->", "<!-- lint:end -->"
GOAL = 1.5
URL = "postgresql://bench@lint.invalid/bench"  # offline: never contacted

REVISION = '''"""lint bench revision {n:04d}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down_repr}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
    pass
'''


def write_revisions(directory: Path, count: int) -> Path:
    """``count`` chained revisions: each creates a table with an index (safe) and changes the previous one's table
    (in turn: a plain CREATE INDEX, a NOT NULL column without a default, a type change, a dropped column)."""
    def text(n: int) -> str:
        table = f"lint_{n:04d}"
        body = [f'op.create_table("{table}", sa.Column("id", sa.BigInteger, primary_key=True), '
                f'sa.Column("name", sa.String(50)), sa.Column("old", sa.Text))',
                f'op.create_index("ix_{table}_name", "{table}", ["name"])']
        if n > 1:
            previous = f"lint_{n - 1:04d}"
            body.append([f'op.create_index("ix_{previous}_old", "{previous}", ["old"])',
                         f'op.add_column("{previous}", sa.Column("qty", sa.Integer, nullable=False))',
                         f'op.alter_column("{previous}", "name", type_=sa.String(100))',
                         f'op.drop_column("{previous}", "old")'][n % 4])
        down = revision_id(n - 1) if n > 1 else ""
        return REVISION.format(n=n, rev=revision_id(n), down=down, down_repr=repr(down) if down else "None",
                               upgrade="\n".join("    " + line for line in body))
    return revisions_directory(directory, count, text, "lint")


def timed(argv: list[str], env: dict[str, str], cwd: Path, *, shell: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv if not shell else argv[0], env=env, cwd=cwd, shell=shell, capture_output=True,
                          text=True)
    return time.perf_counter() - started, done.stdout


def rule_counts(lint_out: str, recipe_out: str) -> dict[str, tuple[int, int]]:
    """Per rule of `lint`'s set: how many findings each printed (`path:line: level [rule] ...` and squawk's gcc
    lines, `path:line:col: level: rule message`)."""
    from alembic_sidecar.linting import all_rules

    rules = all_rules()
    ours = Counter(line.split(" [", 1)[1].split("]", 1)[0] for line in lint_out.splitlines() if " [" in line)
    theirs = Counter(parts[2].split(" ", 1)[0] for line in recipe_out.splitlines()
                     if len(parts := line.split(": ", 2)) == 3)
    return {rule: (ours[rule], theirs[rule]) for rule in sorted(rules) if ours[rule] or theirs[rule]}


def layer_bytes(image: str) -> int:
    """The image's layers, uncompressed, as `docker history` counts them (tests/container/test_image.py's way)."""
    sizes = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.Size}}", "--human=false", image],
                           capture_output=True, text=True, check=True).stdout.split()
    return sum(int(size) for size in sizes)


def image_rows(images: Sequence[str]) -> str:
    """``BASE DEPLOY CI [PGLAST]``: what the deploy image and the `ci` target add to their base, squawk's share, and
    pglast's in the deploy image (bench/pglast.Dockerfile)."""
    base, deploy, ci, *pglast = (layer_bytes(image) for image in images)
    rows = (f"\n| image (built from this checkout on `{images[0]}`) | added to the base, uncompressed | bar |\n"
            f"|---|---|---|\n"
            f"| deploy (`{images[1]}`, the default target) | {(deploy - base) / 1e6:.1f} MB | < 45 MB |\n"
            f"| CI (`{images[2]}`, `--target ci`: plus squawk) | {(ci - base) / 1e6:.1f} MB "
            f"(squawk {(ci - deploy) / 1e6:.1f} MB) | none |\n")
    if pglast:
        rows += (f"| deploy plus pglast, the other candidate (`{images[3]}`, bench/pglast.Dockerfile) | "
                 f"{(pglast[0] - base) / 1e6:.1f} MB (pglast {(pglast[0] - deploy) / 1e6:.1f} MB) | < 45 MB |\n")
    return rows


def section(command: str, started: str, count: int, sidecar: float, recipe: float, findings: tuple[int, int],
            by_rule: dict[str, tuple[int, int]], images: str, loads: tuple[float, float],
            facts: Sequence[str]) -> str:
    ratio = sidecar / recipe
    rules = "\n".join(f"| `{rule}` | {ours} | {theirs} |" for rule, (ours, theirs) in by_rule.items())
    return f"""{START}
## `alembic-sidecar lint` vs `alembic upgrade --sql base:head | squawk` (PostgreSQL, offline)

Produced by `{command}` on {started}.

**The machine was shared** with other engineers' test suites: load average (1 min) {loads[0]:.2f} at the start and
{loads[1]:.2f} at the end, on 2 CPUs.

| {count} revisions, one run each after a warm-up | wall time | findings printed |
|---|---|---|
| `alembic-sidecar lint` (each finding on its revision file and line) | {sidecar:.3f} s | {findings[0]} |
| `alembic upgrade --sql base:head \\| squawk` (one stream, no file or line) | {recipe:.3f} s | {findings[1]} |
| ratio (goal: at most {GOAL}x) | **{ratio:.2f}x** {'PASS' if ratio <= GOAL else 'MISS'} | |

| rule of `lint`'s set | `lint` | recipe |
|---|---|---|
{rules}
{images}
How: {count} chained revisions, each creating a table with an index and, from the second on, changing the previous
revision's table (in turn a plain `CREATE INDEX`, a `NOT NULL` column without a default, a type change, a dropped
column). The recipe runs Alembic's offline mode from an `alembic init -t async` project and pipes it into the same
squawk binary `lint` uses (`--reporter gcc`, all of squawk's default rules); `lint` renders the same upgrade through
the bundled env.py, attributes each statement to its `op.*` line, lints each revision as its own squawk input and
reports the rule set of docs/reference.md. The recipe's other lines are squawk's rules that `lint` leaves out
(timeouts, `prefer-*`). Each of the {count - 1} changes to an earlier revision's table is one risk; the recipe misses
the index builds among them: squawk exempts a table created anywhere earlier in its one input (squawk#364).

{machine_block(facts)}
{END}"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = bench_parser(__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--bin-dir", default=str(Path(sys.executable).parent),
                        help="the virtual environment's bin directory (alembic-sidecar, alembic, squawk)")
    parser.add_argument("--images", nargs="+", metavar="IMAGE",
                        help="BASE DEPLOY CI [PGLAST]: also measure what the deploy image, the ci target and "
                             "(bench/pglast.Dockerfile) the deploy image plus pglast add to their base (docker)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.images and len(args.images) not in (3, 4):
        parser.error("--images takes BASE DEPLOY CI, and optionally PGLAST")
    command = "cd <repo> && .venv/bin/python bench/lint.py" + (" " + shlex.join(argv) if argv else "")
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_at_start = os.getloadavg()[0]
    bin_dir = Path(args.bin_dir).absolute()
    squawk = bin_dir / "squawk"
    try:
        if not os.access(squawk, os.X_OK):
            raise BenchError(f"{squawk} is missing: install the dev lock into the venv")
        tools = Tools(bin_dir)
        tools.init_plain()
        versions = write_revisions(WORK / f"lint-versions-{args.revisions}", args.revisions)
        ini = tools.plain_ini(tools.plain_dir, URL.replace("postgresql://", "postgresql+asyncpg://"), versions)
        recipe = [f"{shlex.quote(str(tools.alembic))} -c {shlex.quote(str(ini))} upgrade --sql base:head "
                  f"| {shlex.quote(str(squawk))} --reporter gcc"]
        env = dict(tools.base_env, DATABASE_URL=URL, MIGRATE_VERSIONS_DIR=str(versions), MIGRATE_LOG_FORMAT="json")
        lint = [str(tools.sidecar), "lint"]
        for _ in range(2):  # the first of each is the warm-up
            sidecar_time, sidecar_out = timed(lint, env, WORK)
            recipe_time, recipe_out = timed(recipe, dict(tools.base_env), tools.plain_dir, shell=True)
        ini.unlink()
        if not sidecar_out.strip() or not recipe_out.strip():
            raise BenchError(f"a run printed no finding:\nlint: {sidecar_out[-500:]}\nrecipe: {recipe_out[-500:]}")
        facts = machine_facts([], bin_dir)
        images = image_rows(args.images) if args.images else ""
    except (BenchError, OSError, subprocess.SubprocessError) as error:
        print(f"bench broke: {error}", file=sys.stderr)
        return 1
    counted = (len(sidecar_out.splitlines()), sum(": warning:" in line or ": error:" in line
                                                  for line in recipe_out.splitlines()))
    publish(section(command, started, args.revisions, sidecar_time, recipe_time, counted,
                    rule_counts(sidecar_out, recipe_out), images, (load_at_start, os.getloadavg()[0]), facts),
            START, END, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
