#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as real parts. Idempotent; fails loudly.
# The Debian docker-registry package starts a registry service on :5000 where systemd runs; the tests start
# their own.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
missing=()
apt_add_missing docker-registry skopeo umoci mmdebstrap bubblewrap zstd gzip tar python3-rpm rpm postgresql curl
# The browser the dashboard's tests drive through Playwright (whose own browser download is not used).
apt_add_missing chromium
# Second implementations the version tests compare against (node-semver, Maven's ComparableVersion).
command -v node >/dev/null || missing+=(nodejs)
[ -d /usr/lib/node_modules/npm/node_modules/semver ] || [ -d /usr/share/nodejs/semver ] || missing+=(node-semver)
command -v java >/dev/null || missing+=(default-jre-headless)
[ -f /usr/share/java/maven-artifact-3.x.jar ] || missing+=(libmaven3-core-java)
apt_install_missing install-system-deps
