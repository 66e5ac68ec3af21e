"""Tests of the security properties: fail closed, trust only what is configured, input hygiene."""
