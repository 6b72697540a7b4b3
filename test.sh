#!/usr/bin/env bash
# Runs the whole test suite against the local stack (installed and started here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./localstack/install.sh
./localstack/moto.sh start
# The data-tier tests start a PostgreSQL cluster of their own per environment
# (as RDS gives each environment its instance), from the same installed binaries.
export POOLSIDE_TEST_ENDPOINT="${POOLSIDE_TEST_ENDPOINT:-http://127.0.0.1:4566}"
cargo test --all-targets "$@"
