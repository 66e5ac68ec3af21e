"""Images whose package databases a top layer pads past the scanner's bounds, one per detector, built here
from layer bytes (`tests.ocibuild`), and the two hostile images found in an attack review.

Each padded image has a clean layer below with a package real advisories know (a finding the padding must
not hide) and a layer above that replaces that detector's database by a padded one: over
`max_package_db_bytes` for the databases the byte bound covers, over the Java detector's own bound on a
`pom.properties`. Scanned, every one must come out Incomplete with the clean layer's finding still there.

Also used by `benchmarks/hostile_inventory.py`: the 2-million-package dpkg archive.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from scanner.inventory.detectors.java import MAX_METADATA_FILE
from scanner.model.limits import Limits
from tests.ocibuild import Entry, Image, Layer, archive, layer_tar, write_layout

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = ROOT / "samples" / "alpine-3.10-app.tar"  # Alpine 3.10.1: 8 findings in the 3.10 secdb
MARINER_RPMDB = FIXTURES / "rpm" / "go-rpmdb" / "cbl-mariner-2.0" / "rpmdb.sqlite"
# Just over the default bound: the smallest padding that must be refused.
PAD = Limits().max_package_db_bytes + 4096

DEBIAN_RELEASE = Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
ALPINE_RELEASE = Entry("etc/os-release", b'ID=alpine\nVERSION_ID=3.10.1\nPRETTY_NAME="Alpine Linux v3.10"\n')
DPKG_STATUS = (
    b"Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u1\nArchitecture: amd64\nSource: openssl\n"
)
APK_DB = b"P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n"
PY_METADATA = "usr/local/lib/python3.11/site-packages/urllib3-1.26.12.dist-info/METADATA"
NPM_MANIFEST = "app/node_modules/minimist/package.json"
GO_BINARY = "app/server"
JAR = "app/app.jar"
GO_NET = "golang.org/x/net"
GO_NET_VERSION = "v0.0.0-20210405180319-a5a99cb37ef4"


@dataclass(frozen=True)
class Padded:
    """One padded image: what a scan must still report from the clean layer, and what the bound names."""

    detector: str
    kept_package: str  # a package of the clean layer
    finding: str  # its finding in the test database ("" where no advisory is at hand)
    bound: str  # what the one-line reason names


def _pad_lines(head: bytes, line: bytes, size: int = PAD) -> bytes:
    """`head` followed by copies of `line` up to at least `size` bytes."""
    return head + line * (1 + (size - len(head)) // len(line))


def _jar(pom: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as jar:
        jar.writestr("META-INF/maven/org.example/app/pom.properties", pom)
    return out.getvalue()


def _go_binary(modinfo: bytes) -> bytes:
    """An ELF file without section headers (as `strip --strip-section-headers` leaves it) whose build info
    Go 1.18+ would read: the magic at a 16-byte aligned offset, inline strings."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"  # 64-bit little endian; e_shoff 0: no section headers
    start = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")  # cmd/go's infoStart / infoEnd sentinels
    end = bytes.fromhex("f932433186182072008242104116d8f2")
    mod = start + modinfo + end
    version = b"go1.22.5"
    info = b"\xff Go buildinf:" + bytes([8, 0x2]) + b"\0" * 16 + _uvarint(len(version)) + version
    return bytes(header) + info + _uvarint(len(mod)) + mod


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _rpm_padded(scratch: Path) -> bytes:
    """The CBL-Mariner rpmdb.sqlite with a table of padding: a real database, only larger."""
    copy = scratch / "rpmdb.sqlite"
    copy.write_bytes(MARINER_RPMDB.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("CREATE TABLE padding (data BLOB)")
        conn.execute("INSERT INTO padding VALUES (zeroblob(?))", (PAD,))
    conn.close()
    return copy.read_bytes()


GO_MODINFO = f"path\texample.com/server\nmod\texample.com/server\t(devel)\t\ndep\t{GO_NET}\t{GO_NET_VERSION}\th1:x=\n"


def _layers(detector: str, scratch: Path) -> tuple[list[Entry], list[Entry]]:
    """The clean layer's entries and the padding layer's."""
    if detector == "dpkg":
        padded = _pad_lines(DPKG_STATUS + b"\n", b"Package: padding\nStatus: install ok installed\nVersion: 1\n\n")
        return [DEBIAN_RELEASE, Entry("var/lib/dpkg/status", DPKG_STATUS)], [Entry("var/lib/dpkg/status", padded)]
    if detector == "apk":
        padded = _pad_lines(APK_DB + b"\n", b"P:padding\nV:1-r0\nA:x86_64\n\n")
        return [ALPINE_RELEASE, Entry("lib/apk/db/installed", APK_DB)], [Entry("lib/apk/db/installed", padded)]
    if detector == "rpm":
        release = Entry("etc/os-release", b'ID=mariner\nVERSION_ID="2.0"\n')
        base = [release, Entry("var/lib/rpm/rpmdb.sqlite", MARINER_RPMDB.read_bytes())]
        return base, [Entry("var/lib/rpm/rpmdb.sqlite", _rpm_padded(scratch))]
    if detector == "python":
        metadata = b"Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.12\n"
        padded = _pad_lines(metadata + b"\n", b"A long description. " * 50 + b"\n")
        return [DEBIAN_RELEASE, Entry(PY_METADATA, metadata)], [Entry(PY_METADATA, padded)]
    if detector == "node":
        manifest = {"name": "minimist", "version": "1.2.5"}
        padded = json.dumps({**manifest, "description": "x" * PAD}).encode()
        return [DEBIAN_RELEASE, Entry(NPM_MANIFEST, json.dumps(manifest).encode())], [Entry(NPM_MANIFEST, padded)]
    if detector == "java":
        pom = b"groupId=org.example\nartifactId=app\nversion=1.0.0\n"
        padded = _jar(_pad_lines(pom, b"# padding\n", MAX_METADATA_FILE + 1))
        return [DEBIAN_RELEASE, Entry(JAR, _jar(pom))], [Entry(JAR, padded)]
    if detector == "go-binary":
        modinfo = GO_MODINFO.encode()
        padded = _pad_lines(modinfo, b"dep\texample.com/padding\tv1.0.0\th1:x=\n")
        return [DEBIAN_RELEASE, Entry(GO_BINARY, _go_binary(modinfo))], [Entry(GO_BINARY, _go_binary(padded))]
    raise ValueError(detector)


PADDED: dict[str, Padded] = {
    "dpkg": Padded("dpkg", "libssl3", "DEBIAN-CVE-2023-5363", "max_package_db_bytes"),
    "apk": Padded("apk", "musl", "ALPINE-CVE-2019-14697", "max_package_db_bytes"),
    "rpm": Padded("rpm", "curl", "", "max_package_db_bytes"),
    "python": Padded("python", "urllib3", "PYSEC-2023-192", "max_package_db_bytes"),
    "node": Padded("node", "minimist", "GHSA-xvch-5gv4-984h", "max_package_db_bytes"),
    "java": Padded("java", "org.example:app", "", f"larger than {MAX_METADATA_FILE} bytes"),
    "go-binary": Padded("go-binary", GO_NET, "GO-2021-0238", "max_package_db_bytes"),
}


def padded_layout(detector: str, root: Path) -> str:
    """An OCI layout (clean layer, then the padding layer) for `detector`; its `oci:` reference."""
    scratch = root.parent / f"{root.name}-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    base, pad = _layers(detector, scratch)
    layers = [
        Layer(layer_tar(base), created_by=f"the clean {detector} database"),
        # zstd: the padding is tens of MiB of repeated text, which gzip at level 9 takes seconds to pack.
        Layer(layer_tar(pad), compression="zstd", created_by=f"the padded {detector} database"),
    ]
    write_layout(root, [Image(layers)])
    return f"oci:{root}:latest"


# -------------------------------------------------------------------------- the two hostile images


def sample_layers() -> list[Layer]:
    """The layers of samples/alpine-3.10-app.tar (docker save, gzip layers), as they are."""
    with tarfile.open(SAMPLE) as tar:
        manifest = json.loads(_member(tar, "manifest.json"))[0]
        return [
            Layer(gzip.decompress(blob), blob=blob, created_by=name)
            for name in manifest["Layers"]
            for blob in [_member(tar, name)]
        ]


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    assert handle is not None, name
    return handle.read()


def apk_database(layers: list[Layer]) -> bytes:
    """The last `lib/apk/db/installed` the layers write."""
    found = b""
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer.tar)) as tar:
            for member in tar:
                if member.name.lstrip("./") == "lib/apk/db/installed":
                    found = _member(tar, member.name)
    assert found, "the sample has no apk database"
    return found


