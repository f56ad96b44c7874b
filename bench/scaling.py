"""How the cost grows with the work: the no-op and the apply against the number of revisions, beside plain Alembic.

For each count of revisions (default 10, 100, 1000 and 5000) and each database, in one run, with the machinery of
``bench/entrypoint.py`` (the same tools, generated revisions and servers):

1. apply: ``alembic-sidecar upgrade`` and plain ``alembic upgrade head`` (an ``alembic init -t async`` project, its
   env.py unchanged) each bring a fresh, empty database to head;
2. no-op: both again against a database already at head (the first apply's), after a warm-up each.

The runs go round by round over all the counts, the tools alternating, so that the machine's load bends no curve.

Run it from the repository root: ``.venv/bin/python bench/scaling.py`` (``--help`` for the options). It writes the
measurements to ``bench/scaling.json``, draws them as ``bench/scaling.svg`` (log-log, one row of two panels per
database) and writes a table into ``bench/RESULTS.md`` between the ``scaling`` markers. ``--replot`` draws the
picture and the table again from ``bench/scaling.json`` without measuring: the same data give the same bytes.
Exit status: 0 when every figure was measured, 1 when the benchmark itself broke, 2 for an unknown database.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/scaling.py` puts only bench/ on sys.path
    sys.path.insert(0, str(ROOT))
from bench.entrypoint import (  # noqa: E402
    PLAIN, RESULTS, SIDECAR, WORK, Backend, BenchError, Run, Tools, add_server_arguments, apply_runs, machine_facts,
    make_backends, noop_runs, progress, scratch_database, write_results, write_revisions,
)

DATA = ROOT / "bench" / "scaling.json"
PICTURE = ROOT / "bench" / "scaling.svg"
START, END = "<!-- scaling:start -->", "<!-- scaling:end -->"
TOOLS = (SIDECAR, PLAIN)
KINDS = ("noop", "apply")


# --------------------------------------------------------------------------------------------------------------------
# Measuring


def measure(tools: Tools, backend: Backend, counts: Sequence[int], repeat_noop: int, repeat_apply: int,
            repeat_apply_largest: int) -> list[dict[str, object]]:
    """One point per count: wall and CPU seconds of every run, per kind and tool, in run order.

    Round by round over all the counts, so that a change in the machine's load falls on every count alike rather
    than bending the curve; within a round the tools alternate, and who goes first rotates from round to round."""
    versions = {count: write_revisions(WORK / f"versions-{count}", count) for count in counts}
    points = {count: {key: {tool: [] for tool in TOOLS} for key in ("noop", "noop_cpu", "apply", "apply_cpu")}
              for count in counts}
    with contextlib.ExitStack() as stack:
        # One database per count stays at head for the no-op: the first round's first apply brings it there.
        at_head = {count: stack.enter_context(scratch_database(backend, f"head{count}")) for count in counts}
        for i in range(max(repeat_noop, repeat_apply, repeat_apply_largest)):
            schedule = [(i, tool) for tool in (*TOOLS[i % 2:], *TOOLS[:i % 2])]
            for count in counts:
                if i < (repeat_apply_largest if count == max(counts) else repeat_apply):
                    record(points[count], "apply", apply_runs(tools, backend, versions[count], count, schedule,
                                                              keep=at_head[count] if i == 0 else None))
                if i < repeat_noop:
                    record(points[count], "noop", noop_runs(tools, backend, versions[count], count, schedule,
                                                            at_head=at_head[count], warm_up=i == 0))
    return [{"revisions": count, **points[count]} for count in counts]


def record(point: dict[str, dict[str, list[float]]], kind: str, runs: dict[str, list[Run]]) -> None:
    for tool, rs in runs.items():
        point[kind][tool] += [round(run.seconds, 4) for run in rs]
        point[kind + "_cpu"][tool] += [round(run.cpu_seconds, 4) for run in rs]


def median(point: dict[str, object], kind: str, tool: str) -> float:
    return statistics.median(point[kind][tool])  # type: ignore[index]


# --------------------------------------------------------------------------------------------------------------------
# The picture: plain SVG, written by hand so that no plotting library is needed and the same data give the same bytes


STYLE = {SIDECAR: ("#1f6fb4", "", "circle"), PLAIN: ("#d9600b", "7 4", "square")}  # colour, dashes, marker
PANEL_TITLES = {"noop": "No-op at head (every pod start pays it)", "apply": "Apply the revisions to an empty database"}
FONT = 'font-family="Helvetica, Arial, sans-serif"'
WIDTH, PANEL_W, PANEL_H, TOP, ROW_H = 1000, 360, 250, 92, 360
LEFT = (80, 80 + PANEL_W + 130)  # x of each panel's plot area; room for the end labels and the next y labels


def log_range(values: Sequence[float]) -> tuple[float, float]:
    """The 1-2-5 ticks just below the least and just above the greatest of `values`."""
    ticks = log_ticks(10.0 ** math.floor(math.log10(min(values))), 10.0 ** math.ceil(math.log10(max(values))))
    return max(t for t in ticks if t <= min(values)), min(t for t in ticks if t >= max(values))


def log_ticks(low: float, high: float) -> list[float]:
    """1, 2 and 5 times the powers of ten from `low` to `high`."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            if low * 0.999 <= value <= high * 1.001:
                ticks.append(value)
    return ticks


