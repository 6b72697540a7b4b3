#!/usr/bin/env bash
# Stops or lists the PostgREST servers that `poolside deploy` starts on an
# emulator target (one per environment, from the task definition the ECS
# service runs, since moto runs no containers).
#   localstack/postgrest.sh stop|status
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"

# Deploy writes run/postgrest-<env>@<stack>.pid (the stack: the emulator's
# host_port; older builds wrote postgrest-<env>.pid); a pid only counts while
# it is still PostgREST. `stop` stops every stack's, as ./stop.sh stops both
# emulators.
running() { [ -r "/proc/$1/cmdline" ] && grep -q postgrest "/proc/$1/cmdline" 2>/dev/null; }

case "${1:-}" in
  stop)
    shopt -s nullglob
    for pid_file in "$RUN_DIR"/postgrest-*.pid; do
      env_name="$(basename "$pid_file" .pid)"; env_name="${env_name#postgrest-}"
      pid="$(cat "$pid_file")"
      if running "$pid"; then
        kill "$pid"
        log "PostgREST $env_name (environment@stack) stopped"
      fi
      rm -f "$pid_file" "${pid_file%.pid}.fingerprint"
    done
    ;;
  status)
    shopt -s nullglob
    found=0
    for pid_file in "$RUN_DIR"/postgrest-*.pid; do
      env_name="$(basename "$pid_file" .pid)"; env_name="${env_name#postgrest-}"
      if running "$(cat "$pid_file")"; then
        echo "postgrest: running for $env_name (environment@stack, pid $(cat "$pid_file"))"; found=1
      fi
    done
    [ "$found" = 1 ] || { echo "postgrest: not running"; exit 1; }
    ;;
  *)
    echo "usage: $0 stop|status   (poolside deploy starts it)" >&2
    exit 2
    ;;
esac
