"""The two documented ways to give revision files the user's own libraries: a derived image and MIGRATE_PYTHONPATH."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.docker import build_image, docker

from .support import assert_exit, assert_failed, assert_no_packaging_tools, packaging_tools

pytestmark = pytest.mark.container

RECIPE = Path(__file__).resolve().parents[2] / "image" / "derived-example"
PACKAGE_SRC = RECIPE / "example_types" / "src"


def build_wheel(project: Path, dist: Path) -> Path:
    """A pure-Python wheel of a src-layout project, written directly (what `pip wheel` makes; no build backend or
    network needed on the test machine)."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    name, version = meta["name"].replace("-", "_"), meta["version"]
    dist_info = f"{name}-{version}.dist-info"
    files = {str(path.relative_to(project / "src")): path.read_bytes()
             for path in sorted((project / "src").rglob("*.py"))}
    files[f"{dist_info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {version}\n"
                                      + "".join(f"Requires-Dist: {d}\n" for d in meta["dependencies"])).encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    dist.mkdir(parents=True, exist_ok=True)
    wheel = dist / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


#: What a derived image may add on top of the sidecar image here: the example's one small module and its metadata,
#: the revision file, bytecode; not a second copy of the virtual environment (about 30 MB).
MAX_DERIVED_ADDED_BYTES = 100 * 1000


@pytest.fixture(scope="module")
def derived_image(sidecar_image, tmp_path_factory) -> str:
    """image/derived-example built FROM the image under test, its local package as a wheel (no network)."""
    context = tmp_path_factory.mktemp("derived") / "context"
    shutil.copytree(RECIPE, context, ignore=shutil.ignore_patterns("__pycache__"))
    build_wheel(context / "example_types", context / "wheels")
    tag = build_image(f"alembic-sidecar-derived:test-{secrets.token_hex(4)}", context,
                      build_args={"SIDECAR_IMAGE": sidecar_image})
    yield tag
    docker("rmi", "-f", tag, check=False)


def inspect(image: str) -> dict:
    return json.loads(docker("image", "inspect", image).stdout)[0]


def layer_bytes(image: str) -> int:
    return sum(int(size) for size in docker("history", "--no-trunc", "--human=false", "--format", "{{.Size}}",
                                            image).stdout.split())


def test_derived_image_runs_a_revision_that_imports_a_pip_installed_type(derived_image, docker_run, pg_database):
    # The revisions are baked into the derived image: nothing is mounted.
    result = docker_run(derived_image, env={"DATABASE_URL": pg_database.url}, user="12345:0", read_only=True)
    assert_exit(result, 0)
    assert pg_database.revisions() == ["0002"]
    assert pg_database.scalar("SELECT character_maximum_length FROM information_schema.columns "
                              "WHERE table_name = 'subscribers' AND column_name = 'email'") == 320


def test_derived_image_adds_only_the_library_and_keeps_the_sidecars_configuration(derived_image, sidecar_image):
    derived, sidecar = inspect(derived_image), inspect(sidecar_image)
    assert derived["RootFS"]["Layers"][:len(sidecar["RootFS"]["Layers"])] == sidecar["RootFS"]["Layers"]
    added = layer_bytes(derived_image) - layer_bytes(sidecar_image)
    assert 0 < added < MAX_DERIVED_ADDED_BYTES, f"the derived image adds {added} bytes"
    for key in ("User", "Entrypoint", "Cmd", "WorkingDir", "Env", "Volumes"):
        assert derived["Config"][key] == sidecar["Config"][key], key


def test_derived_image_carries_no_pip_either(derived_image, docker_run):
    assert_no_packaging_tools(packaging_tools(docker_run, derived_image))


def test_derived_image_has_the_librarys_bytecode_compiled_for_its_installed_path(derived_image, docker_run):
    # Compiled in the build stage under /extra, named for where it runs (tracebacks show the real path).
    # The library (installed by pip) and the application's package (copied as source), on the image's own Python.
    script = ("import importlib.util, marshal, pathlib, sysconfig, sidecar_example_types, sidecar_example_app\n"
              "print(sysconfig.get_path('purelib'))\n"
              "for m in (sidecar_example_types, sidecar_example_app):\n"
              "    pyc = pathlib.Path(importlib.util.cache_from_source(m.__file__))\n"
              "    print(m.__file__, marshal.loads(pyc.read_bytes()[16:]).co_filename)\n")
    result = docker_run(derived_image, "-c", script, entrypoint="python", user="12345:0", read_only=True)
    assert_exit(result, 0)
    site_packages, *compiled = result.stdout.split()
    assert site_packages.startswith("/opt/venv/lib/python3."), site_packages
    installed = [f"{site_packages}/{name}/__init__.py" for name in ("sidecar_example_types", "sidecar_example_app")]
    assert compiled == [installed[0], installed[0], installed[1], installed[1]], result.stdout


