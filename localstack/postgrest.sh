#!/usr/bin/env bash
# Stops or lists the PostgREST servers that `poolside deploy` starts on an
# emulator target (one per environment, from the task definition the ECS
# service runs, since moto runs no containers).
#   localstack/postgrest.sh stop|status
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"

# Deploy writes run/postgrest-<env>.pid; a pid only counts while it is still PostgREST.
running() { [ -r "/proc/$1/cmdline" ] && grep -q postgrest "/proc/$1/cmdline" 2>/dev/null; }

case "${1:-}" in
  stop)
    shopt -s nullglob
    for pid_file in "$RUN_DIR"/postgrest-*.pid; do
      env_name="$(basename "$pid_file" .pid)"; env_name="${env_name#postgrest-}"
      pid="$(cat "$pid_file")"
      if running "$pid"; then
        kill "$pid"
        log "PostgREST of environment $env_name stopped"
      fi
      rm -f "$pid_file" "$RUN_DIR/postgrest-$env_name.fingerprint"
    done
    ;;
  status)
    shopt -s nullglob
    found=0
    for pid_file in "$RUN_DIR"/postgrest-*.pid; do
      env_name="$(basename "$pid_file" .pid)"; env_name="${env_name#postgrest-}"
      if running "$(cat "$pid_file")"; then
        echo "postgrest: running for environment $env_name (pid $(cat "$pid_file"))"; found=1
      fi
    done
    [ "$found" = 1 ] || { echo "postgrest: not running"; exit 1; }
    ;;
  *)
    echo "usage: $0 stop|status   (poolside deploy starts it)" >&2
    exit 2
    ;;
esac
