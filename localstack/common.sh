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

log() { printf '==> %s\n' "$*" >&2; }
