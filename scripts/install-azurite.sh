#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator) into .cache/azurite for the queue tests (tests/queue).
# Idempotent: does nothing when the wanted version is already there. Needs node and npm.
# 3.35.0 is the newest Azurite that supports Node 20 (3.36 needs Node 21, 3.37 Node 22); override with
# AZURITE_VERSION=3.37.0 on a newer Node.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${AZURITE_VERSION:-3.35.0}
prefix=.cache/azurite
bin="$prefix/node_modules/.bin/azurite-queue"
installed=$(node -p "require('./$prefix/node_modules/azurite/package.json').version" 2>/dev/null || true)
if [ "$installed" = "$version" ] && [ -x "$bin" ]; then
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # Debian's nodejs package comes without npm.
  if command -v apt-get >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-azurite: node and npm are needed (Debian/Ubuntu: apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --save-exact --no-audit --no-fund --loglevel=error "azurite@$version"
"$bin" --version >/dev/null
