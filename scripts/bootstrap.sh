#!/usr/bin/env bash
# Creates .venv and installs acrguard into it. Usage: scripts/bootstrap.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "bootstrap: acrguard needs Python 3.11 or later as '$PYTHON'" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian/Ubuntu ship venv separately (python3.X-venv).
    rm -rf .venv
    ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "python${ver}-venv" || \
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
fi
# Reinstall only when the dependencies changed (the package itself is an editable install).
mode=${1:-run}
hash=$(sha256sum pyproject.toml | cut -c1-16)
stamp=".venv/.acrguard-$mode-$hash"
# A dev install holds the run install too: scripts/demo.sh after scripts/test.sh installs nothing.
if [ ! -f "$stamp" ] && ! { [ "$mode" = run ] && [ -f ".venv/.acrguard-dev-$hash" ]; }; then
  if [ "$mode" = "dev" ]; then
    PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e '.[dev]'
  else
    PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
