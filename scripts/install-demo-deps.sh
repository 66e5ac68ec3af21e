#!/usr/bin/env bash
# Installs the Debian packages README command 1 (scripts/demo.sh) runs, and nothing else: the registry, skopeo to
# push the sample, bubblewrap for the sandboxed scan. (The test suite's toolchain is scripts/install-system-deps.sh.)
# `--list` prints the packages it manages, one per line, and installs nothing. Idempotent; fails loudly.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
packages=(docker-registry skopeo bubblewrap)
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi
missing=()
apt_add_missing "${packages[@]}"
apt_install_missing install-demo-deps
