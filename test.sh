#!/usr/bin/env bash
# Runs the whole test suite against the local stack (installed and started here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./localstack/install.sh
# Unless told otherwise (POOLSIDE_TEST_ENDPOINT, e.g. LocalStack), the tests
# get a moto server of their own on :4599, wiped first: what earlier runs
# left (and ./start.sh's `local` environment on :4566) neither slows the
# emulator down nor mixes with what the tests look for.
if [ -z "${POOLSIDE_TEST_ENDPOINT:-}" ]; then
  MOTO_PORT=4599 ./localstack/moto.sh start
  MOTO_PORT=4599 ./localstack/moto.sh reset
  export POOLSIDE_TEST_ENDPOINT="http://127.0.0.1:4599"
fi
# The data-tier tests start a PostgreSQL cluster of their own per environment
# (as RDS gives each environment its instance), from the same installed binaries.
cargo test --all-targets "$@"
