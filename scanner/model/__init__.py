"""Frozen data every layer shares: inventories, findings, errors, limits and their storage codec.

Imports nothing else of scanner.
"""
