#!/usr/bin/env bash
# Installs axe-core (the accessibility rules engine) into .cache/axe-core for the dashboard's browser tests
# (tests/dashboard), which inject its axe.min.js into each page. Idempotent; needs node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${AXE_CORE_VERSION:-4.14.1}
prefix=.cache/axe-core
installed=$(node -p "require('./$prefix/node_modules/axe-core/package.json').version" 2>/dev/null || true)
if [ "$installed" = "$version" ] && [ -f "$prefix/node_modules/axe-core/axe.min.js" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "install-axe-core: npm is needed (Debian/Ubuntu: apt-get install nodejs npm)" >&2
  exit 1
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --save-exact --no-audit --no-fund --loglevel=error "axe-core@$version"
test -f "$prefix/node_modules/axe-core/axe.min.js"
