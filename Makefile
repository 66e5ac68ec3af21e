# acrguard: set-up and test entry points. Every install step lives here or in scripts/.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
SAMPLE ?= docker-archive:samples/alpine-3.11.tar.gz

.PHONY: demo test install install-dev system-deps lint typecheck unit quick bench clean

## README command 1: install, then inventory the sample image shipped in the repo.
demo: install
	$(VENV)/bin/acrguard sbom $(SAMPLE) --format json

## README command 2: install everything the tests need (apt packages included) and run the whole suite.
test: system-deps install-dev lint typecheck
	$(PY) -m pytest -q -ra tests

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e .

install-dev: $(PY)
	$(PY) -m pip install -q -e '.[dev]'

system-deps:
	bash scripts/install-system-deps.sh

lint:
	$(VENV)/bin/ruff check scanner tests benchmarks function_app.py
	$(VENV)/bin/ruff format --check scanner tests benchmarks function_app.py

typecheck:
	$(VENV)/bin/mypy

## Inner loop: unit tests only (no registry, no mmdebstrap). CI runs `make test`.
quick: install-dev
	$(PY) -m pytest -q -x tests/unit

bench: install-dev system-deps
	$(PY) benchmarks/inventory_speed.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
