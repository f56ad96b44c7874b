"""Benchmark the container image: its size, a cold no-op start, and peak memory.

1. size: the image uncompressed and gzip-compressed (as a registry stores it), and the layers this project adds on
   top of ``BASE_IMAGE`` (uncompressed and compressed);
2. cold start to exit of ``docker run`` for a no-op ``upgrade`` (PostgreSQL already at head) against ``docker run``
   of the bare base image doing ``python -c pass``, same flags, interleaved;
3. peak memory of the no-op container: the high-water mark of its memory cgroup (cgroup v1
   ``memory.max_usage_in_bytes`` / v2 ``memory.peak`` of a parent cgroup made for each run, so it survives the
   container).

Run it from the repository root: ``.venv/bin/python bench/container.py`` (``--help`` for the options). It builds
``alembic-sidecar:bench`` from the Dockerfile on the base image ``tests/setup/docker.sh`` chose, prints a table and
writes it into ``bench/RESULTS.md`` between the ``container`` markers, leaving the rest of the file alone. Exit status:
0 when every figure was measured (a missed target is a result, not a failure), 1 when the benchmark itself broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- container:start -->", "<!-- container:end -->"
IMAGE = "alembic-sidecar:bench"
IMAGES_ENV = Path(os.environ.get("SIDECAR_IMAGES_ENV") or Path(os.environ.get("TMPDIR", "/tmp"))
                  / "alembic-sidecar-images.env")
EXAMPLES = ROOT / "image" / "examples" / "versions"
MB, MIB = 1000 * 1000, 1024 * 1024

# Targets from issue 3 (the 45 MB one restated by issue 8 for the image without pip).
ADDED_TARGET_MB, STARTUP_TARGET_S, MEMORY_TARGET_MIB = 45.0, 0.5, 64.0


class BenchError(Exception):
    """The benchmark could not measure something."""


def docker(*args: str, timeout: float = 1200, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise BenchError(f"docker {' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    return done


def base_image(explicit: str | None) -> str:
    if explicit:
        return explicit
    if not IMAGES_ENV.exists():
        subprocess.run(["sh", str(ROOT / "tests" / "setup" / "docker.sh")], check=True,
                       env=dict(os.environ, SIDECAR_IMAGES_ENV=str(IMAGES_ENV)))
    for line in IMAGES_ENV.read_text().splitlines():
        if line.startswith("BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise BenchError(f"no BASE_IMAGE in {IMAGES_ENV}")


# --- size --------------------------------------------------------------------------------------------------------

def layer_ids(image: str) -> list[str]:
    return json.loads(docker("image", "inspect", image).stdout)[0]["RootFS"]["Layers"]


def uncompressed_size(image: str) -> int:
    """Bytes of every layer of ``image``, from ``docker history``."""
    return sum(int(s) for s in docker("history", "--no-trunc", "--human=false", "--format", "{{.Size}}",
                                      image).stdout.split())


def compressed_sizes(image: str, added_layers: int) -> tuple[int, int]:
    """gzip -6 sizes of every layer tar from ``docker save`` (how a registry stores them): (all, added)."""
    with tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmp:
        archive = Path(tmp) / "image.tar"
        docker("save", "-o", str(archive), image)
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
            layers = manifest[0]["Layers"]
            sizes = []
            for name in layers:
                counter = _Counter()
                with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6, mtime=0) as gz:
                    shutil.copyfileobj(tar.extractfile(name), gz, 1 << 20)
                sizes.append(counter.size)
    return sum(sizes), sum(sizes[len(sizes) - added_layers:]) if added_layers else 0


class _Counter:
    """A write-only file that only counts bytes."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


# --- start-up and memory -----------------------------------------------------------------------------------------

class MemoryCgroup:
    """A parent memory cgroup for one container (``--cgroup-parent``); its high-water mark outlives the container."""

    def __init__(self) -> None:
        self.name = f"sidecar-bench-{secrets.token_hex(4)}"
        v1 = Path("/sys/fs/cgroup/memory")
        if (v1 / "memory.max_usage_in_bytes").exists():
            self.dirs = [Path(d) / self.name for d in Path("/sys/fs/cgroup").iterdir() if d.is_dir()]
            self.peak_file = v1 / self.name / "memory.max_usage_in_bytes"
        elif Path("/sys/fs/cgroup/cgroup.controllers").exists():
            self.dirs = [Path("/sys/fs/cgroup") / self.name]
            self.peak_file = self.dirs[0] / "memory.peak"
        else:
            raise BenchError("no cgroup v1 memory controller or cgroup v2 hierarchy at /sys/fs/cgroup")

    def peak(self) -> int:
        if not self.peak_file.exists():
            raise BenchError(f"{self.peak_file} is missing (docker did not use --cgroup-parent, or no root)")
        return int(self.peak_file.read_text())

    def remove(self) -> None:
        for path in self.dirs:
            try:
                path.rmdir()
            except OSError:
                pass


