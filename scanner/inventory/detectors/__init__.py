"""Package and OS detectors: plugins that parse bytes and never do I/O, one module per format.

The plugin list is `plugins.py`.
"""
