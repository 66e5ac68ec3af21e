"""DpkgDetector against trivy's and syft's dpkg fixtures and against dpkg-query itself.

Fixtures and expected values: tests/fixtures/dpkg (see SOURCES.md there).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet, text_lines
from scanner.inventory.detectors.dpkg import DpkgDetector, parse_deb822, version_problem
from scanner.inventory.detectors.os_release import OSReleaseDetector
from scanner.model.limits import Limits
from scanner.model.types import OSInfo, RawPackage

FIXTURES = Path(__file__).parents[2] / "fixtures" / "dpkg"
TRIVY = FIXTURES / "trivy"
SYFT = FIXTURES / "syft" / "debian"
STATUS = "/var/lib/dpkg/status"
TRIVY_CASES = ["valid", "corrupsed", "digest", "md5sums", "only-apt", "third-party"]
DPKG_QUERY_FORMAT = "${binary:Package} ${Version} ${source:Package} ${source:Version} ${db:Status-Abbrev}\n"

Row = tuple[str, str, str, str, str]  # name, version, arch, source name, source version


# ---------------------------------------------------------------- helpers


def read_txtar(path: Path) -> dict[str, bytes]:
    """A txtar archive: a comment, then files, each introduced by a `-- name --` line."""
    files: dict[str, bytes] = {}
    name: str | None = None
    for line in path.read_bytes().splitlines(keepends=True):
        header = re.fullmatch(rb"-- (.+) --\r?\n?", line)
        if header:
            name = header.group(1).decode().strip()
            files[name] = b""
        elif name is not None:
            files[name] += line
    return files


def image_files(files: dict[str, bytes]) -> MemoryFileSet:
    """What the layer reader hands over: the paths the detector asks for, made absolute."""
    detector = DpkgDetector()
    absolute = {"/" + path.lstrip("/"): data for path, data in files.items()}
    return MemoryFileSet({path: data for path, data in absolute.items() if detector.required(path)})


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def extract(files: dict[str, bytes], os_info: OSInfo | None = None) -> Extraction:
    return DpkgDetector().extract(image_files(files), DetectContext(os=os_info))


def rows(packages: list[RawPackage]) -> list[Row]:
    return sorted((p.name, p.version, p.arch, p.source_name, p.source_version) for p in packages)


def load(name: str) -> Any:
    return json.loads((FIXTURES / "expected" / name).read_text())


def debian_version(epoch: int, version: str, release: str) -> str:
    """Trivy splits versions into epoch / upstream / revision; join them back the way dpkg writes them."""
    return (f"{epoch}:" if epoch else "") + version + (f"-{release}" if release else "")


# ---------------------------------------------------------------- trivy fixtures


def trivy_rows(case: str) -> list[Row]:
    expected = load(f"trivy-dpkg-{case}.json")
    (info,) = expected["package_infos"]
    assert info["file_path"] == "var/lib/dpkg/status"
    return sorted(
        (
            p["name"],
            p["full_version"],
            p["arch"],
            p["source_name"],
            debian_version(p["source_epoch"], p["source_version"], p["source_release"]),
        )
        for p in info["packages"]
    )


@pytest.mark.parametrize("case", TRIVY_CASES)
def test_trivy_fixture(case: str) -> None:
    result = extract(read_txtar(TRIVY / f"{case}.txtar"))
    assert rows(result.packages) == trivy_rows(case)
    assert all(p.locations == (STATUS,) and p.kind == "deb" for p in result.packages)


@pytest.mark.parametrize("case", TRIVY_CASES)
def test_trivy_fixture_matches_recorded_dpkg_query(case: str) -> None:
    """The dpkg-query output recorded next to trivy's values: its installed entries are ours."""
    listed = load(f"trivy-dpkg-{case}.json")["dpkg_query_crosscheck"]["listed"]
    installed = sorted(
        (e["package"], e["version"], e["arch"], e["source_package"], e["source_version"])
        for e in listed
        if e["status"] == "install ok installed"
    )
    assert rows(extract(read_txtar(TRIVY / f"{case}.txtar")).packages) == installed


