"""Output formats: inventory and scan JSON, CycloneDX, SARIF, the terminal table, Azure sub-assessments.

May import `store.records`, `assess`, `image`, `model`.
"""
