#!/usr/bin/env bash
# Installs and starts the local stack, builds poolside, and deploys environments/local.toml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./localstack/install.sh
./localstack/moto.sh start
./localstack/postgres.sh start
# cargo run honours CARGO_TARGET_DIR, wherever the build lives.
cargo run --quiet -- deploy --env local --yes "$@"
