"""Fail closed: an image whose package databases the scanner could not read whole is `Incomplete` (scan exit
2), never Healthy or NotApplicable, and the findings it did find are still reported.

Attacks tried (each must come out Incomplete, with the clean layer's finding or package still reported):
a layer padding each detector's database past its bound (dpkg, apk, rpm, Python, npm, Java, Go); the
padded-apk image (the Alpine sample plus a layer carrying a 109 MiB apk database) through the real serve
stack in the 2 GiB bubblewrap sandbox, and through the sandboxed job with the byte bound raised so that the
streaming parse itself runs into the owned-files bound; the two-million-package archive (11 MB, its dpkg
status listing 2 million packages) through `acrguard sbom`, under the byte bound, the package bound and the
output bound. Gates judge an Incomplete image by their `on_incomplete` policy (default: fail).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scanner.inventory.build import ScanOptions, inventory
from scanner.model.limits import Limits
from scanner.model.types import Inventory
from scanner.policy.gates import load_gates
from scanner.policy.image_context import ImageContext
from scanner.queue import ScanRequest
from scanner.report.subassessments import QUALYS_KEY
from scanner.service.pipeline import Policy, process_scan
from scanner.store import FindingsStore, open_store
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.conftest import Run
from tests.integration import realparts
from tests.localhost.stack import Serve, serve_with_registry, wait_for

from .padded import FIXTURES, PADDED, dpkg_two_million, padded_apk_layout, padded_layout

VERSION = "test-fail-closed"


@pytest.fixture(scope="module")
def vulndb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real advisories for every padded image's clean package: Alpine's secdb, Debian, PyPI, npm, Go."""
    path = tmp_path_factory.mktemp("db") / "vulndb.sqlite"
    real = FIXTURES / "osv-matching"
    sources = [FIXTURES / "osv/alpine-secdb/v3.10", FIXTURES / "osv-written", real / "pypa-urllib3", real / "golang"]
    import_sources(path, [str(s) for s in sources])
    return path


def one_line(run: Run) -> str:
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acrguard: ") and "Traceback" not in run.err, run.err
    return lines[0]


# ------------------------------------------------------------------------ padded databases, one per detector


@pytest.mark.parametrize("detector", sorted(PADDED))
def test_padded_database_is_incomplete_never_healthy_and_keeps_what_was_below(
    acrguard: Any, vulndb: Path, tmp_path: Path, detector: str
) -> None:
    padded = PADDED[detector]
    run = acrguard("scan", padded_layout(detector, tmp_path / detector), "--db", str(vulndb), "--format", "json")
    assert run.code == 2
    doc = run.json()  # the report is written before the exit
    assert (doc["status"], doc["inventory_status"]) == ("Incomplete", "Incomplete")
    assert doc["reason"].startswith("inventory incomplete: ") and padded.bound in doc["reason"]
    line = one_line(run)
    assert "inventory incomplete" in line and padded.bound in line
    # The padding did not hide what the layer below holds.
    assert padded.kept_package in {p["name"] for p in doc["packages"]}
    if padded.finding:
        assert padded.finding in {f["id"] for f in doc["findings"] if f["package"]["name"] == padded.kept_package}
    assert any(padded.bound in w for w in doc["warnings"])


