"""JavaDetector without pom.properties: versions and groupIds from real manifests (osv-scalibr's and syft's,
tests/fixtures/java-manifest/SOURCES.md), zipped into jars here, and pom.properties at any path."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.java import JavaDetector
from scanner.model.types import RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "java-manifest"


def jar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def manifest_jar(fixture: str) -> bytes:
    return jar({"META-INF/MANIFEST.MF": (FIXTURES / fixture).read_bytes()})


def one(path: str, data: bytes) -> RawPackage:
    out = JavaDetector().extract(MemoryFileSet({path: data}), DetectContext())
    assert out.warnings == [] and out.incomplete == []
    assert len(out.packages) == 1
    return out.packages[0]


@pytest.mark.parametrize(
    ("file_name", "fixture", "name", "version", "purl", "group_from"),
    [
        # Hand-written Bundle-SymbolicName (an Ant build): the root package is the groupId. Not
        # Implementation-Vendor-Id `org.apache`, which comes later in the order.
        ("ivy-2.4.0.jar", "osv-scalibr/combine-manifest-filename/MANIFEST.MF", "org.apache.ivy:ivy", "2.4.0",
         "pkg:maven/org.apache.ivy/ivy@2.4.0", "Bundle-SymbolicName"),
        # Maven Bundle Plugin: `${groupId}.${artifactId}`.
        ("jackson-core-2.15.2.jar", "syft/jackson-core-2.15.2/MANIFEST.MF", "com.fasterxml.jackson.core:jackson-core",
         "2.15.2", "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.15.2", "Bundle-SymbolicName"),
        ("failureaccess-1.0.1.jar", "osv-scalibr/manifest-symbolicname/MANIFEST.MF", "com.google.guava:failureaccess",
         "1.0.1", "pkg:maven/com.google.guava/failureaccess@1.0.1", "Bundle-SymbolicName"),
        # Automatic-Module-Name less `.micronaut_aop`.
        ("micronaut-aop-4.9.11.jar", "syft/micronaut-aop-4.9.11/MANIFEST.MF", "io.micronaut:micronaut-aop", "4.9.11",
         "pkg:maven/io.micronaut/micronaut-aop@4.9.11", "Automatic-Module-Name"),
        # Implementation-Title's first reverse-domain word (osv-scalibr: org.elasticsearch).
        ("server-8.14.3.jar", "osv-scalibr/manifest-implementation-title/MANIFEST.MF", "org.elasticsearch:server",
         "8.14.3", "pkg:maven/org.elasticsearch/server@8.14.3", "Implementation-Title"),
    ],
)  # fmt: skip
def test_group_inferred_from_the_manifest(
    file_name: str, fixture: str, name: str, version: str, purl: str, group_from: str
) -> None:
    package = one(f"/app/lib/{file_name}", manifest_jar(fixture))
    assert (package.name, package.version, package.purl) == (name, version, purl)
    assert dict(package.metadata)["group_from"] == group_from
    assert package.evidence == "installed"


@pytest.mark.parametrize(
    ("file_name", "fixture", "name", "version"),
    [
        # `Automatic-Module-Name: spring.web` is the artifactId spelled as a module, not a group.
        ("spring-web-5.3.26.jar", "osv-scalibr/known-group-id/MANIFEST.MF", "spring-web", "5.3.26"),
        # Spaces and placeholders are no groupIds.
        ("invalid.jar", "osv-scalibr/invalid-ids/MANIFEST.MF", "invalid", "1.2.3"),
        ("some-package.jar", "osv-scalibr/manifest-no-group-id/MANIFEST.MF", "some-package", "1.2.3"),
    ],
)
def test_no_group_when_the_manifest_gives_none(file_name: str, fixture: str, name: str, version: str) -> None:
    package = one(f"/app/lib/{file_name}", manifest_jar(fixture))
    assert (package.name, package.version, package.purl) == (name, version, f"pkg:maven/{name}@{version}")
    assert "group_from" not in dict(package.metadata)


def test_axis_version_in_a_per_entry_section_with_a_build_stamp() -> None:
    package = one("/opt/axis/lib/axis.jar", manifest_jar("osv-scalibr/axis/MANIFEST.MF"))
    assert (package.name, package.version, package.purl) == ("axis", "1.4", "pkg:maven/axis@1.4")
    assert dict(package.metadata) == {"evidence": "MANIFEST.MF", "manifest_version": "1.4 1855 April 22 2006"}


def test_main_section_version_with_a_date() -> None:
    package = one("/app/lib/old.jar", manifest_jar("syft/manifest/version-with-date"))
    assert package.version == "1.3"
    assert dict(package.metadata)["manifest_version"] == "1.3 2244 October 5 2005"


@pytest.mark.parametrize("fixture", ["syft/manifest/extra-info", "syft/manifest/continuation"])
def test_manifests_without_a_version_give_nothing(fixture: str) -> None:
    out = JavaDetector().extract(MemoryFileSet({"/app/lib/app.jar": manifest_jar(fixture)}), DetectContext())
    assert out.packages == [] and out.warnings == []


def test_pom_properties_at_any_path() -> None:
    pom = b"groupId=org.example\nartifactId=shaded-lib\nversion=1.2.3\n"
    package = one("/app/app.jar", jar({"lib/META-INF/shaded/pom.properties": pom}))
    assert (package.name, package.version, dict(package.metadata)) == (
        "org.example:shaded-lib",
        "1.2.3",
        {"evidence": "pom.properties"},
    )


def test_pom_properties_elsewhere_must_name_all_three() -> None:
    files = {"/app/lib/ivy-2.4.0.jar": jar({
        "pom.properties": b"version=9\n",
        "META-INF/MANIFEST.MF": (FIXTURES / "osv-scalibr/combine-manifest-filename/MANIFEST.MF").read_bytes(),
    })}  # fmt: skip
    out = JavaDetector().extract(MemoryFileSet(files), DetectContext())
    # The unusable pom.properties is a warning, and the manifest is used as if it were not there.
    assert [p.name for p in out.packages] == ["org.apache.ivy:ivy"]
    assert len(out.warnings) == 1 and "unusable coordinates" in out.warnings[0].message


def test_a_usable_pom_properties_wins_over_the_manifest() -> None:
    files = {"/app/lib/ivy-2.4.0.jar": jar({
        "META-INF/maven/org.apache.ivy/ivy/pom.properties": b"groupId=org.apache.ivy\nartifactId=ivy\nversion=2.4.0\n",
        "META-INF/MANIFEST.MF": (FIXTURES / "osv-scalibr/combine-manifest-filename/MANIFEST.MF").read_bytes(),
    })}  # fmt: skip
    package = one("/app/lib/ivy-2.4.0.jar", files["/app/lib/ivy-2.4.0.jar"])
    assert dict(package.metadata) == {"evidence": "pom.properties"}
