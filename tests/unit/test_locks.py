"""The hash-locks in requirements/: one of each kind for every supported CPython minor, each one installable with
``--require-hashes`` on its own Python, and the supported range stated the same way everywhere it is stated.

Checking a lock fetches its files from the package index (as the image build does): pip downloads the wheel of every
pin for that Python and platform and checks its hash; the dependencies the wheels declare, with their markers evaluated
for that Python, must be exactly the pinned set.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
KINDS = ("runtime", "build", "dev")
#: The official images' architectures. The runtime lock (compiled extensions) is checked on each; the build tools and
#: the test suite's lock on the first.
ARCHITECTURES = ("x86_64", "aarch64")
#: Debian bookworm's glibc is the oldest any supported base has; a wheel for a newer manylinux would not load there.
GLIBC_MINORS = range(17, 37)


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def supported_minors() -> list[str]:
    """The CPython minors requires-python admits, oldest first."""
    specifier = SpecifierSet(pyproject()["project"]["requires-python"])
    return [f"3.{n}" for n in range(0, 100) if Version(f"3.{n}") in specifier]


def locked_minors(kind: str) -> list[str]:
    minors = [re.fullmatch(rf"{kind}-py(3\.\d+)\.lock", p.name)[1] for p in REQUIREMENTS.glob(f"{kind}-py3.*.lock")]
    return sorted(minors, key=Version)


def lock_pins(lock: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line in a lock."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def roots(kind: str) -> list[Requirement]:
    """What a lock of ``kind`` is compiled from (requirements/lock.sh)."""
    project = pyproject()["project"]
    if kind == "build":
        lines = (REQUIREMENTS / "build.in").read_text().splitlines()
        return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    extra = project["optional-dependencies"]["test"] if kind == "dev" else []
    return [Requirement(text) for text in project["dependencies"] + extra]


# --- the supported range, said the same way everywhere ----------------------------------------------------------

def test_supported_minors_are_a_contiguous_range_from_3_11():
    minors = supported_minors()
    assert minors[0] == "3.11"
    assert minors == [f"3.{n}" for n in range(11, 11 + len(minors))], minors


@pytest.mark.parametrize("kind", KINDS)
def test_there_is_one_lock_of_each_kind_for_every_supported_minor_and_no_other(kind):
    assert locked_minors(kind) == supported_minors()


def test_classifiers_name_exactly_the_supported_minors():
    classifiers = pyproject()["project"]["classifiers"]
    named = [c.rsplit(" :: ", 1)[1] for c in classifiers
             if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert named == supported_minors()
    assert "Programming Language :: Python :: Implementation :: CPython" in classifiers


def test_dockerfile_refuses_the_minors_outside_the_range_and_defaults_to_the_newest_on_trixie():
    text = (REPO / "Dockerfile").read_text()
    minors = supported_minors()
    assert re.search(r"^RUN oldest=(\S+) newest=(\S+) ", text, re.M).groups() == (minors[0], minors[-1])
    assert re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)[1] == f"python:{minors[-1]}-slim-trixie"


def test_lock_script_compiles_every_supported_minor():
    text = (REQUIREMENTS / "lock.sh").read_text()
    assert re.search(r'^SUPPORTED="([^"]*)"$', text, re.M)[1].split() == supported_minors()


def test_docker_setup_builds_bases_for_the_oldest_and_the_newest():
    text = (REPO / "tests" / "setup" / "docker.sh").read_text()
    minors = supported_minors()
    assert re.search(r"^PYTHON_OLDEST=(\S+)$", text, re.M)[1] == minors[0]
    assert re.search(r"^PYTHON_NEWEST=(\S+)$", text, re.M)[1] == minors[-1]


def test_docs_table_lists_every_supported_python_with_its_base_tags_and_locks():
    readme = (REPO / "README.md").read_text()
    reference = (REPO / "docs" / "reference.md").read_text()
    section = reference.split("\n## Python versions and image tags\n", 1)[1].split("\n#", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
            if re.match(r"\| 3\.\d+ \|", line)]
    version, minors = pyproject()["project"]["version"], supported_minors()
    assert [row[0] for row in rows] == minors[::-1]
    for minor, base, tags, locks, *_ in rows:
        default = minor == minors[-1]
        assert base == f"`python:{minor}-slim-trixie`" + (" (default)" if default else ""), base
        assert tags == (f"`{version}`, " if default else "") + f"`{version}-py{minor}`", tags
        assert locks == f"`requirements/*-py{minor}.lock`", locks
    assert f"`BASE_IMAGE` defaults to the official `python:{minors[-1]}-slim-trixie`" in readme


# --- every lock installs, hash-checked, on its own Python ---------------------------------------------------------

CASES = [(kind, minor, arch) for kind in KINDS for minor in locked_minors(kind) for arch in ARCHITECTURES
         if kind == "runtime" or arch == ARCHITECTURES[0]]


def target_tags(minor: str, arch: str) -> list[Tag]:
    """The wheel tags CPython ``minor`` accepts on manylinux ``arch``, best first (what pip ranks files by)."""
    version = tuple(int(n) for n in minor.split("."))
    abi = "cp" + minor.replace(".", "")
    platforms = [f"manylinux_2_{n}_{arch}" for n in reversed(GLIBC_MINORS)] + [f"manylinux2014_{arch}"]
    return [*cpython_tags(version, [abi], platforms), *compatible_tags(version, abi, platforms)]


def pip_download(kind: str, minor: str, arch: str, wheels: Path, offline: bool) -> subprocess.CompletedProcess:
    """``pip download`` of the lock, hash-checked, for CPython ``minor`` on manylinux ``arch``: wheels only, into
    ``wheels`` (a file already there is hash-checked instead of fetched again; ``offline`` fetches nothing).
    Dependencies are not followed: pip would evaluate their markers for the Python running it, not ``minor``."""
    platforms = [f"manylinux_2_{n}_{arch}" for n in GLIBC_MINORS] + [f"manylinux2014_{arch}"]
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
            "--require-hashes", "--only-binary", ":all:", "--python-version", minor, "--implementation", "cp",
            "--abi", "cp" + minor.replace(".", ""),
            *(arg for platform in platforms for arg in ("--platform", platform)),
            "--dest", str(wheels), "-r", str(REQUIREMENTS / f"{kind}-py{minor}.lock")]
    if offline:
        argv += ["--no-index", "--find-links", str(wheels)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def downloads(request, tmp_path_factory) -> dict[tuple[str, str, str], tuple[int, str, Path]]:
    """Every case's ``pip download`` (exit status, errors, the wheels directory). The wheels stay in pytest's cache
    between runs: a rerun checks the hashes of the files it has and fetches nothing."""
    cache = getattr(request.config, "cache", None)
    wheels = cache.mkdir("locked-wheels") if cache else tmp_path_factory.mktemp("locked-wheels")
    with ThreadPoolExecutor(max_workers=4) as pool:
        offline = dict(zip(CASES, pool.map(lambda case: pip_download(*case, wheels, offline=True), CASES)))
    results = {}
    # What is missing is fetched one lock at a time: two pips writing the same file would trip each other's hash check.
    for case in CASES:
        done = offline[case] if offline[case].returncode == 0 else pip_download(*case, wheels, offline=False)
        errors = "\n".join(line for line in done.stderr.splitlines() if "is ignored" not in line)
        results[case] = (done.returncode, errors, wheels)
    return results


def wheel_metadata(wheels: Path, name: str, version: str, tags: list[Tag]) -> tuple[Path, Message] | None:
    """The wheel pip takes for ``name==version`` among ``wheels`` (the best-ranked tag) and its METADATA."""
    ranked = []
    for path in wheels.glob("*.whl"):
        wheel_name, wheel_version, _, wheel_tags = parse_wheel_filename(path.name)
        if wheel_name == name and wheel_version == Version(version) and wheel_tags & set(tags):
            ranked.append((min(tags.index(tag) for tag in wheel_tags if tag in tags), path))
    if not ranked:
        return None
    path = min(ranked)[1]
    with zipfile.ZipFile(path) as archive:
        member = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return path, Parser().parsestr(archive.read(member).decode())


def marker_environment(minor: str, arch: str) -> dict[str, str]:
    return {"python_version": minor, "python_full_version": f"{minor}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "sys_platform": "linux", "os_name": "posix",
            "platform_system": "Linux", "platform_machine": arch}


def required_closure(kind: str, requires: dict[str, list[str]], pins: dict[str, str], minor: str,
                     arch: str) -> tuple[set[str], list[str]]:
    """(every package the roots need on this Python, following the wheels' own Requires-Dist; problems found)."""
    environment = marker_environment(minor, arch)
    needed, problems, seen = set(), [], set()
    todo = [(requirement, "") for requirement in roots(kind)]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate(environment | {"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{name} ({requirement}) is needed and not pinned")
            continue
        if not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{name}=={pins[name]} does not satisfy {requirement}")
        needed.add(name)
        for wanted in {"", *requirement.extras}:
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                todo += [(Requirement(text), wanted) for text in requires[name]]
    return needed, problems


@pytest.mark.parametrize(("kind", "minor", "arch"), CASES, ids=["-".join(case) for case in CASES])
def test_lock_installs_with_require_hashes_on_its_own_python_and_pins_exactly_what_it_needs(kind, minor, arch,
                                                                                           downloads):
    returncode, errors, wheels = downloads[(kind, minor, arch)]
    assert returncode == 0, f"requirements/{kind}-py{minor}.lock on CPython {minor} {arch}:\n{errors[-3000:]}"
    pins = lock_pins(REQUIREMENTS / f"{kind}-py{minor}.lock")
    tags = target_tags(minor, arch)
    requires = {}
    for name, version in pins.items():
        found = wheel_metadata(wheels, name, version, tags)
        assert found, f"no wheel of {name}=={version} for CPython {minor} {arch} among what pip downloaded"
        requires[name] = found[1].get_all("Requires-Dist") or []
    needed, problems = required_closure(kind, requires, pins, minor, arch)
    assert problems == []
    assert needed == set(pins), f"pinned but not needed on {minor}: {sorted(set(pins) - needed)}"
