#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as real parts. Idempotent; fails loudly.
set -euo pipefail
pkgs=(docker-registry skopeo umoci mmdebstrap bubblewrap zstd gzip tar python3-rpm postgresql curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
# Second implementations the version tests compare against (node-semver, Maven's ComparableVersion).
command -v node >/dev/null || missing+=(nodejs)
[ -d /usr/lib/node_modules/npm/node_modules/semver ] || [ -d /usr/share/nodejs/semver ] || missing+=(node-semver)
command -v java >/dev/null || missing+=(default-jre-headless)
[ -f /usr/share/java/maven-artifact-3.x.jar ] || missing+=(libmaven3-core-java)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-system-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a registry service on :5000 where systemd runs; the tests start their own.
echo "install-system-deps: installed ${missing[*]}"
