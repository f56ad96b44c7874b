#!/bin/sh
# Prepare Docker for the container tests on a fresh machine, idempotently:
#   1. install docker.io, docker-compose and mmdebstrap when missing (Debian/Ubuntu, apt-get);
#   2. start dockerd in the background when no engine answers;
#   3. choose the base images: the official ones when they are present or `docker pull` works, otherwise local
#      stand-ins built from Debian packages with mmdebstrap + `docker import` (cached: built once per recipe);
#      two Python bases: the newest supported CPython (the Dockerfile's default) and the oldest (3.11), and one with a
#      CPython older than that, which the Dockerfile must refuse;
#   4. write the choice as KEY=value lines to $SIDECAR_IMAGES_ENV (also a `docker-compose --env-file`) and print it:
#      BASE_IMAGE (newest), BASE_IMAGE_OLDEST, PYTHON_NEWEST and PYTHON_OLDEST (minors), BASE_IMAGE_UNSUPPORTED,
#      POSTGRES_IMAGE, MARIADB_IMAGE.
# Exits non-zero when no working engine can be had; tests on CI (CI=true) then fail instead of skipping.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
IMAGES_ENV=${SIDECAR_IMAGES_ENV:-${TMPDIR:-/tmp}/alembic-sidecar-images.env}
DOCKERD_LOG=${SIDECAR_DOCKERD_LOG:-/var/log/alembic-sidecar-dockerd.log}
MIRROR=${SIDECAR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The suites the stand-ins come from: bookworm's python3 is 3.11 (the oldest supported CPython), as are the servers;
# only sid carries the newest CPython. The Dockerfile's default and the locks decide which minors these are.
SUITE=bookworm
PYTHON_OLDEST=3.11
PYTHON_NEWEST=3.15
NEWEST_SUITE=sid
# bullseye's python3 is 3.9: a real CPython below the range.
UNSUPPORTED_SUITE=bullseye
# minbase is what debian:bookworm-slim (under the official images) holds: apt, libstdc++ (greenlet needs it), no docs.
VARIANT=minbase
# Official images (used when they can be had) and the tags of their local stand-ins.
OFFICIAL_PYTHON=${SIDECAR_OFFICIAL_PYTHON:-python:$PYTHON_NEWEST-slim-trixie}
OFFICIAL_PYTHON_OLDEST=${SIDECAR_OFFICIAL_PYTHON_OLDEST:-python:$PYTHON_OLDEST-slim-trixie}
OFFICIAL_PYTHON_UNSUPPORTED=${SIDECAR_OFFICIAL_PYTHON_UNSUPPORTED:-python:3.10-slim-trixie}
OFFICIAL_POSTGRES=${SIDECAR_OFFICIAL_POSTGRES:-postgres:15}
OFFICIAL_MARIADB=${SIDECAR_OFFICIAL_MARIADB:-mariadb:10.11}
STANDIN_PYTHON=alembic-sidecar-standin/python:$PYTHON_NEWEST
STANDIN_PYTHON_OLDEST=alembic-sidecar-standin/python:$PYTHON_OLDEST
STANDIN_PYTHON_UNSUPPORTED=alembic-sidecar-standin/python:3.9
STANDIN_POSTGRES=alembic-sidecar-standin/postgres:15
STANDIN_MARIADB=alembic-sidecar-standin/mariadb:10.11
HOST_CA=/etc/ssl/certs/ca-certificates.crt

log() { printf 'docker-setup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

install_packages() {
    missing=
    command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
    command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
    command -v mmdebstrap >/dev/null 2>&1 || missing="$missing mmdebstrap"
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing:$missing and no apt-get to install them"
    log "installing$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

start_engine() {
    if docker info >/dev/null 2>&1; then return 0; fi
    command -v dockerd >/dev/null 2>&1 || die "no dockerd to start"
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        log "starting dockerd (log: $DOCKERD_LOG)"
        # setsid: the daemon outlives this script and the test session that started it.
        $SUDO sh -c "setsid dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &"
    fi
    i=0
    until docker info >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -le 60 ] || { tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true; die "dockerd did not answer within 60 s"; }
        sleep 1
    done
    log "engine ready: $(docker version --format '{{.Server.Version}}')"
}

# recipe_hash SUITE WORDS...: a short hash of a stand-in's recipe; an image carrying another hash is rebuilt.
recipe_hash() { suite=$1; shift; printf '%s' "$suite $VARIANT $*" | sha256sum | cut -c1-16; }

image_recipe() { docker image inspect --format '{{ index .Config.Labels "org.alembic-sidecar.standin-recipe" }}' "$1" 2>/dev/null || true; }

# build_standin TAG SUITE RECIPE PACKAGES ENTRYPOINT_FILE(or -) DOCKER_IMPORT_CHANGES...
build_standin() {
    tag=$1 suite=$2 recipe=$3 packages=$4 entry=$5
    shift 5
    if [ "$(image_recipe "$tag")" = "$recipe" ]; then log "cached: $tag"; return 0; fi
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is needed to build $tag"
    log "building stand-in $tag from Debian $suite packages: $packages"
    work=$(mktemp -d)
    set -- "$@" --change "LABEL org.alembic-sidecar.standin-recipe=$recipe"
    if [ "$entry" != - ]; then
        cp "$entry" "$work/docker-entrypoint.sh"
        chmod 0755 "$work/docker-entrypoint.sh"
        set -- "$@" --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
    fi
    # The mirror's copy of sid can be older than its Release file's Valid-Until allows; a stand-in needs no freshness.
    valid_until=
    [ "$suite" = "$SUITE" ] || valid_until='Acquire::Check-Valid-Until "false"'
    # The packaged server's default cluster/datadir is dropped: the entrypoint initialises its own from env vars.
    # /usr/local/bin/python* (where the official images have them) name the interpreter the stand-in is for.
    $SUDO mmdebstrap --quiet --variant=$VARIANT --include="$packages" ${valid_until:+--aptopt="$valid_until"} \
        --customize-hook="mkdir -p \"\$1$(dirname $HOST_CA)\" && cp $HOST_CA \"\$1$HOST_CA\"" \
        --customize-hook="if [ -e '$work/docker-entrypoint.sh' ]; then cp '$work/docker-entrypoint.sh' \"\$1/usr/local/bin/\"; fi" \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15/main "$1"/var/lib/mysql/*' \
        --customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*' \
        --customize-hook="for n in ${STANDIN_INTERPRETER:+python python3}; do
                              ln -s '${STANDIN_INTERPRETER:-}' \"\$1/usr/local/bin/\$n\"; done" \
        "$suite" "$work/rootfs.tar" "$MIRROR" >&2
    docker import "$@" "$work/rootfs.tar" "$tag" >/dev/null
    $SUDO rm -rf "$work"
    log "built $tag"
}

# choose OFFICIAL BUILD_FUNCTION: prints the image to use.
choose() {
    if [ "${SIDECAR_FORCE_STANDINS:-}" != 1 ]; then
        if docker image inspect "$1" >/dev/null 2>&1 || timeout 60 docker pull -q "$1" >/dev/null 2>&1; then
            printf '%s\n' "$1"
            return 0
        fi
    fi
    log "cannot pull $1; using a local stand-in"
    "$2"
}

# The oldest supported CPython: bookworm's own python3 (3.11), `python` from python-is-python3.
python_oldest_standin() {
    pkgs=python3,python3-venv,python-is-python3,ca-certificates
    build_standin "$STANDIN_PYTHON_OLDEST" "$SUITE" "$(recipe_hash "$SUITE" "$pkgs" "$(cat "$HOST_CA")")" "$pkgs" - \
        --change "ENV PIP_CERT=$HOST_CA" --change "ENV SSL_CERT_FILE=$HOST_CA" \
        --change "ENV LANG=C.UTF-8" --change 'CMD ["python3"]'
    printf '%s\n' "$STANDIN_PYTHON_OLDEST"
}

# Below the range: only the build's first step runs on it.
python_unsupported_standin() {
    pkgs=python3,python-is-python3
    build_standin "$STANDIN_PYTHON_UNSUPPORTED" "$UNSUPPORTED_SUITE" "$(recipe_hash "$UNSUPPORTED_SUITE" "$pkgs")" \
        "$pkgs" - --change "ENV LANG=C.UTF-8" --change 'CMD ["python3"]'
    printf '%s\n' "$STANDIN_PYTHON_UNSUPPORTED"
}

# The newest: sid's python3.$N next to (not instead of) its default python3, so `python` and `python3` are linked
# in /usr/local/bin, first on PATH, as in the official images.
python_newest_standin() {
    pkgs=python$PYTHON_NEWEST,python$PYTHON_NEWEST-venv,ca-certificates
    STANDIN_INTERPRETER=/usr/bin/python$PYTHON_NEWEST
    build_standin "$STANDIN_PYTHON" "$NEWEST_SUITE" \
        "$(recipe_hash "$NEWEST_SUITE" "$pkgs" "$STANDIN_INTERPRETER" "$(cat "$HOST_CA")")" "$pkgs" - \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "ENV PIP_CERT=$HOST_CA" --change "ENV SSL_CERT_FILE=$HOST_CA" \
        --change "ENV LANG=C.UTF-8" --change 'CMD ["python3"]'
    printf '%s\n' "$STANDIN_PYTHON"
}

postgres_standin() {
    pkgs=postgresql-15
    build_standin "$STANDIN_POSTGRES" "$SUITE" "$(recipe_hash "$SUITE" "$pkgs" "$(cat "$HERE/standin-postgres.sh")")" \
        "$pkgs" \
        "$HERE/standin-postgres.sh" \
        --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PGDATA=/var/lib/postgresql/data' --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["postgres"]'
    printf '%s\n' "$STANDIN_POSTGRES"
}

mariadb_standin() {
    pkgs=mariadb-server
    build_standin "$STANDIN_MARIADB" "$SUITE" "$(recipe_hash "$SUITE" "$pkgs" "$(cat "$HERE/standin-mariadb.sh")")" \
        "$pkgs" \
        "$HERE/standin-mariadb.sh" --change 'ENV LANG=C.UTF-8' --change 'CMD ["mariadbd"]'
    printf '%s\n' "$STANDIN_MARIADB"
}

main() {
    install_packages
    start_engine
    # The five choices (pulls or stand-in builds, mostly downloads) run side by side.
    out=$(mktemp -d)
    choose "$OFFICIAL_PYTHON" python_newest_standin >"$out/base" & p1=$!
    choose "$OFFICIAL_PYTHON_OLDEST" python_oldest_standin >"$out/oldest" & p2=$!
    choose "$OFFICIAL_PYTHON_UNSUPPORTED" python_unsupported_standin >"$out/unsupported" & p3=$!
    choose "$OFFICIAL_POSTGRES" postgres_standin >"$out/postgres" & p4=$!
    choose "$OFFICIAL_MARIADB" mariadb_standin >"$out/mariadb" & p5=$!
    failed=0
    for pid in $p1 $p2 $p3 $p4 $p5; do wait "$pid" || failed=1; done
    for name in base oldest unsupported postgres mariadb; do
        [ -s "$out/$name" ] || failed=1
    done
    [ "$failed" = 0 ] || die "could not get the base images"
    tmp="$IMAGES_ENV.$$"
    {
        printf 'BASE_IMAGE=%s\nBASE_IMAGE_OLDEST=%s\n' "$(cat "$out/base")" "$(cat "$out/oldest")"
        printf 'PYTHON_NEWEST=%s\nPYTHON_OLDEST=%s\n' "$PYTHON_NEWEST" "$PYTHON_OLDEST"
        printf 'BASE_IMAGE_UNSUPPORTED=%s\n' "$(cat "$out/unsupported")"
        printf 'POSTGRES_IMAGE=%s\nMARIADB_IMAGE=%s\n' "$(cat "$out/postgres")" "$(cat "$out/mariadb")"
    } >"$tmp"
    rm -rf "$out"
    mv "$tmp" "$IMAGES_ENV"
    log "images written to $IMAGES_ENV"
    cat "$IMAGES_ENV"
}

trap 'rc=$?; if [ "$rc" != 0 ] && [ "${CI:-}" = true ]; then log "CI=true: the container tests cannot run without this; failing"; fi' EXIT
main
