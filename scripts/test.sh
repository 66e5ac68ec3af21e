#!/usr/bin/env bash
# README command 2: install everything the tests need (Debian packages included), then lint,
# type-check and run the whole suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/bootstrap.sh dev
bash scripts/install-azurite.sh
bash scripts/install-axe-core.sh
.venv/bin/ruff check scanner tests benchmarks function_app.py
.venv/bin/ruff format --check scanner tests benchmarks function_app.py
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -ra tests "$@"
