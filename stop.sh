#!/usr/bin/env bash
# Stops the local stack started by ./start.sh or ./test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./localstack/postgrest.sh stop
./localstack/moto.sh stop
MOTO_PORT=4599 ./localstack/moto.sh stop
./localstack/postgres.sh stop
