"""Attacks on acrguard as a client would try them, against the real serve stack and the CLI."""
