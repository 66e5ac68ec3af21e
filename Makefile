# Convenience targets over scripts/ (the README's commands call the scripts directly).
.PHONY: demo demo-once test quick bench clean
demo:
	bash scripts/demo.sh
## The demo without staying up: exits after printing the findings and the curl commands.
demo-once:
	bash scripts/demo.sh --once
test:
	bash scripts/test.sh
## Inner loop: unit and local-archive tests only (no registry, no mmdebstrap). CI runs everything.
quick:
	bash scripts/bootstrap.sh dev && .venv/bin/python -m pytest -q -x tests/unit tests/local
bench:
	bash scripts/install-system-deps.sh && bash scripts/bootstrap.sh dev && .venv/bin/python benchmarks/inventory_speed.py
clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
