#!/usr/bin/env bash
# README command 1: install acrguard, then inventory the sample image shipped in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/acrguard sbom "${1:-docker-archive:samples/alpine-3.11.tar.gz}" --format json
