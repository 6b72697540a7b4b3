#!/usr/bin/env bash
# Starts, stops or checks the PostgreSQL cluster that stands in for RDS's data
# plane: PostgreSQL 15 with pg_cron (preloaded) and pgvector.
#   localstack/postgres.sh start|stop|status|destroy
# The master user and password are what moto's RDS puts in every managed master
# secret (admin / P@55w0rd!), so deploy's real path - read the secret, connect -
# works against it. Password authentication (scram) is on, as on RDS.
# Settings (environment): POOLSIDE_PG_DATA, POOLSIDE_PG_PORT, POOLSIDE_PG_CRON_DB
# (the database pg_cron keeps its jobs in: the app database of environments/local.toml).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
data="$PG_DATA"
cron_db="${POOLSIDE_PG_CRON_DB:-poolside}"
master_user="admin"
master_password='P@55w0rd!'
log_file="$data/../postgres.log"

as_postgres() { runuser -u postgres -- "$@"; }
answering() { "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT"; }

case "${1:-}" in
  start)
    if answering; then log "PostgreSQL already answers on $PG_HOST:$PG_PORT"; exit 0; fi
    if [ ! -f "$data/PG_VERSION" ]; then
      log "creating a PostgreSQL $PG_VERSION cluster in $data"
      mkdir -p "$data"
      chown -R postgres:postgres "$data"
      chmod 700 "$data"
      # postgres must reach its directory; nothing else beside it changes hands.
      parent="$(dirname "$data")"
      if ! as_postgres test -x "$parent"; then
        chmod o+x "$parent"
        log "let postgres traverse $parent (o+x)"
      fi
      password_file="$(mktemp)"
      printf '%s\n' "$master_password" >"$password_file"
      chown postgres "$password_file"
      as_postgres "$PG_BIN/initdb" -D "$data" -U "$master_user" --pwfile="$password_file" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
      rm -f "$password_file"
      cat >>"$data/postgresql.conf" <<CONF
# poolside local stack: what the RDS parameter group sets, on a port of its own.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$data'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$cron_db'
cron.use_background_workers = on
max_worker_processes = 32
CONF
    fi
    log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: $log_file)"
    touch "$log_file" && chown postgres "$log_file"
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$log_file" -w -t 30 start >/dev/null
    answering && log "PostgreSQL is ready"
    ;;
  stop)
    if [ -f "$data/postmaster.pid" ]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
      log "PostgreSQL stopped"
    else
      log "PostgreSQL was not running (from these scripts)"
    fi
    ;;
  status)
    if answering; then echo "postgres: running on $PG_HOST:$PG_PORT"; else echo "postgres: not running"; exit 1; fi
    ;;
  destroy)
    "$0" stop
    rm -rf "$data"
    log "PostgreSQL cluster $data removed"
    ;;
  *)
    echo "usage: $0 start|stop|status|destroy" >&2
    exit 2
    ;;
esac
