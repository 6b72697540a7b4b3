#!/bin/sh
# The linker cargo calls (.cargo/config.toml): the C compiler driving mold
# when mold is installed (localstack/install.sh installs it), else the
# system's default linker, so `cargo build` works on any machine.
if command -v mold >/dev/null 2>&1; then
  exec cc -fuse-ld=mold "$@"
fi
exec cc "$@"
