"""Frozen data every layer shares: inventories, findings, errors, limits, settings, their JSON shapes and
storage codec.

Imports nothing else of scanner.
"""
