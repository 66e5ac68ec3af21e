"""Frozen data every layer shares: inventories, findings, errors, limits, settings and their storage codec.

Imports nothing else of scanner.
"""