def test_derived_build_fails_when_a_library_needs_another_version_of_a_package_the_image_has(sidecar_image, tmp_path):
    # Without the image's versions as constraints, pip would put typing-extensions 4.15.0 under /extra and the final
    # COPY would overwrite the image's own copy, which SQLAlchemy imports.
    context = tmp_path / "context"
    shutil.copytree(RECIPE, context, ignore=shutil.ignore_patterns("__pycache__"))
    for name, version, dependencies in (("typing-extensions", "4.15.0", []),
                                        ("needs-old-typing", "1.0.0", ["typing-extensions==4.15.0"])):
        project = tmp_path / name
        module = project / "src" / f"{name.replace('-', '_')}.py"
        module.parent.mkdir(parents=True)
        module.write_text('"""A stand-in."""\n')
        (project / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = {json.dumps(dependencies)}\n')
        build_wheel(project, context / "wheels")
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("/tmp/wheels sidecar-example-types",
                                                         "/tmp/wheels needs-old-typing"))
    assert "needs-old-typing" in dockerfile.read_text()
    tag = f"alembic-sidecar-derived:test-must-fail-{secrets.token_hex(4)}"
    done = docker("build", "--network", "host", "--force-rm", "--build-arg", f"SIDECAR_IMAGE={sidecar_image}",
                  "-t", tag, str(context), check=False)
    if done.returncode == 0:
        docker("rmi", "-f", tag, check=False)
    assert done.returncode != 0, done.stdout[-3000:]
    assert "typing-extensions==4.15.0" in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]
    assert "ResolutionImpossible" in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]


def dockerfile_instructions(text: str) -> list[str]:
    """A Dockerfile's instructions: comments dropped, continuation lines joined, whitespace collapsed."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return [" ".join(line.split()) for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def test_documented_recipe_is_the_tested_example_with_hash_locked_requirements_instead_of_a_local_wheel(repo_root):
    page = (repo_root / "docs" / "your-own-project.md").read_text()
    section = page.split("\n## Revision files that import your own libraries\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```dockerfile\n(.*?)```", section, re.S)
    assert block, "no dockerfile block in docs/your-own-project.md's derived-image recipe"
    local = "--no-index --find-links /tmp/wheels sidecar-example-types"
    example = [line.replace(local, "--require-hashes -r /tmp/requirements.txt")
               for line in dockerfile_instructions((RECIPE / "Dockerfile").read_text())]
    steps = ("USER ", "RUN ", "COPY --from=")
    assert [line for line in dockerfile_instructions(block[1]) if line.startswith(steps)] == \
        [line for line in example if line.startswith(steps)]


def test_migrate_pythonpath_mount_makes_the_same_revision_importable(docker_run, sidecar_image, pg_database):
    mounts = {str(RECIPE / "versions"): "/migrations/versions:ro", str(PACKAGE_SRC): "/opt/app-lib:ro",
              str(RECIPE / "app"): "/opt/app:ro"}
    result = docker_run(sidecar_image, env={"DATABASE_URL": pg_database.url,
                                            "MIGRATE_PYTHONPATH": "/opt/app-lib:/opt/app"},
                        volumes=mounts, user="12345:0", read_only=True)
    assert_exit(result, 0)
    assert pg_database.revisions() == ["0002"]
    assert "subscribers" in pg_database.tables()


def test_without_either_recipe_the_import_fails_with_7_and_nothing_changes(docker_run, sidecar_image, pg_database):
    result = docker_run(sidecar_image, env={"DATABASE_URL": pg_database.url},
                        volumes={str(RECIPE / "versions"): "/migrations/versions:ro"})
    assert_failed(result, 7, "sidecar_example_types")
    assert pg_database.tables() == []
