"""Frozen data every layer shares: inventories, findings, errors, limits, their JSON shapes and storage codec.

Imports nothing else of scanner.
"""
