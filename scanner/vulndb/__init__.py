"""The vulnerability database: its read interface, the SQLite file, OSV and Alpine secdb import, feed updates.

May import `model` (and `ecosystems`).
"""
