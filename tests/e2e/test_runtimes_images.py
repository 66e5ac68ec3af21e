"""Runtimes installed without a package manager, end to end: images laid out like the official golang,
python, node and eclipse-temurin images (a Debian base with its dpkg database, the runtime in /usr/local or
/opt/java) scanned with `acrguard sbom` and `acrguard scan`.

The runtime files are real (tests/fixtures/runtimes); the Go binaries carry the real build info of
Debian 12's umoci (Go 1.19.8, see tests/inventory/detectors/test_golang.py); the advisories are Go's own
vulndb records for the standard library (tests/fixtures/osv/golang-vulndb: GO-2026-6089, -6090, -6091 and
-6218 fixed in 1.25.13 and 1.26.6, and 1.27.0-rc.3 for 1.27; GO-2026-5942 from 1.26.0 only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.inventory.detectors.test_golang import UMOCI_BUILDINFO, elf
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

RUNTIMES = FIXTURES / "runtimes"
STDLIB_BELOW_FIX = {"GO-2026-6089", "GO-2026-6090", "GO-2026-6091", "GO-2026-6218"}


@pytest.fixture(scope="module")
def go_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "go.sqlite"
    import_sources(path, [str(FIXTURES / "osv" / "golang-vulndb")])
    return path


def fixture(name: str) -> bytes:
    return (RUNTIMES / name).read_bytes()


def debian_base(*owned: tuple[str, str, bytes]) -> bytes:
    """Debian 12 with a dpkg database; each (package, path, content) is a file that package owns."""
    stanzas = "\n".join(
        f"Package: {name}\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n" for name, _, _ in owned
    )
    entries = [
        Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
        Entry("var/lib/dpkg/status", stanzas.encode()),
    ]
    for name, path, data in owned:
        entries.append(Entry(f"var/lib/dpkg/info/{name}.list", f"{path}\n".encode()))
        entries.append(Entry(path.lstrip("/"), data, mode=0o755))
    return layer_tar(entries)


def image(root: Path, base: bytes, runtime: list[Entry]) -> str:
    write_layout(root, [Image([Layer(base, created_by="FROM debian"), Layer(layer_tar(runtime), created_by="ADD")])])
    return f"oci:{root}"


def sbom(acrguard: Any, ref: str) -> list[dict[str, Any]]:
    run = acrguard("sbom", ref, "--format", "json")
    assert run.code == 0, run.err
    packages: list[dict[str, Any]] = run.json()["packages"]
    return packages


def golang_image(root: Path, version_file: str) -> str:
    umoci = elf(UMOCI_BUILDINFO)
    base = debian_base(("umoci", "/usr/bin/umoci", umoci))
    return image(
        root,
        base,
        [
            Entry("usr/local/go/VERSION", fixture(version_file)),
            Entry("usr/local/go/bin/gofmt", umoci, mode=0o755),
            Entry("usr/local/go/src/debug/buildinfo/testdata/go117", umoci),  # the toolchain's test data
            Entry("opt/app/bin/server", umoci, mode=0o755),
        ],
    )


def test_golang_image_lists_the_toolchain_and_go_binaries_anywhere_but_os_owned(acrguard: Any, tmp_path: Path) -> None:
    packages = sbom(acrguard, golang_image(tmp_path / "go", "go-VERSION-go1.21"))
    got = sorted((p["name"], p["version"], p["evidence"], tuple(p["locations"])) for p in packages)
    assert got == [
        ("stdlib", "v1.19.8", "binary", ("/opt/app/bin/server",)),
        ("stdlib", "v1.19.8", "binary", ("/usr/local/go/bin/gofmt",)),
        ("stdlib", "v1.21.0", "runtime", ("/usr/local/go/VERSION",)),
        # Debian's own packages; /usr/bin/umoci, which dpkg owns, is not reported as Go modules again.
        ("umoci", "1.0-1", "installed", ("/var/lib/dpkg/status",)),
    ]
    stdlib = next(p for p in packages if p["evidence"] == "runtime")
    assert (stdlib["ecosystem"], stdlib["purl"]) == ("Go", "pkg:golang/stdlib@v1.21.0")


def test_golang_image_stdlib_below_the_fix_is_matched(acrguard: Any, go_db: Path, tmp_path: Path) -> None:
    run = acrguard("scan", golang_image(tmp_path / "go", "go-VERSION-go1.21"), "--db", str(go_db), "--format", "json")
    assert run.code in (0, 1), run.err
    findings = run.json()["findings"]
    got = sorted((f["package"]["name"], f["installed_version"], f["id"], f["fixed_version"]) for f in findings)
    # The toolchain (v1.21.0) once, and each of the two Go binaries (v1.19.8) that no OS package owns.
    assert got == sorted(
        [("stdlib", "v1.21.0", id_, "1.25.13") for id_ in STDLIB_BELOW_FIX]
        + [("stdlib", "v1.19.8", id_, "1.25.13") for id_ in STDLIB_BELOW_FIX] * 2
    )
    assert "GO-2026-5942" not in {f["id"] for f in findings}  # 1.26.0 and later only


def test_golang_image_stdlib_at_or_above_the_fix_is_not_matched(acrguard: Any, go_db: Path, tmp_path: Path) -> None:
    # go1.27.2: past 1.27.0-rc.3, the fix on the 1.27 branch of every stdlib record here.
    root = tmp_path / "go"
    write_layout(
        root,
        [
            Image(
                [
                    Layer(debian_base()),
                    Layer(layer_tar([Entry("usr/local/go/VERSION", fixture("go-VERSION-go1.27.2"))])),
                ]
            )
        ],
    )
    run = acrguard("scan", f"oci:{root}", "--db", str(go_db), "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["findings"] == []
    assert [(p["name"], p["version"]) for p in sbom(acrguard, f"oci:{root}")] == [("stdlib", "v1.27.2")]


def test_python_image_lists_its_cpython_and_not_debians(acrguard: Any, tmp_path: Path) -> None:
    debian_python = (
        ("libpython3.11-dev", "/usr/include/python3.11/patchlevel.h", fixture("patchlevel-3.7.13.h")),
        ("python3.11-minimal", "/usr/bin/python3.11", b"\x7fELF"),
    )
    ref = image(
        tmp_path / "py",
        debian_base(*debian_python),
        [
            Entry("usr/local/bin/python3.7", b"\x7fELF\x02\x01\x01", mode=0o755),
            Entry("usr/local/bin/python3", kind=b"2", linkname="python3.7"),
            Entry("usr/local/lib/python3.7/os.py", b"# os\n"),
            Entry("usr/local/include/python3.7m/patchlevel.h", fixture("patchlevel-3.7.13.h")),
        ],
    )
    runtimes = [p for p in sbom(acrguard, ref) if p["evidence"] == "runtime"]
    assert [(p["name"], p["version"], p["purl"], p["ecosystem"], p["locations"]) for p in runtimes] == [
        ("python", "3.7.13", "pkg:generic/python@3.7.13", "", ["/usr/local/include/python3.7m/patchlevel.h"])
    ]


def test_node_image_lists_node(acrguard: Any, tmp_path: Path) -> None:
    ref = image(
        tmp_path / "node",
        debian_base(),
        [
            Entry("usr/local/bin/node", b"\x7fELF\x02\x01\x01", mode=0o755),
            Entry("usr/local/include/node/node_version.h", fixture("node_version-0.12.1.h")),
        ],
    )
    assert [(p["name"], p["version"], p["purl"], p["evidence"]) for p in sbom(acrguard, ref)] == [
        ("node", "0.12.1", "pkg:generic/node@0.12.1", "runtime")
    ]


def test_eclipse_temurin_image_lists_openjdk_and_scan_claims_no_advisory(
    acrguard: Any, go_db: Path, tmp_path: Path
) -> None:
    ref = image(tmp_path / "jdk", debian_base(), [Entry("opt/java/openjdk/release", fixture("jdk-release-1.8.0_411"))])
    assert [(p["name"], p["version"], p["purl"], p["evidence"]) for p in sbom(acrguard, ref)] == [
        ("openjdk", "1.8.0_411", "pkg:generic/openjdk@1.8.0_411", "runtime")
    ]
    run = acrguard("scan", ref, "--db", str(go_db), "--format", "json")
    assert run.code == 0, run.err
    assert run.json()["findings"] == []