def test_incomplete_shows_in_every_cli_format(acrguard: Any, vulndb: Path, tmp_path: Path) -> None:
    ref = padded_layout("dpkg", tmp_path / "dpkg")
    table = acrguard("scan", ref, "--db", str(vulndb))
    assert table.code == 2 and ": Incomplete — inventory incomplete: /var/lib/dpkg/status:" in table.out
    assert "DEBIAN-CVE-2023-5363" in table.out
    sarif = acrguard("scan", ref, "--db", str(vulndb), "--format", "sarif")
    assert sarif.code == 2
    from jsonschema import Draft202012Validator

    doc = json.loads(sarif.out)
    Draft202012Validator(json.loads((FIXTURES / "sarif" / "sarif-schema-2.1.0.json").read_text())).validate(doc)
    (invocation,) = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "max_package_db_bytes" in note["message"]["text"]
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} >= {"DEBIAN-CVE-2023-5363"}
    # A gate threshold that the findings meet still exits 2: an incomplete result is never a plain verdict.
    assert acrguard("scan", ref, "--db", str(vulndb), "--fail-on", "unknown").code == 2

    sbom = acrguard("sbom", ref)
    assert sbom.code == 2 and sbom.json()["status"] == "Incomplete"
    assert "max_package_db_bytes" in one_line(sbom)
    cyclonedx = acrguard("sbom", ref, "--format", "cyclonedx-json")
    assert cyclonedx.code == 2
    properties = {p["name"]: p["value"] for p in cyclonedx.json()["metadata"]["component"]["properties"]}
    assert properties["acrguard:status"] == "Incomplete" and "max_package_db_bytes" in properties["acrguard:reason"]


def test_a_raised_bound_reads_the_padded_database_again(acrguard: Any, vulndb: Path, tmp_path: Path) -> None:
    """The bound is the only reason: raised with `--limit`, the same image is read whole (and Unhealthy)."""
    ref = padded_layout("python", tmp_path / "python")
    run = acrguard("scan", ref, "--db", str(vulndb), "--format", "json", "--limit", f"max_package_db_bytes={2**30}")
    assert run.code == 0, run.err
    assert run.json()["status"] == "Unhealthy"


# ------------------------------------------------------------------------ the two-million-package archive


@pytest.fixture(scope="module")
def two_million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dpkg_two_million(tmp_path_factory.mktemp("two-million") / "dpkg-2m.tar")


def test_two_million_package_archive_stops_at_the_byte_bound(acrguard: Any, two_million: Path) -> None:
    assert two_million.stat().st_size < 12 * 1024 * 1024
    run = acrguard("sbom", f"oci-archive:{two_million}")
    assert run.code == 2
    doc = run.json()
    assert doc["status"] == "Incomplete" and doc["packages"] == []
    assert "/var/lib/dpkg/status: 179777780 bytes, over the limit of 67108864 (limit max_package_db_bytes)" in (
        one_line(run)
    )


def test_two_million_package_archive_stops_at_the_package_bound(acrguard: Any, two_million: Path) -> None:
    """With the byte bound out of the way, the streamed parse stops at `max_packages`."""
    run = acrguard("sbom", f"oci-archive:{two_million}", "--limit", f"max_package_db_bytes={2**30}")
    assert run.code == 2
    doc = run.json()
    assert doc["status"] == "Incomplete" and len(doc["packages"]) == Limits().max_packages
    assert "more than 100000 packages in the image (limit max_packages)" in one_line(run)


def test_output_over_its_bound_is_one_line_and_nothing_written(
    acrguard: Any, two_million: Path, tmp_path: Path
) -> None:
    target = tmp_path / "sbom.json"
    run = acrguard(
        "sbom",
        f"oci-archive:{two_million}",
        *("--limit", f"max_package_db_bytes={2**30}", "--limit", "max_output_bytes=1000000", "-o", str(target)),
    )
    assert run.code == 2 and not target.exists()
    assert "larger than 1000000 bytes (limit max_output_bytes)" in one_line(run)


# ------------------------------------------------------------------------ the padded-apk image


@pytest.fixture(scope="module")
def alpine_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alpine") / "alpine.sqlite"
    import_sources(path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])
    return path


@pytest.fixture(scope="module")
def padded_apk(tmp_path_factory: pytest.TempPathFactory) -> str:
    return padded_apk_layout(tmp_path_factory.mktemp("padded_apk") / "layout")


@pytest.fixture
def served(tmp_path: Path, alpine_db: Path) -> Iterator[tuple[Serve, realparts.Registry]]:
    if realparts.missing_tools(["bwrap", "skopeo"]):
        pytest.fail(f"missing: {realparts.missing_tools(['bwrap', 'skopeo'])}", pytrace=False)
    with serve_with_registry(tmp_path, alpine_db, runner="bubblewrap") as (serve, registry):
        yield serve, registry


