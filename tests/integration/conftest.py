"""Session fixtures for the real-parts integration tests (registry, mmdebstrap images, umoci, skopeo).

A missing program fails the session loudly with the install hint; nothing here ever skips.
First run on a machine builds the Debian images (about a minute); later runs reuse the cache in
`.cache/acrguard-tests` (or $ACRGUARD_TEST_CACHE) and only start a registry and push (a few seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.integration import realparts

_TIMINGS: dict[str, str] = {}


def _fail(err: Exception) -> NoReturn:
    pytest.fail(f"integration real parts: {err}", pytrace=False)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[realparts.Registry]:
    """A real CNCF distribution registry on 127.0.0.1 (plain HTTP), stopped at the end of the session."""
    started = time.monotonic()
    try:
        running = realparts.start_registry(tmp_path_factory.mktemp("registry"))
    except realparts.RealPartsError as err:
        _fail(err)
    _TIMINGS["registry start"] = f"{time.monotonic() - started:.2f}s"
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def debian_images() -> realparts.BuiltImages:
    """The Debian bookworm images (built by mmdebstrap + umoci, or taken from the cache)."""
    try:
        built = realparts.ensure_debian_images(realparts.TEST_SPEC)
    except realparts.RealPartsError as err:
        _fail(err)
    state = "built now" if built.built_now else "from cache"
    _TIMINGS["debian images"] = f"{built.seconds:.2f}s ({state}: {built.path})"
    return built


@pytest.fixture(scope="session")
def images(registry: realparts.Registry, debian_images: realparts.BuiltImages) -> realparts.ImageSet:
    """Every test image pushed to the session's registry (see realparts.push_test_images)."""
    try:
        pushed = realparts.push_test_images(registry, debian_images)
    except realparts.RealPartsError as err:
        _fail(err)
    _TIMINGS["push"] = f"{pushed.seconds:.2f}s"
    return pushed


@pytest.fixture(scope="session")
def expected_dpkg(debian_images: realparts.BuiltImages) -> set[tuple[str, str, str, str]]:
    """dpkg-query's view of the root filesystem the images were made from."""
    try:
        return realparts.dpkg_query(debian_images.rootfs)
    except realparts.RealPartsError as err:
        _fail(err)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        terminalreporter.write_sep("-", "integration real parts")
        for name, value in _TIMINGS.items():
            terminalreporter.write_line(f"{name}: {value}")
    if os.environ.get("ACRGUARD_TEST_CACHE"):
        terminalreporter.write_line(f"cache: {os.environ['ACRGUARD_TEST_CACHE']}")
