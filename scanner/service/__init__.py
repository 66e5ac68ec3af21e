"""Orchestration of registry events, scans and rescans (issue 4 §1); adapters are passed in."""