def seconds_label(value: float) -> str:
    return f"{value:.2f} s" if value < 1 else f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def tick_label(value: float) -> str:
    return f"{value:g}"


def spread(ys: list[float], gap: float) -> list[float]:
    """Move labels apart vertically (keeping their order) so that none is closer than `gap` to the next."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = list(ys)
    for previous, current in zip(order, order[1:]):
        placed[current] = max(placed[current], placed[previous] + gap)
    return placed


def panel(x0: float, y0: float, title: str, points: Sequence[dict[str, object]], kind: str,
          y_low: float, y_high: float) -> list[str]:
    counts = [int(p["revisions"]) for p in points]  # type: ignore[call-overload]
    series = {tool: [median(p, kind, tool) for p in points] for tool in TOOLS}
    x_low, x_high = math.log10(min(counts)) - 0.12, math.log10(max(counts)) + 0.12

    def x(count: float) -> float:
        return x0 + (math.log10(count) - x_low) / (x_high - x_low) * PANEL_W

    def y(seconds: float) -> float:
        return y0 + PANEL_H - (math.log10(seconds) - math.log10(y_low)) / math.log10(y_high / y_low) * PANEL_H

    out = [f'<text x="{x0:.1f}" y="{y0 - 10:.1f}" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>']
    for tick in log_ticks(y_low, y_high):
        major = math.isclose(math.log10(tick), round(math.log10(tick)))
        out.append(f'<line x1="{x0:.1f}" y1="{y(tick):.1f}" x2="{x0 + PANEL_W:.1f}" y2="{y(tick):.1f}" '
                   f'stroke="{"#c8c8c8" if major else "#ececec"}"/>')
        out.append(f'<text x="{x0 - 8:.1f}" y="{y(tick) + 4:.1f}" font-size="12" text-anchor="end" '
                   f'fill="{"#333" if major else "#777"}">{tick_label(tick)}</text>')
    for count in counts:
        out.append(f'<line x1="{x(count):.1f}" y1="{y0:.1f}" x2="{x(count):.1f}" y2="{y0 + PANEL_H:.1f}" '
                   'stroke="#ececec"/>')
        out.append(f'<text x="{x(count):.1f}" y="{y0 + PANEL_H + 18:.1f}" font-size="12" text-anchor="middle" '
                   f'fill="#333">{count}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2:.1f}" y="{y0 + PANEL_H + 38:.1f}" font-size="13" '
               'text-anchor="middle">revisions (log scale)</text>')
    out.append(f'<text transform="translate({x0 - 50:.1f} {y0 + PANEL_H / 2:.1f}) rotate(-90)" font-size="13" '
               'text-anchor="middle">seconds (log scale)</text>')
    for tool in TOOLS:
        colour, dashes, marker = STYLE[tool]
        path = " ".join(f"{x(c):.1f},{y(v):.1f}" for c, v in zip(counts, series[tool]))
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>')
        out.extend(mark(marker, x(c), y(v), colour) for c, v in zip(counts, series[tool]))
    # The last medians, written beside the line ends, so a reader need not read them off the axis.
    ends = [y(series[tool][-1]) + 4 for tool in TOOLS]
    for tool, label_y in zip(TOOLS, spread(ends, 15)):
        out.append(f'<text x="{x(counts[-1]) + 10:.1f}" y="{label_y:.1f}" font-size="12" font-weight="bold" '
                   f'fill="{STYLE[tool][0]}">{seconds_label(series[tool][-1])}</text>')
    return out


def mark(marker: str, cx: float, cy: float, colour: str) -> str:
    if marker == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="{colour}"/>'
    return f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{colour}"/>'


def legend(x0: float, y0: float) -> list[str]:
    out = []
    for tool, label in ((SIDECAR, "alembic-sidecar upgrade"), (PLAIN, "plain alembic upgrade head")):
        colour, dashes, marker = STYLE[tool]
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        out.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x0 + 36:.1f}" y2="{y0:.1f}" stroke="{colour}" '
                   f'stroke-width="2.5"{dash}/>')
        out.append(mark(marker, x0 + 18, y0, colour))
        out.append(f'<text x="{x0 + 44:.1f}" y="{y0 + 4:.1f}" font-size="13">{escape(label)}</text>')
        x0 += 250
    return out


def svg(data: dict[str, object]) -> str:
    """The picture of `data` (as in scaling.json): one row of two log-log panels, no-op and apply, per database."""
    databases: dict[str, dict[str, object]] = data["databases"]  # type: ignore[assignment]
    height = TOP + len(databases) * ROW_H
    repeats: dict[str, int] = data["repeats"]  # type: ignore[assignment]
    subtitle = (f"Medians of {repeats['noop']} no-op and {repeats['apply']} apply runs "
                f"({repeats['apply_largest']} at the largest count) per tool; whole processes, start-up included. "
                "Lower is better.")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" {FONT} fill="#222">',
           f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
           '<text x="20" y="30" font-size="19" font-weight="bold">Time against the number of revisions: '
           'alembic-sidecar beside plain Alembic</text>',
           f'<text x="20" y="52" font-size="13" fill="#555">{escape(subtitle)}</text>',
           *legend(24, 74)]
    for row, (name, measured) in enumerate(databases.items()):
        top = TOP + row * ROW_H
        points: list[dict[str, object]] = measured["points"]  # type: ignore[assignment]
        # One scale for both panels of a row, so that the eye can compare the no-op with the apply too.
        y_low, y_high = log_range([median(p, kind, tool) for p in points for kind in KINDS for tool in TOOLS])
        out.append(f'<text x="20" y="{top + 20:.1f}" font-size="16" font-weight="bold">'
                   f'{escape(str(measured.get("server", name)))}</text>')
        for kind, x0 in zip(KINDS, LEFT):
            out.extend(panel(x0, top + 56, PANEL_TITLES[kind], points, kind, y_low, y_high))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# The table in RESULTS.md


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def report(data: dict[str, object]) -> str:
    databases: dict[str, dict[str, object]] = data["databases"]  # type: ignore[assignment]
    repeats: dict[str, int] = data["repeats"]  # type: ignore[assignment]
    load: list[float] = data["load"]  # type: ignore[assignment]
    times = ["| database | revisions | no-op: sidecar | no-op: plain | ratio | apply: sidecar | apply: plain | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    cpu = ["| database | revisions | no-op: sidecar | no-op: plain | ratio | apply: sidecar | apply: plain | ratio |",
           "|---|---|---|---|---|---|---|---|"]
    samples = []
    for name, measured in databases.items():
        for point in measured["points"]:  # type: ignore[attr-defined]
            cells = {table: [] for table in ("times", "cpu")}
            for kind in KINDS:
                for table, key in (("times", kind), ("cpu", kind + "_cpu")):
                    ours, plain = median(point, key, SIDECAR), median(point, key, PLAIN)
                    cells[table] += [f"{ours:.3f} s", f"{plain:.3f} s", ratio(ours, plain)]
                samples.append(f"- {name}, {kind} {point['revisions']}: " + "; ".join(
                    f"{tool}: " + ", ".join(f"{v:.3f}" for v in point[kind][tool]) for tool in TOOLS))
            times.append(f"| {name} | {point['revisions']} | " + " | ".join(cells["times"]) + " |")
            cpu.append(f"| {name} | {point['revisions']} | " + " | ".join(cells["cpu"]) + " |")
    facts = "\n".join(f"- {fact}" for fact in data["facts"])  # type: ignore[attr-defined]
    return f"""{START}
