"""Vulnerability feeds: OSV and Alpine secdb import, the SQLite vulnerability database, updates."""
