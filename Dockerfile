# alembic-sidecar: bring a database to the right Alembic revision, then exit.
#   docker build -t alembic-sidecar:0.1.0 -t alembic-sidecar:0.1.0-py3.15 .
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-trixie -t alembic-sidecar:0.1.0-py3.11 .
#   docker build --target ci -t alembic-sidecar:0.1.0-ci .   (the CI variant: `lint` with squawk)
#   docker run --rm -e DATABASE_URL=... -v "$PWD/migrations/versions:/migrations/versions:ro" alembic-sidecar:0.1.0
# BASE_IMAGE: a Debian-based CPython 3.11 to 3.15 image with `python` and the venv module. The default is the newest
# CPython every dependency ships wheels for, on Debian 13 (trixie). The build installs the locks resolved for the
# base's own minor (requirements/*-py3.X.lock) and refuses any other Python at its first step.
# Pin it by digest for a build that cannot change under you: BASE_IMAGE=python:3.15-slim-trixie@sha256:<digest>.
ARG BASE_IMAGE=python:3.15-slim-trixie

# ---- builder: hash-locked build tools, the locked dependencies in a virtual environment, the project on top ----
FROM ${BASE_IMAGE} AS builder
# The supported range (pyproject.toml's requires-python; one lock of each kind per minor in requirements/). A base
# outside it stops here with one line, before anything is downloaded: there is no lock resolved for its Python, and an
# image built anyway would break at run time. The minor found names the locks the next steps install.
# binutils' strip drops the debug info the wheels' extension modules ship with (about 19 MB of 22).
RUN oldest=3.11 newest=3.15 \
 && supported="alembic-sidecar supports CPython $oldest to $newest (BASE_IMAGE=python:3.X-slim-trixie)" \
 && { command -v python >/dev/null || { echo "BASE_IMAGE has no python command; $supported" >&2; exit 1; }; } \
 && mkdir /build \
 && python -c 'import sys; \
      v = sys.version_info; name = getattr(getattr(sys, "implementation", None), "name", "python"); \
      oldest, newest, supported = sys.argv[1:]; minor = lambda text: tuple(int(n) for n in text.split(".")); \
      name == "cpython" and minor(oldest) <= tuple(v[:2]) <= minor(newest) \
        or sys.exit("BASE_IMAGE has %s %d.%d; %s" % (name, v[0], v[1], supported)); \
      print("%d.%d" % tuple(v[:2]))' "$oldest" "$newest" "$supported" >/build/python-minor \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every package that enters the build is pinned by hash, and only wheels are taken (no sdist runs code here). The
# tools (pip, setuptools) live in a venv of their own, bootstrapped by the base's bundled pip; the venv the image runs
# is made without pip and receives only the runtime lock and the project's wheel (pip's --python installs into it
# from outside). Every minor's locks are copied; the minor found above picks its own.
COPY requirements/build-py*.lock /build/requirements/
RUN python -m venv /opt/build-tools \
 && /opt/build-tools/bin/pip install --no-compile --require-hashes --only-binary :all: \
      -r "/build/requirements/build-py$(cat /build/python-minor).lock" \
 && python -m venv --without-pip /opt/venv
# Dependencies change less often than the code: their layer is reused until a runtime lock changes.
COPY requirements/runtime-py*.lock /build/requirements/
RUN /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-compile --require-hashes --only-binary :all: \
      -r "/build/requirements/runtime-py$(cat /build/python-minor).lock"
COPY pyproject.toml README.md /build/
COPY entrypoint /build/entrypoint
COPY image /build/image
# The wheel is built by the locked setuptools above (--no-build-isolation) and nothing is fetched (--no-index);
# --check-build-dependencies fails the build when that setuptools does not satisfy [build-system] requires.
# Hash-checked .pyc files never go stale against a source mtime, so nothing is compiled or stat'ed at start-up.
RUN /opt/build-tools/bin/pip wheel --no-index --no-deps --no-build-isolation --check-build-dependencies \
      --wheel-dir /build/dist /build \
 && /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-index --no-deps --no-compile /build/dist/*.whl \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} + \
 && find /opt/venv -name '*.so' -exec strip --strip-debug {} + \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && lib="lib/python$(cat /build/python-minor)/site-packages" \
 && mkdir -p "/opt/lint/bin" "/opt/lint/$lib" \
 && mv /opt/venv/bin/squawk /opt/lint/bin/ \
 && mv /opt/venv/"$lib"/squawk_cli-*.dist-info "/opt/lint/$lib/"
# squawk (PostgreSQL's rules for `lint`, a 25 MB binary) is set aside above: the deploy image would add 55 MB to its
# base with it, past the 45 MB bar, so only the `ci` target below carries it.

# ---- runtime: the same Python, the venv, no pip, a numeric non-root user ----
FROM ${BASE_IMAGE} AS deploy
ARG BASE_IMAGE
ARG VERSION=0.1.0
# Only what this Dockerfile knows for a fact; a CI that builds from a repository adds its own with
# --label org.opencontainers.image.source=<url> --label org.opencontainers.image.revision=<commit>.
LABEL org.opencontainers.image.title="alembic-sidecar" \
      org.opencontainers.image.description="Bring a database to the right Alembic revision before an application starts: async, locked, with clean exit codes." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# Nothing installs packages at run time: the base's own pip, setuptools and wheel go too, where it has them
# (the official python:*-slim images have pip in /usr/local), even from a Python its base marks as externally managed.
# Derived images install their libraries in a build stage of their own (image/derived-example).
RUN if python -m pip --version >/dev/null 2>&1; then \
      PIP_BREAK_SYSTEM_PACKAGES=1 python -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi
# No .pyc writes at run time (the root filesystem may be read-only); logs leave unbuffered, line by line.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/venv /opt/venv
# Revision files are mounted at /migrations/versions (MIGRATE_VERSIONS_DIR's default), read-only is enough. No VOLUME:
# it would make an anonymous writable volume on every run, and a derived image could not take it back.
WORKDIR /migrations
# Any UID works (OpenShift assigns one); group 0 as OpenShift expects. Nothing in the image needs to be writable.
USER 10001:0
# Exec form: alembic-sidecar is PID 1 and receives SIGTERM itself (it rolls back, releases the lock, exits 143).
ENTRYPOINT ["alembic-sidecar"]
CMD ["upgrade"]

# ---- ci: the deploy image plus squawk, for `lint` on PostgreSQL in a CI job (tag 0.1.0-ci) ----
#   docker build --target ci -t alembic-sidecar:0.1.0-ci .
FROM deploy AS ci
COPY --from=builder /opt/lint/ /opt/venv/

# ---- the default target: the deploy image ----
FROM deploy