def test_padded_apk_padded_apk_layer_in_the_sandbox_is_incomplete_with_its_findings(
    served: tuple[Serve, realparts.Registry], padded_apk: str
) -> None:
    serve, registry = served
    pushed = realparts.push(registry, padded_apk, "samples/padded", "latest")
    digest = pushed.manifest.digest

    def scanned() -> Any:
        status, body = serve.image(registry.host, digest)
        done = status == 200 and (body.get("lastScan") or {}).get("status") not in (None, "running")
        return body if done else None

    image = wait_for("the padded image scanned", scanned, timeout=180, context=serve.log_tail)
    assert image["lastScan"]["status"] == "succeeded", image["lastScan"]
    # Stored and served as Incomplete, with the 8 findings of the image below the padding.
    assert image["health"] == "Incomplete"
    assert "inventory incomplete: /lib/apk/db/installed:" in image["reason"]
    assert "max_package_db_bytes" in image["reason"] and "8 active finding(s)" in image["reason"]
    assert len(image["findings"]) == 8
    assert {f["package"]["name"] for f in image["findings"]} == {"musl", "musl-utils", "libssl1.1", "libcrypto1.1"}
    status, listed = serve.get(f"/api/images?registry={registry.host}&status=Incomplete")
    assert status == 200 and [i["digest"] for i in listed["value"]] == [digest]

    sub = (
        f"/api/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/{registry.host}"
        f"/providers/Microsoft.Security/assessments/{QUALYS_KEY}/subAssessments"
    )
    status, rows = serve.get(sub)
    assert status == 200 and len(rows["value"]) == 1 + 8
    head = rows["value"][0]["properties"]["status"]
    assert (head["code"], head["cause"], head["severity"]) == ("Unhealthy", "Incomplete", "High")
    assert "max_package_db_bytes" in head["description"]
    assert {r["properties"]["status"]["code"] for r in rows["value"]} == {"Unhealthy"}
    # Page by page, the rows are the same (the image row, then its findings).
    status, first = serve.get(f"{sub}?$top=1")
    assert status == 200 and first["value"][0]["name"] == rows["value"][0]["name"]


def test_padded_apk_streamed_in_the_sandbox_stops_at_the_owned_files_bound(
    tmp_path: Path, padded_apk: str, alpine_db: Path
) -> None:
    """With the byte bound raised above the 109 MiB, the apk database is parsed as a stream in the 2 GiB
    sandbox: it stops at `max_owned_files`, keeps the packages before it, and the image is Incomplete."""
    if realparts.missing_tools(["bwrap"]):
        pytest.fail("missing: bwrap", pytrace=False)
    from scanner.sandbox.bubblewrap import BubblewrapRunner
    from scanner.sandbox.job import scan_job_inventory
    from scanner.sandbox.runner import JobLimits
    from scanner.sandbox.runners import limit_args

    limits = Limits(max_package_db_bytes=256 * 1024 * 1024)
    found = scan_job_inventory(
        padded_apk, ScanOptions(limits=limits), BubblewrapRunner(scan_args=limit_args(limits)), JobLimits()
    )
    assert found.status == "Incomplete"
    assert "more than 1000000 file paths (limit max_owned_files)" in found.reason
    with SqliteVulnDatabase.open(alpine_db) as db:
        from scanner.assess.assessment import assess

        result = assess(found, db)
    assert result.health == "Incomplete" and len(result.findings) == 8


# ------------------------------------------------------------------------ gates and the store


@dataclass
class RecordingActions:
    calls: list[str] = field(default_factory=list)

    def lock(self, image: ImageContext) -> None:
        self.calls.append("lock")

    def unlock(self, image: ImageContext) -> None:
        self.calls.append("unlock")

    def quarantine(self, image: ImageContext, state: str, details: Any) -> None:
        self.calls.append(f"quarantine {state}")

    def publish(self, event: Any) -> None:
        self.calls.append("publish")