def test_valid_drops_config_files_entry() -> None:
    result = extract(read_txtar(TRIVY / "valid.txtar"))
    assert len(result.packages) == 90
    assert "git" not in {p.name for p in result.packages}  # Status: deinstall ok config-files
    assert result.warnings == []


def test_valid_source_versions() -> None:
    by_name = {p.name: p for p in extract(read_txtar(TRIVY / "valid.txtar")).packages}
    # binNMU: the binary was rebuilt (+b3) from an unchanged source.
    assert (by_name["liblzma5"].version, by_name["liblzma5"].source_version) == (
        "5.1.1alpha+20120614-2+b3",
        "5.1.1alpha+20120614-2",
    )
    # "Source: gcc-8 (8-20180414-1ubuntu2)": the binary has an epoch the source lacks.
    assert (by_name["libgcc1"].version, by_name["libgcc1"].source_name, by_name["libgcc1"].source_version) == (
        "1:8-20180414-1ubuntu2",
        "gcc-8",
        "8-20180414-1ubuntu2",
    )
    # No version in Source: the binary's, epoch included (as dpkg-query's ${source:Version}).
    assert (by_name["passwd"].source_name, by_name["passwd"].source_version) == ("shadow", by_name["passwd"].version)


def test_corrupsed_keeps_good_stanzas_and_warns() -> None:
    result = extract(read_txtar(TRIVY / "corrupsed.txtar"))
    assert [p.name for p in result.packages] == ["libpam-runtime", "libpam-modules-bin", "makedev", "libgcc1"]
    messages = [w.message for w in result.warnings]
    assert len(messages) == 2
    assert "brokenPackageWithNoVersionThatShouldGetThrownOut" in messages[0] and "no Version" in messages[0]
    assert "invalidpkg" in messages[1] and "1:5.#" in messages[1]
    assert all(w.where == STATUS for w in result.warnings)


def test_md5sums_give_owned_files() -> None:
    result = extract(read_txtar(TRIVY / "md5sums.txtar"))
    (tar,) = result.packages
    assert tar.owned_files == frozenset(load("trivy-dpkg-md5sums.json")["system_installed_files"])


def test_third_party_epoch_and_purl() -> None:
    ubuntu = OSInfo(id="ubuntu", version="18.04")
    by_name = {p.name: p for p in extract(read_txtar(TRIVY / "third-party.txtar"), ubuntu).packages}
    docker = by_name["docker-ce"]
    assert docker.version == "5:20.10.7~3-0~debian-buster"
    assert docker.ecosystem == "Ubuntu:18.04"
    assert docker.purl == "pkg:deb/ubuntu/docker-ce@5:20.10.7~3-0~debian-buster?arch=amd64&distro=ubuntu-18.04"
    assert dict(docker.metadata)["maintainer"] == "Docker <support@docker.com>"


def test_available_file_is_not_read() -> None:
    assert not DpkgDetector().required("/var/lib/dpkg/available")
    assert "var/lib/dpkg/available" in read_txtar(TRIVY / "digest.txtar")


# ---------------------------------------------------------------- dpkg-query, run for real


def dpkg_query_installed(status: bytes, tmp_path: Path) -> list[tuple[str, str, str, str]]:
    """dpkg-query's own reading of a status file: its `ii` entries (name, version, source, source version)."""
    if shutil.which("dpkg-query") is None:  # a real reference is required: fail loudly, never skip
        pytest.fail("dpkg-query is missing: run scripts/install-system-deps.sh (Debian package dpkg)")
    admindir = tmp_path / "admindir"
    admindir.mkdir()
    (admindir / "status").write_bytes(status)
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f", DPKG_QUERY_FORMAT],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    entries = []
    for line in out.splitlines():
        package, version, source, source_version, abbrev = line.split(" ", 4)
        if abbrev.strip() == "ii":
            entries.append((package.split(":")[0], version, source, source_version))  # drop ":arch"
    return sorted(entries)


