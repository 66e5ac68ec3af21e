"""Measuring scripts, run as `.venv/bin/python benchmarks/NAME.py` (see README.md); `common` holds what they share."""
