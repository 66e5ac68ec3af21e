# Convenience targets over scripts/ (the README's commands call the scripts directly).
.PHONY: demo demo-once test quick bench clean
demo:
	bash scripts/demo.sh
## The demo without staying up: exits after printing the findings and the curl commands.
demo-once:
	bash scripts/demo.sh --once
test:
	bash scripts/test.sh
## Inner loop: the pure layers' tests and local-archive scans only (no registry, no mmdebstrap). CI runs everything.
quick:
	bash scripts/bootstrap.sh dev && .venv/bin/python -m pytest -q -x tests/test_architecture.py tests/versions tests/image tests/inventory tests/vulndb tests/assess tests/policy tests/report tests/e2e
bench:
	bash scripts/install-system-deps.sh && bash scripts/install-bench-deps.sh && bash scripts/bootstrap.sh dev
	for b in inventory_speed match_speed db_import_speed push_to_findings rescan_throughput http_lookup; do .venv/bin/python benchmarks/$$b.py || exit 1; done
clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
