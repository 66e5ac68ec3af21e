#!/usr/bin/env bash
# Installs the Debian packages the service benchmarks use on top of the test suite's real parts
# (scripts/install-system-deps.sh): wrk, the HTTP load generator of benchmarks/http_lookup.py.
# Idempotent; fails loudly.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
missing=()
apt_add_missing wrk
apt_install_missing install-bench-deps
