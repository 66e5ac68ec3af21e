"""The layer-chain cache end to end: a real registry (skopeo pushes, pull notifications to a recorder), the
sandboxed job in the real bubblewrap, the SQLite findings store.

An image is scanned; the same layers under a new config (another history, so another manifest digest) are
then served from the cache: no layer blob is downloaded, the inventory equals a full scan of the new image
and the findings equal the first image's. Another scanner version, another detector set or one changed
layer is a miss and scans in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from service_support import allowing
from test_pipeline import VERSION

from scanner.image.registry_options import RegistryOptions
from scanner.inventory.build import ScanOptions, inventory
from scanner.queue import ScanRequest
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.service.pipeline import current_detector_versions, process_scan
from scanner.service.sandboxed import SandboxedFetch, sandboxed_fetch
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests import ocibuild
from tests.integration import realparts
from tests.localhost.stack import start_registry_notifying, wait_for
from tests.policy.httprecorder import Recorder, recording_server

TESTS = Path(__file__).resolve().parents[1]

REPO = "cache/app"
OS_RELEASE = b'ID=alpine\nVERSION_ID=3.10.1\nPRETTY_NAME="Alpine Linux v3.10"\n'
# musl 1.1.22-r2 has ALPINE-CVE-2019-14697 in the 3.10 secdb fixture the `db` fixture imports.
BASE_DB = b"P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n"
TOP_DB = BASE_DB + b"P:zlib\nV:1.2.11-r1\nA:x86_64\no:zlib\n\n"
CHANGED_TOP_DB = BASE_DB + b"P:zlib\nV:1.2.11-r3\nA:x86_64\no:zlib\n\n"


def _layers(top_db: bytes, history: str) -> list[ocibuild.Layer]:
    base = ocibuild.layer_tar(
        [
            ocibuild.Entry("etc/alpine-release", b"3.10.1\n"),
            ocibuild.Entry("etc/os-release", OS_RELEASE),
            ocibuild.Entry("lib/apk/db/installed", BASE_DB),
        ]
    )
    top = ocibuild.layer_tar([ocibuild.Entry("lib/apk/db/installed", top_db)])
    # Same tar bytes, same gzip (mtime 0): the same blobs; only the config's history differs.
    return [ocibuild.Layer(base, created_by=f"{history} base"), ocibuild.Layer(top, created_by=f"{history} top")]


def _push(registry: realparts.Registry, root: Path, tag: str, layers: list[ocibuild.Layer]) -> str:
    layout = ocibuild.write_layout(root / tag, [ocibuild.Image(layers)])
    return realparts.push(registry, f"oci:{layout}:latest", REPO, tag).manifest.digest


def _layer_digests(registry: realparts.Registry, digest: str) -> list[str]:
    return [layer["digest"] for layer in registry.manifest(REPO, digest).doc["layers"]]


def _blob_gets(recorder: Recorder) -> list[str]:
    """Digests of the blobs downloaded (GET) from the registry, in order (HEADs notify too: left out)."""
    return [
        event["target"]["digest"]
        for request in list(recorder.requests)
        for event in request.json().get("events", [])
        if event.get("action") == "pull" and event["request"]["method"] == "GET" and "digest" in event["target"]
    ]


def _pushed_seen(recorder: Recorder, tag: str) -> bool:
    """The registry notifies an endpoint in order: once a later push's event is here, every blob GET before
    it is too."""
    return any(
        event.get("action") == "push" and event["target"].get("tag") == tag
        for request in list(recorder.requests)
        for event in request.json().get("events", [])
    )


@pytest.fixture
def registry_and_events(tmp_path: Path) -> Iterator[tuple[realparts.Registry, Recorder]]:
    if realparts.missing_tools(["bwrap", "skopeo"]):
        pytest.fail(f"missing: {realparts.missing_tools(['bwrap', 'skopeo'])}", pytrace=False)
    with recording_server() as recorder:
        registry = start_registry_notifying(tmp_path / "registry", [recorder.url + "/events"])
        try:
            yield registry, recorder
        finally:
            registry.stop()


@pytest.fixture
def fetch(registry_and_events: tuple[realparts.Registry, Recorder]) -> SandboxedFetch:
    options = ScanOptions(registry=RegistryOptions(allowing(registry_and_events[0].host)))
    return sandboxed_fetch(BubblewrapRunner(), options)


def _scan(
    store: FindingsStore,
    db: SqliteVulnDatabase,
    fetch: SandboxedFetch,
    registry: str,
    digest: str,
    version: str = VERSION,
    detectors: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """One scan through `process_scan`; the timings its scan record keeps."""
    store.record_push(registry, REPO, digest, None, "", datetime.now(UTC))
    process_scan(ScanRequest.create(registry, REPO, digest), store, db, fetch, version, detector_versions=detectors)
    detail = store.get_image(registry, digest)
    assert detail is not None and detail.last_scan is not None
    assert detail.last_scan.status == "succeeded", detail.last_scan.error
    return detail.last_scan.timings


def _findings(store: FindingsStore, registry: str, digest: str) -> set[tuple[str, str, str, str]]:
    found = store.list_findings(registry, digest)
    return {(f.finding.id, f.finding.package.name, f.finding.package.version, f.finding.severity) for f in found}


def test_known_layers_under_a_new_config_are_not_fetched_or_parsed(
    tmp_path: Path,
    registry_and_events: tuple[realparts.Registry, Recorder],
    store: FindingsStore,
    db: SqliteVulnDatabase,
    fetch: SandboxedFetch,
) -> None:
    registry, events = registry_and_events
    host = registry.host
    first = _push(registry, tmp_path, "first", _layers(TOP_DB, "first"))
    relabelled = _push(registry, tmp_path, "relabelled", _layers(TOP_DB, "relabelled"))
    assert first != relabelled
    layers = _layer_digests(registry, first)
    assert _layer_digests(registry, relabelled) == layers, "the test needs the same layer blobs in both"

    assert _scan(store, db, fetch, host, first)["layer_cache_hit"] == 0.0
    assert _scan(store, db, fetch, host, relabelled)["layer_cache_hit"] == 1.0

    # A later push's notification closes the window: the first scan downloaded each layer once, the
    # second none (it read the manifest and config only).
    changed = _push(registry, tmp_path, "changed", _layers(CHANGED_TOP_DB, "first"))
    wait_for("the push notification at the recorder", lambda: _pushed_seen(events, "changed"))
    gets = _blob_gets(events)
    assert [gets.count(layer) for layer in layers] == [1, 1], gets

    # The findings of the known layers, and musl's advisory among them.
    assert _findings(store, host, relabelled) == _findings(store, host, first)
    assert any(vuln == "ALPINE-CVE-2019-14697" for vuln, *_ in _findings(store, host, first))

    # Misses: another scanner version, another detector set, one changed layer. Each scans in full.
    assert _scan(store, db, fetch, host, relabelled, version=VERSION + "-next")["layer_cache_hit"] == 0.0
    other_set = (*current_detector_versions(), "extra@1")
    assert _scan(store, db, fetch, host, relabelled, detectors=other_set)["layer_cache_hit"] == 0.0
    assert _layer_digests(registry, changed)[0] == layers[0] and _layer_digests(registry, changed)[1] != layers[1]
    assert _scan(store, db, fetch, host, changed)["layer_cache_hit"] == 0.0
    assert _scan(store, db, fetch, host, relabelled)["layer_cache_hit"] == 1.0

    # What the cache gave is what a full scan of the relabelled image gives, field for field: its own
    # reference, digest, config digest and created_by, the packages' layers re-pointed at its layers.
    options = ScanOptions(registry=RegistryOptions(allowing(host)))
    expected = inventory(f"docker://{host}/{REPO}@{relabelled}", options)[0]
    stored = store.load_inventory(host, relabelled)
    assert stored is not None and stored.inventory == expected
    assert [layer.created_by for layer in expected.image.layers] == ["relabelled base", "relabelled top"]
    zlib = next(p for p in expected.packages if p.name == "zlib")
    assert zlib.layer is not None and zlib.layer.created_by == "relabelled top"
    changed_inventory = store.load_inventory(host, changed)
    assert changed_inventory is not None
    assert {p.version for p in changed_inventory.inventory.packages if p.name == "zlib"} == {"1.2.11-r3"}


def test_a_config_whose_diff_ids_differ_from_the_verified_ones_is_scanned_in_full(
    tmp_path: Path,
    registry_and_events: tuple[realparts.Registry, Recorder],
    store: FindingsStore,
    db: SqliteVulnDatabase,
    fetch: SandboxedFetch,
) -> None:
    """diff_ids are the image author's word: a config naming other ones for known blobs does not get the
    cached inventory; the full scan checks them against the content and fails, as without a cache."""
    registry, _ = registry_and_events
    first = _push(registry, tmp_path, "first", _layers(TOP_DB, "first"))
    lying = _layers(TOP_DB, "lying")
    lying[1].diff_id = "sha256:" + "0" * 64
    forged = _push(registry, tmp_path, "forged", lying)
    assert _layer_digests(registry, forged) == _layer_digests(registry, first)
    assert _scan(store, db, fetch, registry.host, first)["layer_cache_hit"] == 0.0
    with pytest.raises(Exception, match="does not match diff_id"):
        process_scan(ScanRequest.create(registry.host, REPO, forged), store, db, fetch, VERSION)
    store.record_push(registry.host, REPO, forged, None, "", datetime.now(UTC))
    detail = store.get_image(registry.host, forged)
    assert detail is not None and detail.last_scan is not None
    assert detail.last_scan.timings.get("layer_cache_hit") == 0.0
