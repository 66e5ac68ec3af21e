"""Orchestration: registry events, scans, rescans, management; the composition root that builds clients.

May import every layer below it (`sandbox`, `policy`, `report`, `store`, `queue`, ...); never `azure`,
`localhost` or `cli`.
"""