@pytest.mark.parametrize("case", TRIVY_CASES)
def test_trivy_fixture_against_dpkg_query(case: str, tmp_path: Path) -> None:
    status = read_txtar(TRIVY / f"{case}.txtar")["var/lib/dpkg/status"]
    ours = sorted((p.name, p.version, p.source_name, p.source_version) for p in extract({STATUS: status}).packages)
    assert ours == dpkg_query_installed(status, tmp_path)


@pytest.mark.parametrize(
    "entry", ["single", "installed-size-4KB", "deinstall", "libpam-runtime", "coreutils-relationships"]
)
def test_syft_status_file_against_dpkg_query(entry: str, tmp_path: Path) -> None:
    """syft's status.d entries that dpkg accepts, read as a status file by both."""
    status = (SYFT / "var/lib/dpkg/status.d" / entry).read_bytes()
    ours = sorted((p.name, p.version, p.source_name, p.source_version) for p in extract({STATUS: status}).packages)
    assert ours == dpkg_query_installed(status, tmp_path)


# ---------------------------------------------------------------- syft fixtures

SYFT_EXPECTED = load("syft-debian.json")


def syft_rows(fixture: str) -> list[Row]:
    """syft's values, adjusted to our documented decisions: a stanza without a version is skipped (syft
    keeps it with version ""), and no Source means the binary's own name (syft leaves it empty)."""
    return sorted(
        (p["name"], p["version"], p["arch"], p["source_name"] or p["name"], p["version"])
        for p in SYFT_EXPECTED["fixtures"][fixture]["packages"]
        if p["version"]
    )


@pytest.mark.parametrize("entry", ["single", "installed-size-4KB", "multiple", "deinstall"])
def test_syft_status_d_entry(entry: str) -> None:
    path = f"var/lib/dpkg/status.d/{entry}"
    result = extract({path: (SYFT / path).read_bytes()})
    assert rows(result.packages) == syft_rows(f"syft/debian/{path}")
    assert all(p.locations == ("/" + path,) for p in result.packages)


def test_syft_multiple_warns_for_skipped_stanzas() -> None:
    path = "var/lib/dpkg/status.d/multiple"
    result = extract({path: (SYFT / path).read_bytes()})
    assert [p.name for p in result.packages] == ["tzdata", "util-linux"]
    messages = [w.message for w in result.warnings]
    assert len(messages) == 2
    assert "no Package" in messages[0]
    assert "no-version" in messages[1] and "no Version" in messages[1]


def test_syft_conffiles_are_owned() -> None:
    path = "var/lib/dpkg/status.d/single"
    (apt,) = extract({path: (SYFT / path).read_bytes()}).packages
    expected = SYFT_EXPECTED["fixtures"]["syft/debian/" + path]["packages"][0]["files"]
    assert apt.owned_files == frozenset(f["path"] for f in expected)


@pytest.mark.parametrize("entry", ["corrupt", "empty"])
def test_syft_broken_entry_gives_warnings_not_errors(entry: str) -> None:
    """syft returns an error for `corrupt`; we skip the stanza (misspelt fields, a line without a colon)
    with a warning, so one bad entry cannot hide the rest of the image's packages."""
    path = f"var/lib/dpkg/status.d/{entry}"
    result = extract({path: (SYFT / path).read_bytes()})
    assert result.packages == []
    assert len(result.warnings) == 1
    assert result.warnings[0].where == "/" + path


def test_syft_corrupt_entry_next_to_good_ones() -> None:
    status_d = "var/lib/dpkg/status.d/"
    files = {status_d + name: (SYFT / status_d / name).read_bytes() for name in ("corrupt", "single", "deinstall")}
    result = extract(files)
    assert sorted(p.name for p in result.packages) == ["apt", "linux-image-6.14.0-1012-aws"]
    assert [w.where for w in result.warnings] == ["/" + status_d + "corrupt"]


def test_syft_doc_examples_parse_without_error() -> None:
    path = "var/lib/dpkg/status.d/doc-examples"
    result = extract({path: (SYFT / path).read_bytes()})
    assert {p.name for p in result.packages} >= {"mutt", "made-up-package-1"}


