"""From an image reference to its package inventory: layer replay, detector plugins, the layer-chain cache.

May import `image`, `ecosystems`, `model`.
"""