@pytest.fixture(scope="module")
def incomplete_inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    """The padded dpkg image's inventory without its clean layer's vulnerable package: nothing found."""
    found = inventory(padded_layout("dpkg", tmp_path_factory.mktemp("gates") / "dpkg"))[0]
    assert found.status == "Incomplete"
    from dataclasses import replace

    return replace(found, packages=())


@pytest.mark.parametrize(
    ("setting", "on_incomplete", "calls"),
    [
        ("fail", None, ["lock", "quarantine Failed"]),  # the default: blocked like a failing image
        ("fail", "findings", ["unlock", "quarantine Passed"]),  # judged by what was found: nothing
        ("fail", "skip", []),  # no verdict: nothing done, nothing undone
        ("skip", None, []),
        ("findings", "fail", ["lock", "quarantine Failed"]),
    ],
)
def test_gates_judge_an_incomplete_image_by_their_policy(
    tmp_path: Path,
    alpine_db: Path,
    incomplete_inventory: Inventory,
    setting: Any,
    on_incomplete: str | None,
    calls: list[str],
) -> None:
    gates_dir = tmp_path / "gates"
    gates_dir.mkdir()
    line = f"    on_incomplete: {on_incomplete}\n" if on_incomplete else ""
    (gates_dir / "g.yaml").write_text(
        "gates:\n  - name: block\n    description: any finding at all\n"
        f"    when:\n      any_severity_at_least: Unknown\n    actions: [lock, quarantine]\n{line}"
    )
    actions = RecordingActions()
    policy = Policy(gates=tuple(load_gates(gates_dir, on_incomplete=setting)), gate_actions=actions)
    request = ScanRequest.create("r.example", "team/app", "sha256:" + "a" * 64, reason="push")
    with open_store(tmp_path / "store.sqlite") as store, SqliteVulnDatabase.open(alpine_db) as db:
        store.record_push("r.example", "team/app", request.digest, "1", "", datetime.now(UTC))
        change = process_scan(request, store, db, lambda _: incomplete_inventory, VERSION, policy)
        detail = store.get_image("r.example", request.digest)
    assert change.health == "Incomplete"
    assert detail is not None and detail.health == "Incomplete" and detail.findings == ()
    assert actions.calls == calls


def test_the_store_keeps_incomplete_and_gives_its_rows(tmp_path: Path, vulndb: Path, acrguard: Any) -> None:
    """Health Incomplete round-trips through the store; its sub-assessment rows are its image row, then a
    row per active finding, across pages."""
    found = inventory(padded_layout("dpkg", tmp_path / "dpkg"))[0]
    request = ScanRequest.create("r.example", "team/app", "sha256:" + "b" * 64, reason="push")
    store: FindingsStore
    with open_store(tmp_path / "store.sqlite") as store, SqliteVulnDatabase.open(vulndb) as db:
        store.record_push("r.example", "team/app", request.digest, "1", "", datetime.now(UTC))
        process_scan(request, store, db, lambda _: found, VERSION)
        detail = store.get_image("r.example", request.digest)
        assert detail is not None and detail.health == "Incomplete" and len(detail.findings) == 2
        listed = store.list_images(registry="r.example", status="Incomplete")
        assert [i.key.digest for i in listed.items] == [request.digest]
        whole = store.list_assessment_rows("r.example", limit=100)
        assert [row.finding is None for row in whole.items] == [True, False, False]
        paged, cursor = [], None
        while True:
            page = store.list_assessment_rows("r.example", limit=1, cursor=cursor)
            paged.extend(page.items)
            if page.cursor is None:
                break
            cursor = page.cursor
        assert [row.key for row in paged] == [row.key for row in whole.items]


