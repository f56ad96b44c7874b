#!/bin/sh
# Regenerate every hash-lock, for every supported CPython minor, with uv (https://docs.astral.sh/uv/):
#   sh requirements/lock.sh               keep today's pins where they still resolve (new dependencies get the newest)
#   sh requirements/lock.sh --upgrade     move everything to the newest releases (any `uv pip compile` option passes)
# For each minor 3.X of SUPPORTED (pyproject.toml's requires-python and the Dockerfile's check say the same range):
#   runtime-py3.X.lock  pyproject.toml's dependencies: what the image installs on CPython 3.X;
#   build-py3.X.lock    build.in (pip, setuptools): the image's builder-stage tools on 3.X;
#   dev-py3.X.lock      the dependencies plus the `test` extra: the test suite's virtual environment on 3.X.
# Each lock is resolved for its own Python (markers evaluated for 3.X) from wheels alone: a release without a wheel
# for 3.X on glibc 2.36 (bookworm's, the oldest of any supported base) is passed over, as the image build takes no
# sdist. It carries the hash of every file of every pinned release, so one lock serves every architecture
# (tests/unit/test_locks.py installs each one, hash-checked, on x86_64 and aarch64). A lock that does not exist yet
# starts from the one of the previous minor, so a new Python gets the pins the others have unless it needs others.
# uv must be on PATH (`pipx install uv`, or `pip install uv` into any virtual environment), or named by $UV.
set -eu

SUPPORTED="3.11 3.12 3.13 3.14 3.15"
HERE=$(cd "$(dirname "$0")" && pwd)
UV=${UV:-uv}
command -v "$UV" >/dev/null 2>&1 || {
    echo "lock.sh: uv not found: install it (pipx install uv) or set UV=/path/to/uv" >&2
    exit 1
}

# The options passed on to `uv pip compile` (--upgrade, --upgrade-package NAME, ...).
extra=$*
cd "$HERE/.."
previous=
for version in $SUPPORTED; do
    for kind in runtime build dev; do
        lock=requirements/$kind-py$version.lock
        if [ ! -e "$lock" ] && [ -n "$previous" ]; then cp "requirements/$kind-py$previous.lock" "$lock"; fi
        case $kind in
            runtime) set -- pyproject.toml ;;
            build) set -- requirements/build.in ;;
            dev) set -- pyproject.toml --extra test ;;
        esac
        "$UV" pip compile --quiet "$@" --python-version "$version" --python-platform x86_64-manylinux_2_36 \
            --only-binary :all: --generate-hashes \
            --custom-compile-command "sh requirements/lock.sh (CPython $version)" --output-file "$lock" $extra
    done
    previous=$version
done
echo "lock.sh: requirements/{runtime,build,dev}-py{$(echo "$SUPPORTED" | tr ' ' ',')}.lock written" >&2