## Scaling: the no-op and the apply against the number of revisions

Produced by `{data['command']}` on {data['started']}; drawn as [scaling.svg](scaling.svg) (the data:
[scaling.json](scaling.json)).

**The machine was shared** with other engineers running test suites: the load average (1 min) was {load[0]:.2f} at
the start and {load[1]:.2f} at the end, on {data['cpus']} CPUs. Wall times move with that load from run to run; the
CPU times below move less.

Wall time of the whole process, medians:

{chr(10).join(times)}

CPU time of the process (user + system), medians:

{chr(10).join(cpu)}

How: rounds over all the counts, so that a change in the machine's load falls on every count alike. In each round
and for each count, each tool applies the revisions to a fresh, empty database ({repeats['apply']} rounds,
{repeats['apply_largest']} at the largest count; the first apply goes to a database that then stays at head) and runs
the no-op against that database at head ({repeats['noop']} rounds, after one untimed warm-up per tool); the two
tools alternate and who goes first rotates from round to round. The revisions are the ones `bench/entrypoint.py`
generates (odd ones create a small table, even ones add a column; bytecode compiled beforehand); plain Alembic is an
`alembic init -t async` project with its `env.py` unchanged (one transaction for the whole upgrade), the sidecar
runs with its defaults (wait, lock, one transaction per revision, JSON logs).