def timed_run(argv: list[str], cgroup: MemoryCgroup | None = None) -> tuple[float, str]:
    """Wall time of ``docker run --rm ...`` from the call to its exit, and its output."""
    if cgroup is not None:
        argv = [argv[0], argv[1], f"--cgroup-parent=/{cgroup.name}", *argv[2:]]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:8])} ... exited {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
    return elapsed, done.stdout + done.stderr


def prepare_database(name: str) -> str:
    """A fresh PostgreSQL database on 127.0.0.1:5432 (trust) brought to the example head, for no-op runs."""
    subprocess.run(["psql", "-qAt", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c",
                    f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    subprocess.run(["psql", "-qAt", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c",
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True)


# --- report ------------------------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def build_revision() -> str:
    """The commit the image was built from, and whether the build context (what .dockerignore lets in) differs."""
    git = ["git", "-C", str(ROOT)]
    revision = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    context = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    changed = subprocess.run([*git, "status", "--porcelain", "--", *context], capture_output=True, text=True).stdout
    return (revision or "unknown") + (" plus uncommitted changes to the build context" if changed.strip() else "")


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{START}\n{section.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-image", help="BASE_IMAGE for the build (default: tests/setup/docker.sh's choice)")
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each side (default 9)")
    parser.add_argument("--no-build", action="store_true", help=f"use an existing {IMAGE}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)

    try:
        base = base_image(args.base_image)
        if not args.no_build:
            print(f"building {IMAGE} on {base} ...", file=sys.stderr)
            started = time.perf_counter()
            docker("build", "--network", "host", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", IMAGE, str(ROOT))
            print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)

        base_layers, image_layers = layer_ids(base), layer_ids(IMAGE)
        if image_layers[:len(base_layers)] != base_layers:
            raise BenchError(f"{IMAGE} is not built on {base}")
        added_count = len(image_layers) - len(base_layers)
        total = uncompressed_size(IMAGE)
        added = total - uncompressed_size(base)
        print("compressing layers ...", file=sys.stderr)
        total_gz, added_gz = compressed_sizes(IMAGE, added_count)

        db = f"bench_{secrets.token_hex(4)}"
        url = prepare_database(db)
        try:
            common = ["docker", "run", "--rm", "--network", "host", "--read-only", "--user", "12345:0"]
            sidecar = [*common, "-e", f"DATABASE_URL={url}", "-v", f"{EXAMPLES}:/migrations/versions:ro", IMAGE]
            bare = [*common, base, "python", "-c", "pass"]
            _, out = timed_run(sidecar)  # brings the database to head, and warms the page cache
            if '"applied": 3' not in out:
                raise BenchError(f"the first run did not apply the examples: {out[-1500:]}")
            timed_run(bare)
            sidecar_times, bare_times, peaks, inner = [], [], [], []
            for _ in range(args.runs):
                cgroup = MemoryCgroup()
                try:
                    elapsed, out = timed_run(sidecar, cgroup)
                    peaks.append(cgroup.peak())
                finally:
                    cgroup.remove()
                if '"applied": 0' not in out:
                    raise BenchError(f"a no-op run was not a no-op: {out[-1500:]}")
                inner.append(json.loads(out.strip().splitlines()[-1])["duration_ms"] / 1000)
                sidecar_times.append(elapsed)
                bare_times.append(timed_run(bare)[0])
            # The process's own high-water mark, shared library pages included (those may be charged elsewhere).
            probe = ("import resource, subprocess, sys; subprocess.run(['alembic-sidecar', 'upgrade'], "
                     "stdout=subprocess.DEVNULL); "
                     "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            rss_argv = [*common, "-e", f"DATABASE_URL={url}", "-v", f"{EXAMPLES}:/migrations/versions:ro",
                        "--entrypoint", "python", IMAGE, "-c", probe]
            rss = [int(timed_run(rss_argv)[1].split("MAXRSS")[1].split()[0]) * 1024 for _ in range(3)]
            bare_peaks = []
            for _ in range(3):
                cgroup = MemoryCgroup()
                try:
                    timed_run(bare, cgroup)
                    bare_peaks.append(cgroup.peak())
                finally:
                    cgroup.remove()
        finally:
            drop_database(db)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        print(f"bench/container.py: {exc}", file=sys.stderr)
        return 1

    med = statistics.median
    extra = med(sidecar_times) - med(bare_times)
    peak = max(peaks) / MIB
    server = json.loads(docker("version", "--format", "{{json .Server}}").stdout)
    rows = [
        ("image, uncompressed", f"{total / MB:.1f} MB", "-", "(information)", "-"),
        ("image, gzip-compressed layers", f"{total_gz / MB:.1f} MB", "-", "(information)", "-"),
        (f"layers added on top of the base ({added_count}), uncompressed", f"{added / MB:.1f} MB", "-",
         f"< {ADDED_TARGET_MB:.0f} MB", verdict(added / MB < ADDED_TARGET_MB)),
        ("layers added on top of the base, gzip-compressed", f"{added_gz / MB:.1f} MB", "-", "(information)", "-"),
        ("`docker run` no-op `upgrade` (PostgreSQL at head) vs base `python -c pass`",
         f"{med(sidecar_times):.3f} s", f"{med(bare_times):.3f} s", "-", "-"),
        ("cold start: no-op beyond the bare base", f"+{extra:.3f} s", "-", f"< {STARTUP_TARGET_S} s",
         verdict(extra < STARTUP_TARGET_S)),
        ("no-op inside the container (`migration_complete.duration_ms`)", f"{med(inner) * 1000:.0f} ms", "-",
         "(information)", "-"),
        ("peak memory of the no-op container (cgroup high-water mark, max of runs)", f"{peak:.1f} MiB",
         f"{max(bare_peaks) / MIB:.1f} MiB", f"< {MEMORY_TARGET_MIB:.0f} MiB", verdict(peak < MEMORY_TARGET_MIB)),
        ("peak RSS of the `alembic-sidecar` process in the container (max of 3)", f"{max(rss) / MIB:.1f} MiB", "-",
         f"< {MEMORY_TARGET_MIB:.0f} MiB", verdict(max(rss) / MIB < MEMORY_TARGET_MIB)),
    ]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    revision = build_revision()
    lines = [
        "## Container image",
        "",
        f"Produced by `cd <repo> && .venv/bin/python bench/container.py` on {now} (repository {revision}).",
        "",
        "| measurement | alembic-sidecar image | bare base image | target | result |",
        "|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
        f"Base image: `{base}`. Times are medians of {args.runs} interleaved runs after one untimed warm-up each: the",
        "wall time of `docker run --rm --network host --read-only --user 12345:0 ...` from the call to its exit,",
        "the same flags on both sides; the sidecar side runs the default `upgrade` against a PostgreSQL database",
        "already at the example head (3 revisions mounted read-only). Sizes are from `docker history` (uncompressed)",
        "and gzip -6 of each layer tar from `docker save` (compressed). Peak memory is the memory cgroup's",
        "high-water mark (memory first charged to it: anonymous memory and page cache not already charged to another",
        "cgroup) of a parent cgroup made for each run; the process's peak RSS (`ru_maxrss`, shared library pages",
        "included) is measured by a `python` wrapper in the image that runs `alembic-sidecar upgrade` as its child.",
        "",
        "Samples:",
        f"- sidecar no-op (s): {', '.join(f'{t:.3f}' for t in sidecar_times)}",
        f"- bare base `python -c pass` (s): {', '.join(f'{t:.3f}' for t in bare_times)}",
        f"- sidecar peak memory (MiB): {', '.join(f'{p / MIB:.1f}' for p in peaks)}",
        "",
        "Machine:",
        f"- nproc: {os.cpu_count()}; kernel: {platform.system()} {platform.release()}",
        f"- Docker Engine {server.get('Version')}, storage driver "
        f"{json.loads(docker('info', '--format', '{{json .Driver}}').stdout)}, "
        f"cgroup v{json.loads(docker('info', '--format', '{{json .CgroupVersion}}').stdout)}",
        f"- load average (1 min) at end: {os.getloadavg()[0]:.2f}",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_results(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
