#!/usr/bin/env bash
# Installs the Debian packages the service benchmarks use on top of the test suite's real parts
# (scripts/install-system-deps.sh): wrk, the HTTP load generator of benchmarks/http_lookup.py.
# Idempotent; fails loudly.
set -euo pipefail
pkgs=(wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-bench-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-bench-deps: installed ${missing[*]}"
