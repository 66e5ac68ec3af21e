"""ApkDetector against trivy's, apk-tools' and syft's installed databases.

Fixtures and expected values: tests/fixtures/apk (see SOURCES.md there).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanner.inventory.detectors.apk import ApkDetector
from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet
from scanner.model.limits import Limits
from scanner.model.types import OSInfo

FIXTURES = Path(__file__).parents[2] / "fixtures" / "apk"
SYFT = FIXTURES / "syft" / "alpine"
DB = "/lib/apk/db/installed"
USR_DB = "/usr/lib/apk/db/installed"
ALPINE_3_11 = OSInfo(id="alpine", version="3.11.5")


def load(name: str) -> Any:
    return json.loads((FIXTURES / "expected" / name).read_text())


def extract(db: bytes, os_info: OSInfo | None = None, path: str = DB) -> Extraction:
    return ApkDetector().extract(MemoryFileSet({path: db}), DetectContext(os=os_info))


def directories(db: bytes) -> set[str]:
    """The F: lines of a database, as absolute paths (an independent, deliberately naive reading)."""
    return {"/" + m.decode() for m in re.findall(rb"^F:(.*)$", db, flags=re.MULTILINE)}


# ---------------------------------------------------------------- trivy


def test_trivy_packages() -> None:
    expected = load("trivy-apk.json")["packages"]
    result = extract((FIXTURES / "trivy" / "apk").read_bytes(), ALPINE_3_11)
    got = [(p.name, p.version, p.arch, p.source_name, p.source_version) for p in result.packages]
    assert got == [(e["name"], e["version"], e["arch"], e["source_name"], e["source_version"]) for e in expected]
    for package, want in zip(result.packages, expected, strict=True):
        assert package.owned_files == {"/" + f for f in want.get("installed_files", [])}, package.name
        assert dict(package.metadata)["maintainer"] == want["maintainer"]


def test_trivy_all_installed_files() -> None:
    result = extract((FIXTURES / "trivy" / "apk").read_bytes())
    owned = set().union(*(p.owned_files for p in result.packages))
    assert owned == {"/" + f for f in load("trivy-apk.json")["all_installed_files"]}


def test_trivy_package_without_version_is_skipped_with_warning() -> None:
    result = extract((FIXTURES / "trivy" / "apk").read_bytes())
    assert "invalidPackageWithoutAVersion" not in {p.name for p in result.packages}
    (warning,) = result.warnings
    assert warning.where == DB
    assert "invalidPackageWithoutAVersion" in warning.message


def test_trivy_identity_fields() -> None:
    result = extract((FIXTURES / "trivy" / "apk").read_bytes(), ALPINE_3_11)
    musl = result.packages[0]
    assert musl.ecosystem == "Alpine:v3.11"
    assert musl.purl == "pkg:apk/alpine/musl@1.1.14-r10?arch=x86_64&distro=alpine-3.11.5"
    assert (musl.kind, musl.locations) == ("apk", (DB,))
    scanelf = next(p for p in result.packages if p.name == "scanelf")
    assert (scanelf.source_name, scanelf.source_version) == ("pax-utils", "1.1.6-r0")


# ---------------------------------------------------------------- apk-tools


def test_apk_tools_query_installed() -> None:
    """The 39 packages `apk list --installed` prints for this database (apk-tools' own test)."""
    expected = load("apk-tools-query-installed.json")["packages"]
    result = extract((FIXTURES / "apk-tools" / "query-installed.data").read_bytes())
    assert len(result.packages) == 39
    assert result.warnings == []
    got = [(p.name, p.version, p.arch, p.source_name, dict(p.metadata)["license"]) for p in result.packages]
    assert sorted(got) == sorted((e["name"], e["version"], e["arch"], e["origin"], e["license"]) for e in expected)


def test_apk_tools_owners_and_contents() -> None:
    facts = load("apk-tools-query-installed.json")["other_upstream_assertions"]
    result = extract((FIXTURES / "apk-tools" / "query-installed.data").read_bytes())
    by_name = {p.name: p for p in result.packages}

    assert by_name["apk-tools"].owned_files == {"/" + f for f in facts["apk_tools_info"]["contents"]}
    assert dict(by_name["apk-tools"].metadata)["commit"] == facts["apk_tools_info"]["commit"]
    assert by_name["scanelf"].owned_files == {"/" + f for f in facts["scanelf_info"]["contents"]}

    owners = {f: f"{p.name}-{p.version}" for p in result.packages for f in p.owned_files}
    for path, owner in facts["owners"].items():
        if path == "usr":
            continue  # a directory: owned_files holds files only
        assert owners.get("/" + path) == owner, path


# ---------------------------------------------------------------- syft

SYFT_EXPECTED = load("syft-alpine.json")
SYFT_DBS = {
    "syft/alpine/single": SYFT / "single",
    "syft/alpine/base": SYFT / "base",
    "syft/alpine/empty-deps-and-provides": SYFT / "empty-deps-and-provides",
    "syft/alpine/extra-file-attributes": SYFT / "extra-file-attributes",
    "syft/alpine/multiple-1/lib/apk/db/installed": SYFT / "multiple-1" / "lib" / "apk" / "db" / "installed",
    "syft/alpine/multiple-2/lib/apk/db/installed": SYFT / "multiple-2" / "lib" / "apk" / "db" / "installed",
    "syft/alpine/corrupt/lib/apk/db/installed": SYFT / "corrupt" / "lib" / "apk" / "db" / "installed",
    "syft/alpine/glob-paths/lib/apk/db/installed": SYFT / "glob-paths" / "lib" / "apk" / "db" / "installed",
}


def test_every_syft_database_is_covered() -> None:
    assert sorted(SYFT_DBS) == sorted(SYFT_EXPECTED["raw_stanza_parse"]["per_file"])


@pytest.mark.parametrize("fixture", sorted(SYFT_DBS))
def test_syft_stanzas(fixture: str) -> None:
    result = extract(SYFT_DBS[fixture].read_bytes())
    expected = SYFT_EXPECTED["raw_stanza_parse"]["per_file"][fixture]
    got = [(p.name, p.version, p.arch, p.source_name) for p in result.packages]
    assert got == [(e["name"], e["version"], e["arch"], e["origin"]) for e in expected]


@pytest.mark.parametrize("fixture", ["single", "base", "empty-deps-and-provides", "multiple-1/lib/apk/db/installed"])
def test_syft_package_details(fixture: str) -> None:
    db = (SYFT / fixture).read_bytes()
    key = "syft/alpine/" + fixture.removesuffix("/lib/apk/db/installed")
    expected = SYFT_EXPECTED["fixtures"][key]["packages"]
    result = extract(db)
    assert [(p.name, p.version, p.arch, p.source_name) for p in result.packages] == [
        (e["name"], e["version"], e["arch"], e["origin"]) for e in expected
    ]
    for package, want in zip(result.packages, expected, strict=True):
        metadata = dict(package.metadata)
        assert metadata["license"].split() == want["licenses"]
        assert metadata["maintainer"] == want["maintainer"]
        if "git_commit" in want:
            assert metadata["commit"] == want["git_commit"]
        if "files" in want:
            # syft lists directories (F:) and files (R:) together; we keep the files.
            listed = {f["path"] for f in want["files"]}
            assert package.owned_files == listed - directories(db)


def test_syft_extra_file_attributes_are_ignored() -> None:
    db = (SYFT / "extra-file-attributes").read_bytes()
    (jre,) = extract(db).packages
    listed = {f["path"] for f in SYFT_EXPECTED["fixtures"]["syft/alpine/extra-file-attributes"]["files"]}
    assert jre.owned_files == {"/usr/lib/jvm/java-1.8-openjdk/bin/policytool"} == listed - directories(db)


def test_syft_corrupt_keeps_packages_and_warns() -> None:
    """syft returns an error for this database; we skip the garbage first line with a warning."""
    result = extract(SYFT_DBS["syft/alpine/corrupt/lib/apk/db/installed"].read_bytes())
    assert [p.name for p in result.packages] == ["alpine-baselayout-data"]
    (warning,) = result.warnings
    assert warning.where == DB and warning.message.startswith("line 1:")


def test_syft_placeholder_database() -> None:
    result = extract(SYFT_DBS["syft/alpine/glob-paths/lib/apk/db/installed"].read_bytes())
    assert result.packages == []
    assert len(result.warnings) == 1


# ---------------------------------------------------------------- database location, identity, edge cases


def test_required() -> None:
    detector = ApkDetector()
    assert detector.required(DB)
    assert detector.required(USR_DB)
    for path in ("/lib/apk/db/scripts.tar", "/etc/apk/world", "/lib/apk/db", "/var/lib/apk/db/installed"):
        assert not detector.required(path)


def test_lib_database_preferred_over_usr_lib() -> None:
    files = {DB: b"P:a\nV:1-r0\n", USR_DB: b"P:b\nV:2-r0\n"}
    result = ApkDetector().extract(MemoryFileSet(files), DetectContext())
    assert [(p.name, p.locations) for p in result.packages] == [("a", (DB,))]


def test_usr_lib_database_alone() -> None:
    result = extract(b"P:a\nV:1-r0\nA:aarch64\n", path=USR_DB)
    assert [(p.name, p.arch, p.locations) for p in result.packages] == [("a", "aarch64", (USR_DB,))]


def test_unknown_os_defaults() -> None:
    (package,) = extract(b"P:zlib\nV:1.3.1-r2\nA:x86_64\n").packages
    assert package.ecosystem == ""
    assert package.purl == "pkg:apk/alpine/zlib@1.3.1-r2?arch=x86_64"
    assert (package.source_name, package.source_version) == ("zlib", "1.3.1-r2")  # no origin: itself


def test_wolfi_namespace_and_ecosystem() -> None:
    (package,) = extract(b"P:glibc\nV:2.40-r1\nA:x86_64\no:glibc\n", OSInfo(id="wolfi", version="20230201")).packages
    assert package.ecosystem == "Wolfi"
    assert package.purl == "pkg:apk/wolfi/glibc@2.40-r1?arch=x86_64&distro=wolfi-20230201"


def test_file_before_any_directory_and_no_final_newline() -> None:
    (package,) = extract(b"P:a\nV:1-r0\nR:top\nF:usr/bin\nR:tool\nF:\nR:again").packages
    assert package.owned_files == {"/top", "/usr/bin/tool", "/again"}


def test_garbage_gives_warnings_not_exceptions() -> None:
    result = extract(bytes(range(256)) * 16)
    assert result.packages == []
    assert result.warnings


# ---------------------------------------------------------------- bounds: never a warning, always incomplete


def bounded(db: bytes, limits: Limits) -> Extraction:
    return ApkDetector().extract(MemoryFileSet({DB: db}), DetectContext(limits=limits))


def test_database_over_the_byte_bound_is_not_read() -> None:
    db = b"P:musl\nV:1.1.22-r2\n\n" * 10
    out = bounded(db, Limits(max_package_db_bytes=len(db) - 1))
    assert out.packages == [] and out.warnings == []
    assert [str(w) for w in out.incomplete] == [
        f"{DB}: {len(db)} bytes, over the limit of {len(db) - 1} (limit max_package_db_bytes)"
    ]


def test_packages_past_the_image_budget_stop_the_stream() -> None:
    out = bounded(b"".join(b"P:p%d\nV:1-r0\n\n" % n for n in range(10)), Limits(max_packages=3))
    assert [p.name for p in out.packages] == ["p0", "p1", "p2"]
    assert [str(w) for w in out.incomplete] == [f"{DB}: more than 3 packages in the image (limit max_packages)"]


def test_file_paths_past_their_bound_stop_the_stream_and_keep_the_packages_before() -> None:
    files = b"F:usr/bin\n" + b"".join(b"R:f%d\n" % n for n in range(4))
    db = b"P:first\nV:1-r0\n" + files + b"\nP:second\nV:1-r0\n" + files + b"\n"
    out = bounded(db, Limits(max_owned_files=6))
    assert [(p.name, len(p.owned_files)) for p in out.packages] == [("first", 4)]
    assert [str(w) for w in out.incomplete] == [f"{DB}: more than 6 file paths (limit max_owned_files)"]
