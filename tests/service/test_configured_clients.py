"""The service's composition from its settings: `Clients` opens what the settings name (configured ones, else
the environment's), and the queue workers' fetch step takes the configured limits and registry credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.model.limits import Limits
from scanner.model.settings import Settings
from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import JobLimits
from scanner.service.config import Clients
from scanner.service.sandboxed import make_sandboxed_fetch
from scanner.store import StoreError


def test_configured_settings_win_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACRGUARD_STORE", str(tmp_path / "environment.sqlite"))
    made = Clients()
    try:
        made.configure(Settings(store=str(tmp_path / "configured.sqlite")))
        first = made.store()
        assert made.store() is first and (tmp_path / "configured.sqlite").exists()
        made.configure(Settings(store=str(tmp_path / "configured.sqlite")))  # the same settings: kept open
        assert made.store() is first
        made.configure(Settings(store=str(tmp_path / "other.sqlite")))  # other settings: reopened
        assert made.store() is not first and (tmp_path / "other.sqlite").exists()
        made.configure(None)  # back to the environment's, read on next use
        assert made.settings().store == str(tmp_path / "environment.sqlite")
        made.store()
        assert (tmp_path / "environment.sqlite").exists()
    finally:
        made.close()


def test_an_unset_store_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_STORE", raising=False)
    made = Clients()
    with pytest.raises(StoreError, match=r"^configuration: environment variable ACRGUARD_STORE is not set$"):
        made.store()
    made.close()


def test_the_workers_fetch_step_takes_the_configured_limits_and_credentials() -> None:
    settings = Settings.from_environ(
        {
            "ACRGUARD_LIMIT_MAX_LAYERS": "9",
            "ACRGUARD_JOB_LIMIT_WALL_SECONDS": "60",
            "ACRGUARD_REGISTRY_USERNAME": "user",
            "ACRGUARD_REGISTRY_PASSWORD": "secret",
            "ACRGUARD_REGISTRIES": "Registry.LAN:5000=basic",
            "ACRGUARD_INSECURE_REGISTRIES": "Registry.LAN:5000",
        }
    )
    fetch = make_sandboxed_fetch("none", settings)
    assert fetch.options.limits == Limits(max_layers=9)
    # Every image limit goes to the child as an argument, the configured one with its value.
    assert "--limit=max_layers=9" in fetch.runner.scan_args  # type: ignore[attr-defined]
    assert fetch.limits == JobLimits(wall_seconds=60)
    # The credentials belong to the one registry that names them, which alone is spoken to over plain HTTP.
    registry = fetch.options.registry.registries.require("registry.lan:5000")
    assert (registry.basic(), registry.insecure) == (("user", "secret"), True)
    assert fetch.options.registry.registries.hosts == {"registry.lan:5000"}
    with pytest.raises(JobError, match="unknown job limit 'NOPE'"):
        make_sandboxed_fetch("none", Settings.from_environ({"ACRGUARD_JOB_LIMIT_NOPE": "1"}))
