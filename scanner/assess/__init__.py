"""From an inventory and the vulnerability database to findings, severity and image health (pure).

May import `model`, `versions`, `ecosystems`, `vulndb.interface`; never adapters.
"""
