#!/usr/bin/env bash
# Entrypoint of the testbed's PostgreSQL image (Containerfile beside it): the official `postgres` image's
# contract as roles/postgres uses it.
#   POSTGRES_PASSWORD               password of POSTGRES_USER; needed to initialise an empty PGDATA
#   POSTGRES_USER (postgres)        the superuser initdb creates
#   POSTGRES_DB ($POSTGRES_USER)    the database created on the first start
#   PGDATA (/var/lib/postgresql/data)  the cluster; best a subdirectory of the mounted volume
#   POSTGRES_LISTEN_ADDRESSES (*)   listen_addresses on every start (127.0.0.1 under `podman run --network host`)
#   POSTGRES_INITDB_ARGS            more initdb arguments, split at spaces (first start only)
# First start (no $PGDATA/PG_VERSION): initdb with scram-sha-256 for every connection (no trust, not even on the
# socket or loopback), then the database is created through a temporary server that listens on no address.
# Later starts never initialise again: the password and the database stay those of the first start.
# As root it creates PGDATA, gives it and its parent (the volume) to postgres (999:999) and runs itself again
# as postgres (setpriv); as uid 999 it goes on directly. The server replaces this script (exec): it is PID 1,
# gets the stop signal (the image's STOPSIGNAL SIGINT: fast shutdown) and logs to stderr.
# Any other command (`bash`, `psql ...`) is run as it is.
set -euo pipefail

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# No command, or options only (`podman run IMAGE -c work_mem=64MB`): the server with those options.
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_LISTEN_ADDRESSES:=*}"
export PGDATA

case $(id -u) in
  0)
    mkdir -p "$PGDATA"
    parent=$(dirname "$PGDATA")
    # the volume may arrive root-owned (hostPath 0755): postgres must be able to use it
    if [ "$parent" != / ]; then chown 999:999 "$parent"; fi
    # whatever an earlier run or a restore left under another owner
    find "$PGDATA" ! -user 999 -exec chown 999:999 {} +
    chmod 0700 "$PGDATA"
    install -d -o 999 -g 999 -m 3777 /var/run/postgresql
    export HOME=/var/lib/postgresql
    exec setpriv --reuid=999 --regid=999 --init-groups -- "${BASH_SOURCE[0]}" postgres "$@"
    ;;
  999) ;;
  *) die "run as root or as uid 999 (postgres), not as uid $(id -u)" ;;
esac

mkdir -p "$PGDATA" || die "uid 999 cannot create $PGDATA (start as root, or make the volume writable for 999)"
[ -O "$PGDATA" ] || die "$PGDATA belongs to uid $(stat -c %u "$PGDATA"), not 999 (start as root once to fix it)"
chmod 0700 "$PGDATA"

if [ -s "$PGDATA/PG_VERSION" ]; then
  log "$PGDATA is initialised (PostgreSQL $(cat "$PGDATA/PG_VERSION")): POSTGRES_USER/PASSWORD/DB are not applied"
else
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is empty: it is needed to initialise $PGDATA"
  log "initialising $PGDATA: superuser '$POSTGRES_USER', database '$POSTGRES_DB', scram-sha-256"
  read -ra initdb_args <<<"${POSTGRES_INITDB_ARGS:-}"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions "${initdb_args[@]}" >&2
  # initdb allows the socket and loopback only; clients come from the pod network
  printf '\n# coderstack testbed image: every address, with the password\nhost all all all scram-sha-256\n' \
    >>"$PGDATA/pg_hba.conf"
  # The database, through a server that no probe or client can reach yet (socket in /var/run/postgresql only).
  pg_ctl --pgdata="$PGDATA" --wait --timeout=60 --silent -o "-c listen_addresses=''" start >&2
  PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
    -v db="$POSTGRES_DB" >&2 <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
  pg_ctl --pgdata="$PGDATA" --wait --timeout=60 --silent --mode=fast stop >&2
  log "initialised $PGDATA"
fi

log "starting PostgreSQL ${PG_MAJOR:-}, listen_addresses '$POSTGRES_LISTEN_ADDRESSES'"
exec postgres -c "listen_addresses=$POSTGRES_LISTEN_ADDRESSES" "$@"
