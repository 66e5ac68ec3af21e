"""The dashboard tests' fixtures: the management tests' environment, and a fresh sign-in limiter."""

import pytest

from scanner.service import login_limits
from tests.azure.manage_support import manage_env, vulndb_path  # noqa: F401 - the fixtures these tests use


@pytest.fixture(autouse=True)
def fresh_login_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no failed sign-ins counted (the limiter is the process's)."""
    monkeypatch.setattr(login_limits, "LIMITER", login_limits.LoginLimiter())
