"""The layer-prefix cache as the settings configure it: on by default under the user's cache directory, off at 0."""

from __future__ import annotations

from pathlib import Path

from scanner.model.settings import Settings
from scanner.service.sandboxed import make_sandboxed_fetch, prefix_store


def test_the_prefix_cache_follows_its_settings(tmp_path: Path) -> None:
    default = prefix_store(Settings.from_environ({}))
    assert default is not None and default.directory == Path.home() / ".cache" / "acrguard" / "layer-prefixes"
    assert default.max_bytes == 2048 * 1024 * 1024
    env = {"ACRGUARD_PREFIX_CACHE_DIR": str(tmp_path), "ACRGUARD_PREFIX_CACHE_MB": "8"}
    store = prefix_store(Settings.from_environ(env))
    assert store is not None and store.directory == tmp_path and store.max_entry_bytes == 2 * 1024 * 1024
    assert prefix_store(Settings.from_environ({"ACRGUARD_PREFIX_CACHE_MB": "0"})) is None
    fetch = make_sandboxed_fetch("none", Settings.from_environ(env))
    assert fetch.prefixes is not None and fetch.prefixes.directory == tmp_path
