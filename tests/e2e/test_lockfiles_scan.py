"""`acrguard scan` on hand-built images with Python lockfiles (poetry.lock, uv.lock, Pipfile.lock) and with
jars that have no pom.properties, against real advisories (pypa's PYSEC records and a GitHub-reviewed Maven
advisory, tests/fixtures/{python-lockfiles,java-manifest}/SOURCES.md): matched, not matched, a lockfile
entry and the installed package counted once, and evidence in every output."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

LOCKS = FIXTURES / "python-lockfiles"
MANIFESTS = FIXTURES / "java-manifest"
SITE = "usr/local/lib/python3.12/site-packages"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "lockfiles.sqlite"
    import_sources(path, [str(LOCKS / "advisories"), str(MANIFESTS / "advisories")])
    return path


def image(root: Path, entries: list[Entry]) -> str:
    base = layer_tar([Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')])
    app = layer_tar(entries)
    write_layout(root, [Image([Layer(base, created_by="FROM debian"), Layer(app, created_by="COPY app")])])
    return f"oci:{root}"


def scan(acrguard: Any, ref: str, db: Path, *extra: str) -> Any:
    run = acrguard("scan", ref, "--db", str(db), *extra)
    assert run.code in (0, 1), run.err
    return run


def findings(doc: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    return {
        (f["package"]["name"], f["package"]["evidence"], f["id"], f["installed_version"], f["fixed_version"])
        for f in doc["findings"]
    }


def packages(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in doc["packages"] if p["name"] == name]


def test_poetry_lock_and_pipfile_lock_entries_are_matched(acrguard: Any, db: Path, tmp_path: Path) -> None:
    ref = image(
        tmp_path / "poetry",
        [
            Entry("app/poetry.lock", (LOCKS / "trivy/poetry_v2_flask.lock").read_bytes()),
            Entry("srv/legacy/Pipfile.lock", (LOCKS / "trivy/Pipfile_normal.lock").read_bytes()),
        ],
    )
    doc = scan(acrguard, ref, db, "--format", "json").json()
    assert findings(doc) == {
        # flask 1.0.3 (poetry, group main) < 2.2.5; requests 2.21.0 (Pipfile default) in [2.3.0, 2.31.0).
        ("flask", "lockfile", "PYSEC-2023-62", "1.0.3", "2.2.5"),
        ("requests", "lockfile", "PYSEC-2023-74", "2.21.0", "2.31.0"),
    }
    # Only a default install's packages: pytest is in poetry's dev group.
    assert packages(doc, "pytest") == []
    flask = packages(doc, "flask")
    assert [(p["evidence"], p["locations"]) for p in flask] == [("lockfile", ["/app/poetry.lock"])]
    table = scan(acrguard, ref, db).out
    assert "flask [lockfile]" in table and "requests [lockfile]" in table


def test_uv_lock_matched_not_matched_and_installed_counted_once(acrguard: Any, db: Path, tmp_path: Path) -> None:
    pygments = f"{SITE}/Pygments-1.6.dist-info/METADATA"
    ref = image(
        tmp_path / "uv",
        [
            Entry("app/uv.lock", (LOCKS / "syft/uv/conflicting-with-extras/uv.lock").read_bytes()),
            # `uv sync` installed pygments 1.6 too: the dist-info and the lockfile entry are one package.
            Entry(pygments, b"Metadata-Version: 2.1\nName: Pygments\nVersion: 1.6\n"),
            # requests 2.32.0 is past PYSEC-2023-74's fix (2.31.0): not matched.
            Entry("srv/api/uv.lock", (LOCKS / "trivy/uv_normal.lock").read_bytes()),
        ],
    )
    doc = scan(acrguard, ref, db, "--format", "json").json()
    assert findings(doc) == {("Pygments", "installed", "PYSEC-2021-141", "1.6", "2.7.4")}
    assert [(p["evidence"], p["locations"]) for p in packages(doc, "Pygments") + packages(doc, "pygments")] == [
        ("installed", [f"/{pygments}", "/app/uv.lock"])
    ]
    assert [(p["version"], p["evidence"]) for p in packages(doc, "requests")] == [("2.32.0", "lockfile")]
    assert packages(doc, "testpkg") == []  # the project itself (`source = { editable = "." }`)


def test_sbom_says_how_each_package_is_known(acrguard: Any, tmp_path: Path) -> None:
    ref = image(
        tmp_path / "sbom",
        [
            Entry("app/uv.lock", (LOCKS / "trivy/uv_normal.lock").read_bytes()),
            Entry(f"{SITE}/idna-3.10.dist-info/METADATA", b"Metadata-Version: 2.1\nName: idna\nVersion: 3.10\n"),
        ],
    )
    run = acrguard("sbom", ref, "--format", "cyclonedx-json")
    assert run.code == 0, run.err
    bom = json.loads(run.out)
    evidence = {
        c["name"]: {p["value"] for p in c["properties"] if p["name"] == "acrguard:evidence"} for c in bom["components"]
    }
    assert evidence["idna"] == {"installed"}
    assert evidence["requests"] == {"lockfile"}
    assert sum(1 for c in bom["components"] if c["name"] == "idna") == 1


def manifest_jar(fixture: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", (MANIFESTS / fixture).read_bytes())
        archive.writestr("org/apache/ivy/Main.class", b"\xca\xfe\xba\xbe")
    return buffer.getvalue()


def test_jar_without_pom_properties_matched_through_its_manifest_group(acrguard: Any, db: Path, tmp_path: Path) -> None:
    ref = image(
        tmp_path / "java",
        [
            # Apache Ivy 2.4.0 as Ant built it: no pom.properties; Bundle-SymbolicName org.apache.ivy.
            Entry("opt/ant/lib/ivy-2.4.0.jar", manifest_jar("osv-scalibr/combine-manifest-filename/MANIFEST.MF")),
            # jackson-core 2.15.2: group from its bundle name; no advisory for it here.
            Entry("opt/app/lib/jackson-core-2.15.2.jar", manifest_jar("syft/jackson-core-2.15.2/MANIFEST.MF")),
            # Axis 1.4: inventoried (version from its per-entry section), but no group: not matchable.
            Entry("opt/axis/lib/axis.jar", manifest_jar("osv-scalibr/axis/MANIFEST.MF")),
        ],
    )
    doc = scan(acrguard, ref, db, "--format", "json").json()
    assert findings(doc) == {("org.apache.ivy:ivy", "installed", "GHSA-2jc4-r94c-rp7h", "2.4.0", "2.5.2")}
    names = {(p["name"], p["version"]) for p in doc["packages"]}
    assert {("com.fasterxml.jackson.core:jackson-core", "2.15.2"), ("axis", "1.4")} <= names
    ivy = next(f for f in doc["findings"] if f["id"] == "GHSA-2jc4-r94c-rp7h")
    assert ivy["package"]["purl"] == "pkg:maven/org.apache.ivy/ivy@2.4.0"
    assert "CVE-2022-46751" in ivy["aliases"]