def test_the_bounds_and_the_gate_default_are_settings(tmp_path: Path) -> None:
    from scanner.model.settings import Settings, SettingsError
    from scanner.service.policy import policy_from_settings

    settings = Settings.from_environ(
        {"ACRGUARD_LIMIT_MAX_PACKAGES": "10", "ACRGUARD_LIMIT_MAX_PACKAGE_DB_BYTES": "2048"}
    )
    assert (settings.limits.max_packages, settings.limits.max_package_db_bytes) == (10, 2048)
    assert settings.gate_on_incomplete == "fail"
    with pytest.raises(SettingsError, match="ACRGUARD_GATE_ON_INCOMPLETE: 'pass' is not one of fail, findings, skip"):
        Settings.from_environ({"ACRGUARD_GATE_ON_INCOMPLETE": "pass"})
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "g.yaml").write_text(
        "gates:\n  - name: g\n    description: d\n    when:\n      any_severity_at_least: High\n    actions: [notify]\n"
    )
    configured = Settings.from_environ({"ACRGUARD_GATES": str(gates), "ACRGUARD_GATE_ON_INCOMPLETE": "Skip"})
    assert [g.on_incomplete for g in policy_from_settings(configured).gates] == ["skip"]


def test_the_not_assessed_gate_default_is_a_setting(tmp_path: Path) -> None:
    from scanner.model.settings import Settings, SettingsError
    from scanner.service.policy import policy_from_settings

    assert Settings.from_environ({}).gate_on_not_assessed == "fail"
    with pytest.raises(SettingsError, match="ACRGUARD_GATE_ON_NOT_ASSESSED: 'pass' is not one of fail, findings, skip"):
        Settings.from_environ({"ACRGUARD_GATE_ON_NOT_ASSESSED": "pass"})
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "g.yaml").write_text(
        "gates:\n  - name: g\n    description: d\n    when:\n      any_severity_at_least: High\n    actions: [notify]\n"
    )
    configured = Settings.from_environ({"ACRGUARD_GATES": str(gates), "ACRGUARD_GATE_ON_NOT_ASSESSED": "findings"})
    (gate,) = policy_from_settings(configured).gates
    assert (gate.on_not_assessed, gate.on_incomplete) == ("findings", "fail")


# ------------------------------------------------------------------------ a wanted file over max_file_size


def test_a_database_over_max_file_size_is_incomplete_not_absent(acrguard: Any, vulndb: Path, tmp_path: Path) -> None:
    """A file too large to keep is still there for its detector: the padded database does not silently
    replace the one below (it did, as a warning, when only the layer reader knew)."""
    ref = padded_layout("apk", tmp_path / "apk")
    run = acrguard("scan", ref, "--db", str(vulndb), "--format", "json", "--limit", "max_file_size=1000000")
    assert run.code == 2
    doc = run.json()
    assert doc["status"] == "Incomplete" and "ALPINE-CVE-2019-14697" in {f["id"] for f in doc["findings"]}
    assert any("over max_file_size" in w for w in doc["warnings"])


@pytest.mark.parametrize(("head", "incomplete"), [(b"\x7fELF\x02\x01", True), (b"model weights", False)])
def test_a_large_file_in_a_go_directory_is_incomplete_only_when_it_is_an_elf_file(
    acrguard: Any, tmp_path: Path, head: bytes, incomplete: bool
) -> None:
    from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

    files = [Entry("etc/os-release", b"ID=debian\nVERSION_ID=12\n"), Entry("app/big", head + b"\0" * 2000)]
    write_layout(tmp_path / "go", [Image([Layer(layer_tar(files))])])
    run = acrguard("sbom", f"oci:{tmp_path / 'go'}:latest", "--limit", "max_file_size=1000")
    assert run.json()["status"] == ("Incomplete" if incomplete else "Scanned")
    assert run.code == (2 if incomplete else 0)


def test_a_directory_database_over_max_file_size_is_incomplete(acrguard: Any, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=alpine\nVERSION_ID=3.10.1\n")
    (root / "lib/apk/db").mkdir(parents=True)
    (root / "lib/apk/db/installed").write_bytes(b"P:musl\nV:1.1.22-r2\n\n" * 100)
    run = acrguard("sbom", f"dir:{root}", "--limit", "max_file_size=1000")
    assert run.code == 2 and run.json()["status"] == "Incomplete"
    assert "/lib/apk/db/installed: 2000 bytes is over max_file_size: not read" in one_line(run)
