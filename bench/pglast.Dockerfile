# What pglast (PostgreSQL's parser, the candidate `lint` did not take) would add to the deploy image, installed the
# way the Dockerfile installs every wheel: debug info stripped from its extension module, bytecode compiled.
#   docker build -f bench/pglast.Dockerfile --build-arg BASE_IMAGE=<base> --build-arg IMAGE=<deploy image> \
#     --build-arg PGLAST=pglast==8.8 -t <tag> bench
# then `bench/lint.py --images <base> <deploy image> <ci image> <tag>`.
ARG BASE_IMAGE=python:3.15-slim-trixie
ARG IMAGE=alembic-sidecar:0.1.0
FROM ${BASE_IMAGE} AS builder
ARG PGLAST=pglast
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install -q --no-deps --no-compile --only-binary :all: --target /opt/pglast "$PGLAST" \
 && find /opt/pglast -name '*.so' -exec strip --strip-debug {} + \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/pglast
FROM ${IMAGE}
COPY --from=builder /opt/pglast /opt/pglast
