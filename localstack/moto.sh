#!/usr/bin/env bash
# Starts, stops or checks the moto server that stands in for AWS on :4566
# (MOTO_PORT=4599 for another one: the tests run against one of their own).
#   localstack/moto.sh start|stop|status|reset
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
if [ "$MOTO_PORT" = 4566 ]; then
  pid_file="$RUN_DIR/moto.pid"
  log_file="$RUN_DIR/moto.log"
else
  pid_file="$RUN_DIR/moto-$MOTO_PORT.pid"
  log_file="$RUN_DIR/moto-$MOTO_PORT.log"
fi

answering() { curl -fsS -o /dev/null --max-time 2 "$MOTO_URL/moto-api/" 2>/dev/null; }

case "${1:-}" in
  start)
    if answering; then log "moto already answers on $MOTO_URL"; exit 0; fi
    log "starting moto server on $MOTO_URL (log: $log_file)"
    MOTO_IAM_LOAD_MANAGED_POLICIES=true MOTO_ACM_VALIDATION_WAIT=0 \
      nohup "$MOTO_VENV/bin/moto_server" -H "$MOTO_HOST" -p "$MOTO_PORT" >"$log_file" 2>&1 &
    echo $! >"$pid_file"
    for _ in $(seq 1 100); do
      if answering; then log "moto is ready"; exit 0; fi
      sleep 0.2
    done
    echo "moto did not answer on $MOTO_URL within 20 s; see $log_file" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      kill "$(cat "$pid_file")"
      log "moto stopped"
    else
      log "moto was not running (from these scripts)"
    fi
    rm -f "$pid_file"
    ;;
  status)
    if answering; then echo "moto: running on $MOTO_URL"; else echo "moto: not running"; exit 1; fi
    ;;
  reset)
    curl -fsS -X POST "$MOTO_URL/moto-api/reset" >/dev/null
    log "moto state wiped"
    ;;
  *)
    echo "usage: $0 start|stop|status|reset" >&2
    exit 2
    ;;
esac