def test_syft_image_dpkg() -> None:
    """Image root with an empty `Package:` stanza first, conffiles in the stanza and info/*.md5sums."""
    files = tree(SYFT / "image-dpkg")
    os_info = OSReleaseDetector().extract(MemoryFileSet({"/" + k: v for k, v in files.items()}), DetectContext()).os
    assert os_info is not None and (os_info.id, os_info.version) == ("debian", "12")

    result = extract(files, os_info)
    (pam,) = result.packages
    expected = SYFT_EXPECTED["fixtures"]["syft/debian/image-dpkg"]["packages"][0]
    assert rows([pam]) == syft_rows("syft/debian/image-dpkg")
    assert pam.owned_files == frozenset(f["path"] for f in expected["files"])
    # syft adds an `upstream=pam` qualifier; our purl carries only arch and distro.
    assert pam.purl == expected["purl"].replace("&upstream=pam", "")
    assert pam.ecosystem == "Debian:12"
    assert [w.message for w in result.warnings] == ["stanza at line 1: skipped: no Package name"]


def test_syft_image_distroless() -> None:
    """status.d entry with no Status field (counts as installed) and its md5sums; .preinst not read."""
    files = tree(SYFT / "image-distroless-deb")
    result = extract(files)
    (sqlite,) = result.packages
    expected = SYFT_EXPECTED["fixtures"]["syft/debian/image-distroless-deb"]["packages"][0]
    assert rows([sqlite]) == syft_rows("syft/debian/image-distroless-deb")
    assert sqlite.owned_files == frozenset(f["path"] for f in expected["files"])
    assert sqlite.locations == ("/var/lib/dpkg/status.d/libsqlite3-0",)
    assert not DpkgDetector().required("/var/lib/dpkg/status.d/libsqlite3-0.preinst")
    # No OS known: no ecosystem, purl namespace "debian", no distro qualifier.
    assert sqlite.ecosystem == ""
    assert sqlite.purl == "pkg:deb/debian/libsqlite3-0@3.34.1-3?arch=arm64"


def test_syft_placeholder_files_give_warnings() -> None:
    """glob-paths holds `bogus status` placeholders: warnings, no packages, no exception."""
    root = SYFT / "glob-paths" / "var" / "lib" / "dpkg"
    result = extract(
        {
            "var/lib/dpkg/status": (root / "status").read_bytes(),
            "var/lib/dpkg/status.d/pkg-1.0": (root / "status.d" / "pkg-1.0").read_bytes(),
        }
    )
    assert result.packages == []
    assert sorted(w.where for w in result.warnings) == ["/var/lib/dpkg/status", "/var/lib/dpkg/status.d/pkg-1.0"]


# ---------------------------------------------------------------- installed-state semantics

STANZA = "Package: foo\nStatus: {status}\nArchitecture: amd64\nVersion: 1.0-1\n"


@pytest.mark.parametrize(
    "status",
    [
        "install ok installed",
        "hold ok installed",
        "deinstall ok installed",  # marked for removal, still on disk
        "install reinstreq half-installed",
        "install ok unpacked",
        "install ok half-configured",
        "install ok triggers-awaited",
        "install ok triggers-pending",
    ],
)
def test_states_with_files_on_disk_are_kept(status: str) -> None:
    result = extract({STATUS: STANZA.format(status=status).encode()})
    assert [p.name for p in result.packages] == ["foo"]
    assert result.warnings == []


@pytest.mark.parametrize("status", ["deinstall ok config-files", "purge ok not-installed", "install ok not-installed"])
def test_states_without_files_are_dropped_silently(status: str) -> None:
    result = extract({STATUS: STANZA.format(status=status).encode()})
    assert result.packages == []
    assert result.warnings == []


@pytest.mark.parametrize("status", ["installed", "install ok", "install ok bogus-state"])
def test_malformed_status_is_skipped_with_warning(status: str) -> None:
    result = extract({STATUS: STANZA.format(status=status).encode()})
    assert result.packages == []
    assert len(result.warnings) == 1


def test_partly_installed_state_is_recorded() -> None:
    result = extract({STATUS: STANZA.format(status="install ok half-configured").encode()})
    assert dict(result.packages[0].metadata)["status"] == "install ok half-configured"


