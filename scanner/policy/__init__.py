"""The user's policy: disable rules, gates, remediation templates, gate actions and their shared YAML checks.

May import `assess`, `store.records`, `image` (gate actions talk to registries) and the layers below.
"""
