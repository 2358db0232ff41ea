#!/usr/bin/env bash
# An external PostgreSQL for the testbed (postgres_mode: external tests, throwaway Coder servers of the tests):
# 127.0.0.1:$TESTBED_POSTGRES_PORT and $TESTBED_NODE_IP:$TESTBED_POSTGRES_PORT (pods), data in $state/postgres.
# Uses the Debian `postgresql` package (newest major under /usr/lib/postgresql/*/bin). As root the server runs as
# the `postgres` OS user (initdb refuses root). Leaves behind:
#   $state/postgres-password  password of role `coder` (generated once, mode 0600)
#   $state/postgres-url       postgres://coder:<pw>@127.0.0.1:<port>/coder?sslmode=disable (mode 0600)
# Usage: testbed/svc_20_postgres.sh start|stop|status|reset-db
#   reset-db drops and recreates database `coder` (stop the Coder server first).
# Role `coder` has CREATEDB so tests can run throwaway Coder servers on databases of their own.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

pgbin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -x "$pgbin/postgres" ]; then
  die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
fi
data="$state/postgres"
sock="$state/postgres-run"
port=$TESTBED_POSTGRES_PORT
pwfile="$state/postgres-password"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_admin() { as_pg "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -d postgres "$@"; }
ready() { as_pg "$pgbin/pg_isready" -q -h "$sock" -p "$port"; }
# stops the wait early when the server process is gone (bad config, port taken)
ready_or_dead() { ready || ! running "$(cat "$state/pids/postgres.pid" 2>/dev/null || echo 0)"; }

ensure_db() {
  local pw; pw=$(cat "$pwfile")
  psql_admin -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE coder LOGIN PASSWORD %L', :'pw') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coder') \gexec
SELECT format('ALTER ROLE coder LOGIN CREATEDB PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE coder OWNER coder' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'coder') \gexec
SQL
}

case ${1:-status} in
  start)
    mkdir -p "$data" "$sock"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$data" "$sock"; fi
    chmod 0700 "$data"
    if [ ! -s "$pwfile" ]; then
      (umask 077; openssl rand -hex 24 >"$pwfile")
    fi
    chmod 0600 "$pwfile"
    if [ ! -f "$data/PG_VERSION" ]; then
      log "initdb $data ($pgbin)"
      as_pg "$pgbin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$state/postgres-initdb.log" 2>&1 \
        || { cat "$state/postgres-initdb.log" >&2; die "initdb failed"; }
    fi
    # pods (and the host through the node IP) connect from the testbed's pod network
    if ! grep -q "^host all all $TESTBED_POD_CIDR " "$data/pg_hba.conf"; then
      echo "host all all $TESTBED_POD_CIDR scram-sha-256" >>"$data/pg_hba.conf"
      ! ready || as_pg "$pgbin/pg_ctl" -D "$data" reload >/dev/null
    fi
    if ! ready; then
      runas=(); if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); fi
      start_daemon postgres env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "${runas[@]}" \
        "$pgbin/postgres" -D "$data" -p "$port" -k "$sock" -c "listen_addresses=127.0.0.1,$TESTBED_NODE_IP" -c fsync=off -c synchronous_commit=off -c max_connections=200
      wait_for "PostgreSQL on 127.0.0.1:$port" 60 ready_or_dead; ready || { tail -n 30 "$state/logs/postgres.log" >&2; die "PostgreSQL did not start"; }
    fi
    ensure_db
    (umask 077; printf 'postgres://coder:%s@127.0.0.1:%s/coder?sslmode=disable\n' "$(cat "$pwfile")" "$port" >"$state/postgres-url")
    log "PostgreSQL ready on 127.0.0.1:$port (url in $state/postgres-url)"
    ;;
  stop)
    if [ -f "$data/postmaster.pid" ]; then as_pg "$pgbin/pg_ctl" -D "$data" stop -m fast -w -t 20 >/dev/null 2>&1 || true; fi
    stop_daemon postgres
    ;;
  status)
    if ready; then echo "postgres: running on 127.0.0.1:$port"; else echo "postgres: stopped"; exit 1; fi
    ;;
  reset-db)
    ready || die "PostgreSQL is not running"
    psql_admin -c "DROP DATABASE IF EXISTS coder WITH (FORCE)"
    ensure_db
    log "database coder recreated"
    ;;
  *) die "usage: $0 start|stop|status|reset-db" ;;
esac
