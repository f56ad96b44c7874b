# alembic-sidecar: bring a database to the right Alembic revision, then exit.
#   docker build -t alembic-sidecar .
#   docker run --rm -e DATABASE_URL=... -v "$PWD/migrations/versions:/migrations/versions:ro" alembic-sidecar
# BASE_IMAGE must be a Debian-based CPython 3.11 image with `python` and the venv module (the lock targets 3.11).
# Pin it by digest for a build that cannot change under you: BASE_IMAGE=python:3.11-slim@sha256:<digest>.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: hash-locked build tools, the locked dependencies in a virtual environment, the project on top ----
FROM ${BASE_IMAGE} AS builder
# binutils' strip drops the debug info the wheels' extension modules ship with (about 19 MB of 22).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every package that enters the build is pinned by hash. The tools (pip, setuptools) live in a venv of their own,
# bootstrapped by the base's bundled pip; the venv the image runs is made without pip and receives only
# requirements.lock and the project's wheel (pip's --python installs into it from outside).
COPY requirements-build.lock /build/requirements-build.lock
RUN python -m venv /opt/build-tools \
 && /opt/build-tools/bin/pip install --no-compile --require-hashes -r /build/requirements-build.lock \
 && python -m venv --without-pip /opt/venv
# Dependencies change less often than the code: their layer is reused until requirements.lock changes.
COPY requirements.lock /build/requirements.lock
RUN /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-compile --require-hashes \
      -r /build/requirements.lock
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
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib

# ---- runtime: the same Python, the venv, no pip, a numeric non-root user ----
FROM ${BASE_IMAGE}
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
# (python:3.11-slim has pip in /usr/local), even from a Python its base marks as externally managed.
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