# ---------------------------------------------------------------- owned files, multi-arch

MULTIARCH = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4

Package: libc6
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4

Package: tar
Status: install ok installed
Architecture: amd64
Version: 1.34+dfsg-1.2
"""


def test_multi_arch_same_packages_once_per_architecture() -> None:
    files = {
        STATUS: MULTIARCH.encode(),
        "/var/lib/dpkg/info/libc6:amd64.list": b"/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n",
        "/var/lib/dpkg/info/libc6:i386.list": b"/.\n/lib\n/lib/i386-linux-gnu/libc.so.6\n",
        "/var/lib/dpkg/info/tar.list": b"/.\n/usr/bin/tar\n",
        # A .list exists, so the md5sums is not used (it would miss directories and conffiles).
        "/var/lib/dpkg/info/tar.md5sums": b"0123456789abcdef0123456789abcdef  usr/bin/other\n",
    }
    result = extract(files)
    assert rows(result.packages) == [
        ("libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4"),
        ("libc6", "2.36-9+deb12u4", "i386", "glibc", "2.36-9+deb12u4"),
        ("tar", "1.34+dfsg-1.2", "amd64", "tar", "1.34+dfsg-1.2"),
    ]
    owned = {(p.name, p.arch): p.owned_files for p in result.packages}
    assert owned["libc6", "amd64"] == {"/lib", "/lib/x86_64-linux-gnu/libc.so.6"}
    assert owned["libc6", "i386"] == {"/lib", "/lib/i386-linux-gnu/libc.so.6"}
    assert owned["tar", "amd64"] == {"/usr/bin/tar"}


# ---------------------------------------------------------------- parsing details


@pytest.mark.parametrize(
    "version", ["1.0", "1:2.31.1-0.4ubuntu3.1", "5:20.10.7~3-0~debian-buster", "2:6.2.1+dfsg1-1.1", "1.0-1-2", "a1"]
)
def test_valid_versions(version: str) -> None:
    assert version_problem(version) == ""


@pytest.mark.parametrize("version", ["", "1:5.#", "a:1.0", ":1.0", "1:", "1.0-", "-1", "1.0-a_b", "1.0 2"])
def test_invalid_versions(version: str) -> None:
    assert version_problem(version) != ""


def test_deb822_continuation_and_case() -> None:
    (stanza,) = parse_deb822("package: foo\nDescription: one\n two\n .\n three\n# comment\nVersion: 1\n")
    assert stanza.fields == {"package": "foo", "description": "one\ntwo\n.\nthree", "version": "1"}
    assert stanza.problem == ""


def test_garbage_bytes_give_warnings_not_exceptions() -> None:
    garbage = bytes(range(256)) * 16
    result = extract({STATUS: garbage, "/var/lib/dpkg/status.d/x": garbage, "/var/lib/dpkg/info/x.list": garbage})
    assert result.packages == []
    assert result.warnings


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/var/lib/dpkg/status", True),
        ("/var/lib/dpkg/status.d/libc6", True),
        ("/var/lib/dpkg/status.d/libc6.md5sums", True),
        ("/var/lib/dpkg/status.d/libpython3.11-minimal", True),
        ("/var/lib/dpkg/status.d/libc6.preinst", False),
        ("/var/lib/dpkg/status.d/libc6.postrm", False),
        ("/var/lib/dpkg/status.d/sub/libc6", False),
        ("/var/lib/dpkg/info/libc6:amd64.list", True),
        ("/var/lib/dpkg/info/tar.md5sums", True),
        ("/var/lib/dpkg/info/tar.postinst", False),
        ("/var/lib/dpkg/info/tar.conffiles", False),
        ("/var/lib/dpkg/status-old", False),
        ("/var/lib/dpkg/available", False),
        ("/usr/lib/dpkg/status", False),
    ],
)
def test_required(path: str, wanted: bool) -> None:
    assert DpkgDetector().required(path) is wanted


# ---------------------------------------------------------------- bounds: never a warning, always incomplete

PACKAGE = b"Package: p%d\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"


def bounded(files: dict[str, bytes], limits: Limits) -> Extraction:
    return DpkgDetector().extract(image_files(files), DetectContext(limits=limits))


def test_status_over_the_byte_bound_is_not_read_and_status_d_still_is() -> None:
    status = b"".join(PACKAGE % n for n in range(10))
    entry = b"Package: distroless\nVersion: 1.0\n"
    out = bounded({STATUS: status, "var/lib/dpkg/status.d/distroless": entry}, Limits(max_package_db_bytes=100))
    assert [p.name for p in out.packages] == ["distroless"]
    assert [str(w) for w in out.incomplete] == [
        f"{STATUS}: {len(status)} bytes, over the limit of 100 (limit max_package_db_bytes)"
    ]
    assert out.warnings == []


def test_packages_past_the_image_budget_stop_the_stream() -> None:
    out = bounded({STATUS: b"".join(PACKAGE % n for n in range(10))}, Limits(max_packages=4))
    assert [p.name for p in out.packages] == ["p0", "p1", "p2", "p3"]
    assert [str(w) for w in out.incomplete] == [f"{STATUS}: more than 4 packages in the image (limit max_packages)"]


def test_owned_files_past_their_bound_are_incomplete() -> None:
    status = b"".join(PACKAGE % n for n in range(3))
    lists = {f"var/lib/dpkg/info/p{n}.list": b"/usr\n/usr/bin/a\n/usr/bin/b\n" for n in range(3)}
    out = bounded({STATUS: status, **lists}, Limits(max_owned_files=7))
    assert [len(p.owned_files) for p in out.packages] == [3, 3, 0]
    assert [w.message for w in out.incomplete] == ["more than 7 owned files in the database (limit max_owned_files)"]


def test_a_stanza_of_too_many_lines_stops_the_file_and_keeps_the_stanzas_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scanner.inventory.detectors.dpkg as dpkg

    monkeypatch.setattr(dpkg, "MAX_STANZA_LINES", 50)
    huge = b"Package: huge\nVersion: 1\n" + b"".join(b"X-F%d: v\n" % n for n in range(100)) + b"\n"
    out = bounded({STATUS: PACKAGE % 0 + huge + PACKAGE % 1}, Limits())
    assert [p.name for p in out.packages] == ["p0"]
    assert [str(w) for w in out.incomplete] == [f"{STATUS}: stanza at line 6 has more than 50 lines"]


def test_the_stream_reads_lines_as_the_whole_text_does() -> None:
    data = "a\r\nb\x0cc\n\nd\u2028e\xff\n".encode() + b"\xfe\x80\nlast"
    assert list(text_lines(data)) == data.decode("utf-8", errors="replace").splitlines()


def test_continuation_lines_are_joined_once() -> None:
    # 90,000 continuation lines: joined at the end of the stanza, not by repeated concatenation.
    text = "Package: a\nVersion: 1\nDescription: x\n" + " more\n" * 90_000
    (stanza,) = parse_deb822(text)
    assert stanza.fields["description"].count("\n") == 90_000


# ---------------------------------------------------------------- no Status field


def without_status(data: bytes) -> bytes:
    """syft's real `single` entry with its Status line taken out (what a distroless status.d entry looks like)."""
    return b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"Status:"))


def test_status_stanza_without_status_is_not_installed_as_dpkg_query_says(tmp_path: Path) -> None:
    status = without_status((SYFT / "var/lib/dpkg/status.d/single").read_bytes())
    result = extract({STATUS: status})
    assert dpkg_query_installed(status, tmp_path) == []
    assert result.packages == []
    assert [w.message for w in result.warnings] == [
        "stanza at line 1: package 'apt' skipped: no Status field (dpkg reads that as not-installed)"
    ]


def test_status_d_entry_without_status_is_installed() -> None:
    entry = "/var/lib/dpkg/status.d/single"
    result = extract({entry: without_status((SYFT / "var/lib/dpkg/status.d/single").read_bytes())})
    assert [(p.name, p.locations) for p in result.packages] == [("apt", (entry,))]
    assert result.warnings == []
