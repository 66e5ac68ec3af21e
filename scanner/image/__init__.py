"""Image acquisition: references, sources (archives, layouts, registries), manifests, safe layer reading."""
