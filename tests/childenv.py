"""The environment the tests give the servers and scripts they start: a few basics and what the test sets,
never the developer's whole environment (ACRGUARD_* settings, proxies or a registry's REGISTRY_* overrides
there would change what the test runs)."""

from __future__ import annotations

import os
from collections.abc import Mapping

BASICS = ("PATH", "HOME", "LANG", "TMPDIR")


def minimal_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH, HOME, LANG and TMPDIR as the tests have them (those that are set), then `extra`."""
    env = {name: os.environ[name] for name in BASICS if name in os.environ}
    env.setdefault("PATH", os.defpath)
    return {**env, **(extra or {})}
