"""Attacks on acrguard, one module per class: the front door, input hygiene, registries, failing closed."""
