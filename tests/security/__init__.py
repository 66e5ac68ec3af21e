"""Attacks on acrguard as a whole (the service and the CLI), one module per class of attack."""
