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
# checkov: the IaC security checks of infra/ (each skip is justified in the Bicep beside what it skips). It pins
# cyclonedx-python-lib<8, packaging<24 and packageurl-python<0.14, below acrguard's own dependencies, so it
# gets a venv of its own inside .venv (rebuilt with it). --skip-download: no call to Prisma Cloud's API.
if [ ! -x .venv/checkov/bin/checkov ]; then
  python3 -m venv .venv/checkov
  PYTHONWARNINGS=ignore .venv/checkov/bin/python -m pip install -q "checkov==3.3.30"
fi
.venv/checkov/bin/checkov --directory infra --framework bicep --compact --quiet --skip-download
.venv/bin/python -m pytest -q -ra tests "$@"