Samples (seconds, wall time), in run order:
{chr(10).join(samples)}

Machine:
{facts}
{END}"""


# --------------------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_server_arguments(parser, "comma-separated: postgresql, mariadb, sqlite")
    parser.add_argument("--revisions", default="10,100,1000,5000", help="comma-separated counts of revisions")
    parser.add_argument("--repeat-noop", type=int, default=9, help="no-op runs per tool and count")
    parser.add_argument("--repeat-apply", type=int, default=5, help="apply runs per tool and count")
    parser.add_argument("--repeat-apply-largest", type=int, default=3,
                        help="apply runs per tool at the largest count (the longest runs)")
    parser.add_argument("--replot", action="store_true",
                        help=f"measure nothing: draw {PICTURE.name} and the {RESULTS.name} section from {DATA.name}")
    parser.add_argument("--no-write", action="store_true",
                        help=f"leave {DATA.name}, {PICTURE.name} and {RESULTS.name} alone; the picture goes to "
                             "bench/.work/scaling.svg")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.replot:
        data = json.loads(DATA.read_text())
    else:
        try:
            backends = make_backends(args)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        counts = sorted({int(n) for n in args.revisions.split(",")})
        load_at_start = os.getloadavg()[0]
        started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        data = {"command": "cd <repo> && .venv/bin/python bench/scaling.py" + (" " + shlex.join(argv) if argv else ""),
                "started": started, "cpus": len(os.sched_getaffinity(0)),
                "repeats": {"noop": args.repeat_noop, "apply": args.repeat_apply,
                            "apply_largest": args.repeat_apply_largest},
                "databases": {}}
        try:
            tools = Tools(Path(args.bin_dir))
            tools.init_plain()
            data["facts"] = machine_facts(backends, Path(args.bin_dir))
            for backend in backends:
                data["databases"][backend.name] = {
                    "server": " ".join(backend.version().split()[:2]),  # "PostgreSQL 17.6"
                    "points": measure(tools, backend, counts, args.repeat_noop, args.repeat_apply,
                                      args.repeat_apply_largest)}
        except (BenchError, OSError, subprocess.CalledProcessError) as error:
            print(f"bench broke: {error}", file=sys.stderr)
            return 1
        data["load"] = [round(load_at_start, 2), round(os.getloadavg()[0], 2)]
    section = report(data)
    print(section.split("Wall time of the whole process, medians:\n\n", 1)[1].split("\n\nHow:", 1)[0])
    if args.no_write:
        WORK.mkdir(parents=True, exist_ok=True)
        (WORK / "scaling.svg").write_text(svg(data))
        progress(f"drawn to {(WORK / 'scaling.svg').relative_to(ROOT)}")
        return 0
    if not args.replot:
        DATA.write_text(json.dumps(data, indent=1) + "\n")
    PICTURE.write_text(svg(data))
    write_results(section, START, END)
    progress(f"written: {', '.join(str(p.relative_to(ROOT)) for p in (DATA, PICTURE, RESULTS))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
