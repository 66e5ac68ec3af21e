#!/usr/bin/env bash
# README command 1: install acrguard, then assess the sample image shipped in the repo against the
# vulnerability snapshot bundled with acrguard (no network): inventory, findings, remediation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/acrguard scan "${1:-docker-archive:samples/alpine-3.10-app.tar}" --format "${FORMAT:-table}"
