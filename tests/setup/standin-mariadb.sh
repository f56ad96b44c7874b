#!/bin/sh
# Entrypoint of the local MariaDB stand-in (tests only): what the official image does with MARIADB_ROOT_PASSWORD
# (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD), MARIADB_DATABASE, MARIADB_USER and MARIADB_PASSWORD, enough for the compose
# stack. Extra arguments go to mariadbd (e.g. --port=3307), as with the official image.
set -eu
if [ $# -gt 0 ] && [ "$1" = mariadbd ]; then shift; fi
datadir=/var/lib/mysql
mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=normal \
        --skip-test-db >/dev/null
    echo "stand-in: initialised $datadir"
fi
# SQL escaping for a single-quoted literal.
q() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
init=/run/mysqld/init.sql
{
    if [ -n "${MARIADB_ROOT_PASSWORD:-}" ]; then
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(q "$MARIADB_ROOT_PASSWORD")';"
        echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$(q "$MARIADB_ROOT_PASSWORD")';"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    elif [ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}" ]; then
        echo "MARIADB_ROOT_PASSWORD or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD is required" >&2
        exit 1
    fi
    [ -z "${MARIADB_DATABASE:-}" ] || echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
    if [ -n "${MARIADB_USER:-}" ]; then
        echo "CREATE USER IF NOT EXISTS '$(q "$MARIADB_USER")'@'%' IDENTIFIED BY '$(q "${MARIADB_PASSWORD:-}")';"
        [ -z "${MARIADB_DATABASE:-}" ] || echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$(q "$MARIADB_USER")'@'%';"
    fi
} >"$init"
chown mysql "$init"
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --init-file="$init" "$@"
