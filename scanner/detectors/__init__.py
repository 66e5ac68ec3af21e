"""Package and OS detectors: one module per format, registered in `registry.py`."""