def padded_apk_database(original: bytes, size: int = 109 * 1024 * 1024) -> bytes:
    """The padding: the original database, then packages owning thousands of files each, to `size`
    bytes. Parsed whole, the file paths alone claim gigabytes as Python objects."""
    stanzas = []
    total = len(original) + 1
    index = 0
    while total < size:
        files = b"".join(b"R:f%d\n" % n for n in range(1000))
        stanza = b"P:pad%d\nV:1.0-r0\nA:x86_64\nF:usr/share/pad%d\n%s\n" % (index, index, files)
        stanzas.append(stanza)
        total += len(stanza)
        index += 1
    return original.rstrip(b"\n") + b"\n\n" + b"".join(stanzas)


def padded_apk_layout(root: Path) -> str:
    """The padded-apk image: the Alpine sample (8 findings) with one more layer carrying a 109 MiB apk database."""
    layers = sample_layers()
    padded = padded_apk_database(apk_database(layers))
    layers.append(Layer(layer_tar([Entry("lib/apk/db/installed", padded)]), created_by="the padding layer"))
    write_layout(root, [Image(layers)])
    return f"oci:{root}:latest"


def dpkg_two_million(target: Path, packages: int = 2_000_000) -> Path:
    """The two-million-package archive: an oci-archive (11 MB) whose dpkg status lists `packages` packages (180 MB)."""
    status = b"".join(
        b"Package: pkg%d\nStatus: install ok installed\nVersion: 1.0-%d\nArchitecture: amd64\n\n" % (n, n)
        for n in range(packages)
    )
    layer = Layer(layer_tar([DEBIAN_RELEASE, Entry("var/lib/dpkg/status", status)]))
    layout = target.parent / f"{target.name}.layout"
    write_layout(layout, [Image([layer])])
    return archive(layout, target)
