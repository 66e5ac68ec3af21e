"""RpmDetector: the three database backends and the header parser, on real databases (see
tests/fixtures/rpm/SOURCES.md), on an NDB database built here from the real headers, and on hand-made
hostile input."""

from __future__ import annotations

import gzip
import json
import random
import re
import sqlite3
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet
from scanner.inventory.detectors.rpm import RpmDetector
from scanner.inventory.detectors.rpm.header import Header, HeaderError
from scanner.inventory.detectors.rpm.package import split_source_rpm
from scanner.model.limits import Limits
from scanner.model.types import OSInfo, RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rpm"
MARINER_DB = FIXTURES / "go-rpmdb" / "cbl-mariner-2.0" / "rpmdb.sqlite"
LIBUUID_DB = FIXTURES / "go-rpmdb" / "libuuid" / "Packages"
MARINER = OSInfo(id="mariner", version="2.0")

SQLITE = "/var/lib/rpm/rpmdb.sqlite"
SYSIMAGE_SQLITE = "/usr/lib/sysimage/rpm/rpmdb.sqlite"
NDB = "/usr/lib/sysimage/rpm/Packages.db"
BDB = "/var/lib/rpm/Packages"

# Hostile inputs must not hang the parser: a hang guard, not a speed assertion (speed is for benchmarks/).
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def mariner_bytes() -> bytes:
    return MARINER_DB.read_bytes()


@pytest.fixture(scope="module")
def libuuid_bytes() -> bytes:
    return LIBUUID_DB.read_bytes()


def extract(files: dict[str, bytes], os_info: OSInfo | None = MARINER) -> Extraction:
    return RpmDetector().extract(MemoryFileSet(files), DetectContext(os_info))


def timed_extract(files: dict[str, bytes]) -> Extraction:
    """Hostile-input extraction, under the module's hang guard."""
    return extract(files)


def meta(pkg: RawPackage) -> dict[str, str]:
    return dict(pkg.metadata)


def _without_location(packages: list[RawPackage]) -> list[tuple[RawPackage, frozenset[str]]]:
    return [(RawPackage(**{**vars(p), "locations": ()}), p.owned_files) for p in packages]


# --- expected values, derived independently of the code under test -------------------------------------


def expected_packages(name: str) -> list[dict[str, Any]]:
    packages: list[dict[str, Any]] = json.loads((FIXTURES / "expected" / name).read_text())["packages"]
    return packages


def expected_tuple(p: dict[str, Any]) -> tuple[str, int, str, str, str, str, str]:
    """(name, epochnum, version, release, arch, source name, source version) from an `rpm -qa` row."""
    match = re.fullmatch(r"(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm", p["source_rpm"])
    assert match, p["source_rpm"]
    epoch = f"{p['epochnum']}:" if p["epochnum"] else ""
    return (
        p["name"],
        p["epochnum"],
        p["version"],
        p["release"],
        p["arch"],
        match.group(1),
        f"{epoch}{match.group(2)}-{match.group(3)}",
    )


def actual_tuple(pkg: RawPackage) -> tuple[str, int, str, str, str, str, str]:
    epoch = int(meta(pkg).get("epoch", "0"))
    evr = pkg.version.split(":", 1)[1] if ":" in pkg.version else pkg.version
    version, _, release = evr.rpartition("-")
    assert release == meta(pkg)["release"]
    return (pkg.name, epoch, version, release, pkg.arch, pkg.source_name, pkg.source_version)


def rpm_file_lists(name: str) -> dict[str, frozenset[str]]:
    """`rpm -qa --qf '[%{=NAME}\\t%{FILENAMES}\\n]'` output as name -> files."""
    path = FIXTURES / "expected" / name
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    files: dict[str, set[str]] = defaultdict(set)
    for line in raw.decode().splitlines():
        pkg, _, file = line.partition("\t")
        files[pkg].add(file)
    return {pkg: frozenset(names) for pkg, names in files.items()}


# --- header and database builders for hand-made input ------------------------------------------------------

STRING, INT32, STRING_ARRAY, BIN = 6, 4, 8, 7
NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
LICENSE, VENDOR, MODULARITYLABEL, OLDFILENAMES = 1014, 1011, 5096, 1027
BASENAMES, DIRNAMES, DIRINDEXES = 1117, 1118, 1116
Tag = tuple[int, int, Any]


def _encode(type_: int, value: Any) -> bytes:
    if type_ == STRING:
        return str(value).encode() + b"\0"
    if type_ == STRING_ARRAY:
        return b"".join(v.encode() + b"\0" for v in value)
    if type_ == INT32:
        return struct.pack(f">{len(value)}I", *value)
    raise AssertionError(type_)


def make_header(tags: list[Tag], dribble: tuple[Tag, ...] = (), region: bool = True) -> bytes:
    """An rpm header image laid out as rpm writes one: an immutable region whose trailer follows the
    region's data, then any dribble entries."""
    index: list[bytes] = []
    data = bytearray()

    def add(tag: int, type_: int, value: Any) -> None:
        if type_ == INT32:
            data.extend(b"\0" * (-len(data) % 4))
        count = 1 if type_ == STRING else len(value)
        index.append(struct.pack(">iIiI", tag, type_, len(data), count))
        data.extend(_encode(type_, value))

    for tag in tags:
        add(*tag)
    if region:
        trailer_at = len(data)
        data.extend(struct.pack(">iIiI", 63, BIN, -(len(tags) + 1) * 16, 16))
        index.insert(0, struct.pack(">iIiI", 63, BIN, trailer_at, 16))
    for tag in dribble:
        add(*tag)
    return struct.pack(">II", len(index), len(data)) + b"".join(index) + bytes(data)


def package_tags(name: str = "demo", **extra: Any) -> list[Tag]:
    tags: list[Tag] = [
        (NAME, STRING, name),
        (VERSION, STRING, extra.get("version", "1.0")),
        (RELEASE, STRING, extra.get("release", "1.el9")),
        (ARCH, STRING, "x86_64"),
        (SOURCERPM, STRING, f"{name}-1.0-1.el9.src.rpm"),
    ]
    if "epoch" in extra:
        tags.insert(3, (EPOCH, INT32, [extra["epoch"]]))
    return tags


def sqlite_db(blobs: list[bytes | Any]) -> bytes:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    conn.commit()
    return conn.serialize()


def sqlite_blobs(data: bytes) -> list[tuple[int, bytes]]:
    image = bytearray(data)
    image[18] = image[19] = 1  # the fixture is in WAL mode, which an in-memory database cannot open
    conn = sqlite3.connect(":memory:")
    conn.deserialize(image)
    return list(conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"))


def ndb_db(blobs: list[tuple[int, bytes]], slot_pages: int = 1, reverse_blocks: bool = False) -> bytes:
    """An NDB Packages.db as rpm's rpmpkg.c writes one (little-endian; 16-byte blocks; 4 KiB slot
    pages whose first two slots are the database header; blobs with head, padding and Adler-32 tail)."""

    def le(*values: int) -> bytes:
        return struct.pack(f"<{len(values)}I", *values)

    def magic(text: bytes) -> int:
        return int.from_bytes(text, "little")

    slots = bytearray(le(*([magic(b"Slot"), 0, 0, 0] * (slot_pages * 256))))
    body = bytearray()
    first_block = slot_pages * 4096 // 16
    placed = list(reversed(blobs)) if reverse_blocks else list(blobs)
    # Every other slot where there is room, so that free slots lie between used ones.
    stride = 2 if 2 + 2 * len(blobs) <= slot_pages * 256 else 1
    assert 2 + stride * len(blobs) <= slot_pages * 256
    for n, (pkgidx, blob) in enumerate(placed):
        head = le(magic(b"BlbS"), pkgidx, 1700000000, len(blob))
        pad = b"\0" * (-(16 + len(blob) + 12) % 16)
        adler = zlib.adler32(head + blob + pad)
        record = head + blob + pad + le(adler, len(blob), magic(b"BlbE"))
        block = first_block + len(body) // 16
        slot_no = 2 + n * stride
        slots[slot_no * 16 : slot_no * 16 + 16] = le(magic(b"Slot"), pkgidx, block, len(record) // 16)
        body.extend(record)
    next_pkgidx = max((i for i, _ in blobs), default=0) + 1
    slots[0:32] = le(magic(b"RpmP"), 0, 7, slot_pages, next_pkgidx) + b"\0" * 12
    return bytes(slots + body)


def bdb_db(blobs: list[tuple[int, bytes]], page_size: int = 4096, per_page: int = 8) -> bytes:
    """A little-endian Berkeley DB hash file as libdb lays one out for rpm: metadata page, one hash page
    per bucket (pages 1..n, so every `spares` entry is 1) holding key / H_OFFPAGE pairs (plus rpm's key 0
    counter, stored inline), and each header on its own chain of overflow pages after them. Pairs are
    stored in the order given, `per_page` to a bucket. rpm 4.18's bdb_ro reads such a file."""
    n_hash = -(-(len(blobs) + 1) // per_page)
    usable = page_size - 26
    hash_pages = [bytearray(page_size) for _ in range(n_hash)]
    overflow: list[bytearray] = []

    def page_header(page: bytearray, pgno: int, links: tuple[int, int], n: int, hf: int, kind: int) -> None:
        struct.pack_into("<IIIHHBB", page, 8, pgno, *links, n, hf, 0, kind)

    def key_item(key: int) -> bytes:
        return b"\x01" + struct.pack("<I", key)

    items: list[tuple[bytes, bytes]] = [(key_item(0), b"\x01" + struct.pack("<I", 1000))]
    for key, blob in blobs:
        first = 1 + n_hash + len(overflow)
        chunks = [blob[i : i + usable] for i in range(0, len(blob), usable)]
        for n, chunk in enumerate(chunks):
            page = bytearray(page_size)
            pgno = first + n
            links = (pgno - 1 if n else 0, pgno + 1 if n < len(chunks) - 1 else 0)
            page_header(page, pgno, links, 1, len(chunk), 7)
            page[26 : 26 + len(chunk)] = chunk
            overflow.append(page)
        items.append((key_item(key), b"\x03\0\0\0" + struct.pack("<II", first, len(blob))))

    for bucket, page in enumerate(hash_pages):
        offsets: list[int] = []
        low = page_size
        for pair in items[bucket * per_page : (bucket + 1) * per_page]:
            for item in pair:
                low -= len(item)
                page[low : low + len(item)] = item
                offsets.append(low)
        struct.pack_into(f"<{len(offsets)}H", page, 26, *offsets)
        page_header(page, 1 + bucket, (0, 0), len(offsets), low, 13)

    meta = bytearray(page_size)
    struct.pack_into("<IIII", meta, 8, 0, 0x061561, 9, page_size)
    meta[25] = 8
    struct.pack_into("<I", meta, 32, n_hash + len(overflow))  # last page number
    struct.pack_into("<I", meta, 72, n_hash - 1)  # max bucket
    struct.pack_into("<32I", meta, 96, *([1] * 32))  # spares: bucket b is page b + 1
    return b"".join(bytes(page) for page in [meta, *hash_pages, *overflow])


def bdb_pages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(page number, next page, on-page length, type) of each page of a little-endian BDB file."""
    for page in range(len(data) // 4096):
        next_page, _, length = struct.unpack_from("<IHH", data, page * 4096 + 16)
        yield page, next_page, length, data[page * 4096 + 25]


# --- plugin contract ---------------------------------------------------------------------------------------


def test_plugin_identity() -> None:
    detector = RpmDetector()
    assert (detector.name, detector.version, detector.group) == ("rpm", 1, "os-packages")
    assert detector.ident == "rpm@1"


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/rpm/rpmdb.sqlite",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        "/var/lib/rpm/Packages",
        "/usr/lib/sysimage/rpm/Packages",
        "/var/lib/rpm/Packages.db",
        "/usr/lib/sysimage/rpm/Packages.db",
    ],
)
def test_required_rpm_databases(path: str) -> None:
    assert RpmDetector().required(path)


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/rpm/rpmdb.sqlite-wal",
        "/var/lib/rpm/rpmdb.sqlite-shm",
        "/var/lib/rpm/Name",
        "/var/lib/rpm/Basenames",
        "/var/lib/rpm/Packages.bak",
        "/opt/var/lib/rpm/Packages",
        "/var/lib/dpkg/status",
        "/var/lib/rpm",
    ],
)
def test_not_required(path: str) -> None:
    assert not RpmDetector().required(path)


def test_no_database_no_packages() -> None:
    out = extract({})
    assert (out.packages, out.warnings, out.os) == ([], [], None)


# --- SQLite: the CBL-Mariner 2.0 database ------------------------------------------------------------------


def test_sqlite_inventory_equals_rpm_qa(mariner_bytes: bytes) -> None:
    out = extract({SQLITE: mariner_bytes})
    assert out.warnings == []
    expected = [expected_tuple(p) for p in expected_packages("go-rpmdb-cbl-mariner-2.0.json")]
    assert len(expected) == 129
    # Same packages, same fields, same (database) order as rpm -qa.
    assert [actual_tuple(p) for p in out.packages] == expected


def test_sqlite_licence_vendor_and_common_fields(mariner_bytes: bytes) -> None:
    out = extract({SQLITE: mariner_bytes})
    expected = expected_packages("go-rpmdb-cbl-mariner-2.0.json")
    assert [(meta(p).get("license", ""), meta(p).get("vendor", "")) for p in out.packages] == [
        (e["license"], e["vendor"]) for e in expected
    ]
    for pkg in out.packages:
        assert (pkg.kind, pkg.ecosystem, pkg.locations) == ("rpm", "Azure Linux:2", (SQLITE,))
        assert "modularitylabel" not in meta(pkg)  # no package in this database has one


def test_sqlite_fixture_is_in_wal_mode_and_still_reads(mariner_bytes: bytes) -> None:
    # The header's read/write version bytes say WAL; the in-memory open must cope with that.
    assert mariner_bytes[18] == mariner_bytes[19] == 2
    assert len(extract({SQLITE: mariner_bytes}).packages) == 129


def test_sqlite_owned_files_equal_rpm_filenames(mariner_bytes: bytes) -> None:
    out = extract({SQLITE: mariner_bytes})
    expected = rpm_file_lists("rpm-filenames-cbl-mariner-2.0.tsv.gz")
    assert {p.name: p.owned_files for p in out.packages if p.owned_files} == expected
    curl = next(p for p in out.packages if p.name == "curl")
    assert "/usr/bin/curl" in curl.owned_files
    assert curl.owned_files == {
        "/usr/bin/curl",
        "/usr/bin/curl-config",
        "/usr/share/licenses/curl",
        "/usr/share/licenses/curl/COPYING",
        "/usr/share/man/man1/curl-config.1.gz",
        "/usr/share/man/man1/curl.1.gz",
    }


def test_curl_matches_go_rpmdb_detail(mariner_bytes: bytes) -> None:
    detail = json.loads((FIXTURES / "expected" / "go-rpmdb-cbl-mariner-2.0.json").read_text())
    detail = detail["upstream_go_test_detail"]
    curl = next(p for p in extract({SQLITE: mariner_bytes}).packages if p.name == "curl")
    assert curl == RawPackage(
        name="curl",
        version=f"{detail['version']}-{detail['release']}",
        ecosystem="Azure Linux:2",
        purl="pkg:rpm/mariner/curl@7.76.0-6.cm2?arch=x86_64&distro=mariner-2.0",
        source_name="curl",
        source_version="7.76.0-6.cm2",
        arch=detail["arch"],
        locations=(SQLITE,),
        kind="rpm",
        metadata=(("release", "6.cm2"), ("license", detail["license"]), ("vendor", detail["vendor"])),
    )


def test_epoch_goes_into_version_purl_source_and_metadata(mariner_bytes: bytes) -> None:
    pkg = next(p for p in extract({SQLITE: mariner_bytes}).packages if p.name == "ca-certificates-tools")
    assert pkg.version == "1:2.0.0-1.cm2"
    qualifiers = "arch=noarch&distro=mariner-2.0&epoch=1"
    assert pkg.purl == f"pkg:rpm/mariner/ca-certificates-tools@1:2.0.0-1.cm2?{qualifiers}"
    # SOURCERPM has no epoch: the binary's is carried over.
    assert (pkg.source_name, pkg.source_version) == ("ca-certificates", "1:2.0.0-1.cm2")
    assert meta(pkg)["epoch"] == "1"


def test_without_os_the_purl_has_no_namespace_or_distro(mariner_bytes: bytes) -> None:
    curl = next(p for p in extract({SQLITE: mariner_bytes}, os_info=None).packages if p.name == "curl")
    assert curl.ecosystem == ""
    assert curl.purl == "pkg:rpm/curl@7.76.0-6.cm2?arch=x86_64"


def test_sqlite_reads_only_the_checkpointed_main_file(tmp_path: Path) -> None:
    """A database whose WAL was never checkpointed: the main file holds only the checkpointed rows."""
    path = tmp_path / "rpmdb.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (make_header(package_tags("old")),))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (make_header(package_tags("new")),))
    conn.commit()
    try:
        main_file = path.read_bytes()  # the second row is only in rpmdb.sqlite-wal
        out = timed_extract({SQLITE: main_file})
    finally:
        conn.close()
    assert [p.name for p in out.packages] == ["old"]
    assert out.warnings == []


# --- Berkeley DB: the RHEL 8 libuuid database --------------------------------------------------------------


def test_bdb_inventory_equals_rpm_qa(libuuid_bytes: bytes) -> None:
    out = extract({BDB: libuuid_bytes})
    assert out.warnings == []
    expected = expected_packages("go-rpmdb-libuuid.json")
    assert [actual_tuple(p) for p in out.packages] == [expected_tuple(p) for p in expected]
    assert [(meta(p)["license"], meta(p)["vendor"]) for p in out.packages] == [("BSD", "Red Hat, Inc.")]
    assert out.packages[0].locations == (BDB,)
    assert out.packages[0].source_name == "util-linux"


def test_bdb_owned_files_equal_rpm_filenames(libuuid_bytes: bytes) -> None:
    out = extract({BDB: libuuid_bytes})
    assert {p.name: p.owned_files for p in out.packages} == rpm_file_lists("rpm-filenames-libuuid.tsv")


def test_bdb_big_endian_file_is_read(libuuid_bytes: bytes) -> None:
    """The same database as a big-endian machine writes it: every page-level number byte-swapped."""
    data = bytearray(libuuid_bytes)

    def swap(offset: int, fmt: str) -> None:
        struct.pack_into(">" + fmt, data, offset, *struct.unpack_from("<" + fmt, data, offset))

    for field in (8, 12, 16, 20, 28, 32):
        swap(field, "I")
    for page in range(1, len(data) // 4096):
        base = page * 4096
        swap(base + 8, "III")
        swap(base + 20, "HH")
        entries = struct.unpack_from(">H", data, base + 20)[0]
        if data[base + 25] == 13:  # hash page: item offsets, keys and overflow references
            offsets = struct.unpack_from(f"<{entries}H", data, base + 26)
            swap(base + 26, f"{entries}H")
            for i, item in enumerate(offsets):
                length = (4096 if i == 0 else offsets[i - 1]) - item
                if data[base + item] == 1 and length == 5:  # a 4-byte key (or rpm's counter value)
                    swap(base + item + 1, "I")
                elif data[base + item] == 3:
                    swap(base + item + 4, "II")
    out = extract({BDB: bytes(data)})
    assert out.warnings == []
    assert [p.name for p in out.packages] == ["libuuid"]
    assert len(out.packages[0].owned_files) == 7


def test_bdb_with_many_packages_gives_the_same_packages_as_sqlite(mariner_bytes: bytes) -> None:
    """A BDB file built from the real headers of the SQLite fixture, pairs stored in scrambled order over
    several hash pages, as a hash file stores them."""
    blobs = sqlite_blobs(mariner_bytes)
    scrambled = sorted(blobs, key=lambda b: (b[0] * 7919) % 131)
    bdb = extract({BDB: bdb_db(scrambled)})
    assert bdb.warnings == []
    assert [p.locations for p in bdb.packages] == [(BDB,)] * 129
    # Package-number order, like the sqlite backend's hnum order.
    assert _without_location(bdb.packages) == _without_location(extract({SQLITE: mariner_bytes}).packages)


# --- NDB: built from the real headers of the SQLite fixture ------------------------------------------------


@pytest.mark.parametrize(("slot_pages", "reverse"), [(1, False), (2, True)])
def test_ndb_gives_the_same_packages_as_sqlite(mariner_bytes: bytes, slot_pages: int, reverse: bool) -> None:
    blobs = sqlite_blobs(mariner_bytes)
    ndb = extract({NDB: ndb_db(blobs, slot_pages=slot_pages, reverse_blocks=reverse)})
    assert ndb.warnings == []
    sqlite = extract({SQLITE: mariner_bytes})
    assert [p.locations for p in ndb.packages] == [(NDB,)] * 129
    assert _without_location(ndb.packages) == _without_location(sqlite.packages)


# --- choosing one database ---------------------------------------------------------------------------------


def test_sqlite_preferred_over_ndb_and_bdb(mariner_bytes: bytes, libuuid_bytes: bytes) -> None:
    blobs = sqlite_blobs(mariner_bytes)[:3]
    out = extract({BDB: libuuid_bytes, NDB: ndb_db(blobs), SQLITE: mariner_bytes})
    assert len(out.packages) == 129
    assert {p.locations for p in out.packages} == {(SQLITE,)}


def test_ndb_preferred_over_bdb(mariner_bytes: bytes, libuuid_bytes: bytes) -> None:
    blobs = sqlite_blobs(mariner_bytes)[:3]
    out = extract({BDB: libuuid_bytes, NDB: ndb_db(blobs)})
    assert [p.name for p in out.packages] == ["mariner-release", "filesystem", "glibc"]
    assert {p.locations for p in out.packages} == {(NDB,)}


def test_sysimage_path_preferred_within_a_format(mariner_bytes: bytes) -> None:
    small = sqlite_db([make_header(package_tags("only"))])
    out = extract({SQLITE: mariner_bytes, SYSIMAGE_SQLITE: small})
    assert [(p.name, p.locations) for p in out.packages] == [("only", (SYSIMAGE_SQLITE,))]


def test_unreadable_preferred_database_falls_back(libuuid_bytes: bytes) -> None:
    out = timed_extract({SQLITE: b"this is not a database", BDB: libuuid_bytes})
    assert [(p.name, p.locations) for p in out.packages] == [("libuuid", (BDB,))]
    assert [w.where for w in out.warnings] == [SQLITE]


# --- header contents ---------------------------------------------------------------------------------------


def test_hand_made_header_fields() -> None:
    tags = [
        *package_tags("nodejs", version="18.14.2", release="1.module_el8.7.0+3370", epoch=1),
        (MODULARITYLABEL, STRING, "nodejs:18:8070020230306170042:ad008a3a"),
        (LICENSE, STRING, "MIT"),
        (VENDOR, STRING, "Rocky Enterprise Software Foundation"),
        (BASENAMES, STRING_ARRAY, ["bin", "node", "README.md"]),
        (DIRNAMES, STRING_ARRAY, ["/usr/", "/usr/bin/", "/usr/share/doc/nodejs/"]),
        (DIRINDEXES, INT32, [0, 1, 2]),
    ]
    out = extract({SQLITE: sqlite_db([make_header(tags)])}, os_info=OSInfo(id="rocky", version="8.7"))
    assert out.warnings == []
    (pkg,) = out.packages
    assert pkg.version == "1:18.14.2-1.module_el8.7.0+3370"
    assert pkg.ecosystem == "Rocky Linux:8"
    # "+" is percent-encoded in a purl version.
    assert pkg.purl.startswith("pkg:rpm/rocky/nodejs@1:18.14.2-1.module_el8.7.0%2B3370?")
    assert pkg.purl.endswith("?arch=x86_64&distro=rocky-8.7&epoch=1")
    assert pkg.metadata == (
        ("epoch", "1"),
        ("release", "1.module_el8.7.0+3370"),
        ("modularitylabel", "nodejs:18:8070020230306170042:ad008a3a"),
        ("license", "MIT"),
        ("vendor", "Rocky Enterprise Software Foundation"),
    )
    assert pkg.owned_files == {"/usr/bin", "/usr/bin/node", "/usr/share/doc/nodejs/README.md"}


def test_old_style_file_names_and_legacy_header_without_region() -> None:
    tags = [*package_tags("legacy"), (OLDFILENAMES, STRING_ARRAY, ["/etc/legacy.conf", "/usr/bin/legacy"])]
    out = extract({SQLITE: sqlite_db([make_header(tags, region=False)])})
    assert out.warnings == []
    assert [p.name for p in out.packages] == ["legacy"]
    assert out.packages[0].owned_files == {"/etc/legacy.conf", "/usr/bin/legacy"}


def test_dribble_entries_replace_region_entries() -> None:
    blob = make_header(package_tags("demo"), dribble=((ARCH, STRING, "aarch64"),))
    assert [p.arch for p in extract({SQLITE: sqlite_db([blob])}).packages] == ["aarch64"]


def test_epoch_zero_is_recorded_but_not_in_the_version() -> None:
    (pkg,) = extract({SQLITE: sqlite_db([make_header(package_tags("zero", epoch=0))])}).packages
    assert (pkg.version, meta(pkg)["epoch"]) == ("1.0-1.el9", "0")
    assert "epoch=" not in pkg.purl


def test_gpg_pubkey_pseudo_packages_are_skipped() -> None:
    key: list[Tag] = [
        (NAME, STRING, "gpg-pubkey"),
        (VERSION, STRING, "fd431d51"),
        (RELEASE, STRING, "4ae0493b"),
    ]
    pubkey = make_header(key)
    out = extract({SQLITE: sqlite_db([pubkey, make_header(package_tags("real"))])})
    assert [p.name for p in out.packages] == ["real"]
    assert out.warnings == []


@pytest.mark.parametrize(
    ("source_rpm", "expected"),
    [
        ("openssl-1.1.1k-7.cm2.src.rpm", ("openssl", "1.1.1k", "7.cm2")),
        ("util-linux-2.32.1-42.el8_8.src.rpm", ("util-linux", "2.32.1", "42.el8_8")),
        ("kernel-5.14.0-1.nosrc.rpm", ("kernel", "5.14.0", "1")),
        ("(none)", ("", "", "")),
        ("", ("", "", "")),
        ("noversion.src.rpm", ("", "", "")),
    ],
)
def test_split_source_rpm(source_rpm: str, expected: tuple[str, str, str]) -> None:
    assert split_source_rpm(source_rpm) == expected


def test_inconsistent_file_list_keeps_the_package_and_warns() -> None:
    tags = [
        *package_tags("odd"),
        (BASENAMES, STRING_ARRAY, ["a", "b"]),
        (DIRNAMES, STRING_ARRAY, ["/x/"]),
        (DIRINDEXES, INT32, [0, 5]),
    ]
    out = extract({SQLITE: sqlite_db([make_header(tags)])})
    assert [(p.name, p.owned_files) for p in out.packages] == [("odd", frozenset())]
    assert "file list ignored" in str(out.warnings[0])


# --- hostile input -----------------------------------------------------------------------------------------


def _corrupt(blob: bytes, offset: int, fmt: str, *values: int) -> bytes:
    data = bytearray(blob)
    struct.pack_into(fmt, data, offset, *values)
    return bytes(data)


GOOD = make_header(package_tags("good"))
N_INDEX = len(package_tags()) + 1  # entries in GOOD, region tag included
DATA_START = 8 + 16 * N_INDEX
DL = struct.unpack_from(">I", GOOD, 4)[0]

BAD_HEADERS = {
    "index count 2**31": _corrupt(GOOD, 0, ">I", 2**31),
    "index count over rpm's 65535": _corrupt(GOOD, 0, ">I", 0x10000),
    "index count 2**32-1": _corrupt(GOOD, 0, ">I", 2**32 - 1),
    "data length past the end": _corrupt(GOOD, 4, ">I", DL + 1),
    "no index entries": _corrupt(GOOD, 0, ">I", 0),
    "tag offset past the end": _corrupt(GOOD, 8 + 16 + 8, ">i", DL + 100),
    "negative tag offset": _corrupt(GOOD, 8 + 16 + 8, ">i", -4),
    "string count 2**31": _corrupt(GOOD, 8 + 16 + 12, ">I", 2**31),
    "unknown type": _corrupt(GOOD, 8 + 16 + 4, ">I", 42),
    "region trailer offset past the end": _corrupt(GOOD, 8 + 8, ">i", DL),
    "region covers more entries than exist": _corrupt(GOOD, DATA_START + DL - 16 + 8, ">i", -16 * 1000),
    "region trailer with the wrong tag": _corrupt(GOOD, DATA_START + DL - 16, ">i", 1000),
    "unterminated string": make_header(package_tags("x"), region=False)[:-1] + b"x",
    "truncated": GOOD[:-20],
    "tiny": b"\0\0\0",
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_malformed_header_is_skipped_with_a_warning(case: str) -> None:
    out = timed_extract({SQLITE: sqlite_db([BAD_HEADERS[case], make_header(package_tags("after"))])})
    assert [p.name for p in out.packages] == ["after"]
    assert len(out.warnings) == 1
    assert out.warnings[0].where == SQLITE
    assert "rpm header 1 skipped" in out.warnings[0].message


def test_header_parser_raises_only_header_error() -> None:
    with pytest.raises(HeaderError):
        Header(BAD_HEADERS["index count 2**31"])
    assert Header(GOOD).string(NAME) == "good"


def test_mutated_real_headers_never_raise(mariner_bytes: bytes) -> None:
    """Random byte damage to real headers: every result is a package or a warning, never an exception."""
    rng = random.Random(1234)
    originals = [blob for _, blob in sqlite_blobs(mariner_bytes)[:20]]
    mutants = []
    for _ in range(300):
        blob = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 8)):
            # Aim at the index as often as at the data: that is where the offsets and counts live.
            limit = min(len(blob), 8 + 16 * 40) if rng.random() < 0.5 else len(blob)
            blob[rng.randrange(limit)] = rng.randrange(256)
        mutants.append(bytes(blob))
    out = timed_extract({SQLITE: sqlite_db(mutants)})
    assert len(out.packages) + len(out.warnings) >= 1
    assert all(w.where == SQLITE for w in out.warnings)


def test_truncated_sqlite(mariner_bytes: bytes) -> None:
    for size in (50, 100, 4096, len(mariner_bytes) // 2):
        out = timed_extract({SQLITE: mariner_bytes[:size]})
        assert out.warnings, size
        assert len(out.packages) < 129


@pytest.mark.parametrize("path", [SQLITE, NDB, BDB])
def test_random_bytes(path: str) -> None:
    data = random.Random(path).randbytes(65536)
    out = timed_extract({path: data})
    assert out.packages == []
    assert [w.where for w in out.warnings] == [path]


@pytest.mark.parametrize("path", [SQLITE, NDB, BDB])
def test_empty_file(path: str) -> None:
    out = timed_extract({path: b""})
    assert (out.packages, [w.where for w in out.warnings]) == ([], [path])


def test_sqlite_without_packages_table() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE Other (x)")
    out = timed_extract({SQLITE: conn.serialize()})
    assert out.packages == []
    assert "no Packages table" in out.warnings[0].message


def test_sqlite_packages_view_that_never_ends_is_refused() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIEW Packages AS WITH RECURSIVE n(hnum) AS (SELECT 1 UNION ALL SELECT hnum + 1 FROM n) "
        "SELECT hnum, zeroblob(100) AS blob FROM n"
    )
    out = timed_extract({SQLITE: conn.serialize()})
    assert out.packages == []
    assert "not a plain table" in out.warnings[0].message


def test_sqlite_non_blob_rows_are_skipped() -> None:
    out = timed_extract({SQLITE: sqlite_db(["text, not a header", 42, make_header(package_tags("ok"))])})
    assert [p.name for p in out.packages] == ["ok"]
    assert len(out.warnings) == 2


def test_sqlite_value_larger_than_the_file_is_refused() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob AS (zeroblob(900000000)))")
    conn.execute("INSERT INTO Packages (hnum) VALUES (1)")
    conn.commit()
    out = timed_extract({SQLITE: conn.serialize()})
    assert out.packages == []
    assert len(out.warnings) == 1


def test_owned_files_are_bounded_per_database_and_make_the_inventory_incomplete() -> None:
    headers = [
        make_header([*package_tags(name), (OLDFILENAMES, STRING_ARRAY, [f"/{name}/a", f"/{name}/b"])])
        for name in ("one", "two")
    ]
    ctx = DetectContext(MARINER, Limits(max_owned_files=3))
    out = RpmDetector().extract(MemoryFileSet({SQLITE: sqlite_db(headers)}), ctx)
    assert [(p.name, len(p.owned_files)) for p in out.packages] == [("one", 2), ("two", 0)]
    assert out.warnings == []
    assert [w.message for w in out.incomplete] == ["more than 3 owned files in the database (limit max_owned_files)"]


def test_packages_are_bounded_per_image_and_make_the_inventory_incomplete() -> None:
    ctx = DetectContext(MARINER, Limits(max_packages=2))
    out = RpmDetector().extract(
        MemoryFileSet({SQLITE: sqlite_db([make_header(package_tags(f"p{n}")) for n in range(5)])}), ctx
    )
    assert [p.name for p in out.packages] == ["p0", "p1"]
    assert [w.message for w in out.incomplete] == ["more than 2 packages in the image (limit max_packages)"]


def test_database_over_the_size_bound_is_not_read(mariner_bytes: bytes) -> None:
    ctx = DetectContext(MARINER, Limits(max_package_db_bytes=len(mariner_bytes) - 1))
    out = RpmDetector().extract(MemoryFileSet({SQLITE: mariner_bytes}), ctx)
    assert out.packages == []
    assert [(w.where, w.message) for w in out.incomplete] == [
        (SQLITE, f"{len(mariner_bytes)} bytes, over the limit of {len(mariner_bytes) - 1} (limit max_package_db_bytes)")
    ]


def test_many_bad_headers_give_a_bounded_number_of_warnings() -> None:
    out = timed_extract({SQLITE: sqlite_db([b"\xff" * 40] * 500)})
    assert out.packages == []
    assert len(out.warnings) == 51
    assert out.warnings[-1].message == "450 more problems not listed"


def test_bdb_bad_magic(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: _corrupt(libuuid_bytes, 12, "<I", 0x123456)})
    assert out.packages == []
    assert "bad magic" in out.warnings[0].message


def test_bdb_btree_is_not_read(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: _corrupt(libuuid_bytes, 12, "<I", 0x053162)})
    assert out.packages == []
    assert "btree" in out.warnings[0].message


def test_bdb_overflow_page_with_the_wrong_number(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: _corrupt(libuuid_bytes, 7 * 4096 + 8, "<I", 8)})
    assert out.packages == []
    assert "page 7 in its overflow chain is not an overflow page" in out.warnings[0].message


def test_bdb_bad_page_size(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: _corrupt(libuuid_bytes, 20, "<I", 1000)})
    assert out.packages == []
    assert "page size" in out.warnings[0].message


def test_bdb_overflow_page_cycle(libuuid_bytes: bytes) -> None:
    last = max(page for page, nxt, _, kind in bdb_pages(libuuid_bytes) if kind == 7 and nxt == 0)
    out = timed_extract({BDB: _corrupt(libuuid_bytes, last * 4096 + 16, "<I", 3)})  # back to the first
    assert out.packages == []
    assert "loops back to page 3" in out.warnings[0].message


def test_bdb_overflow_page_self_loop_with_empty_pages(libuuid_bytes: bytes) -> None:
    data = _corrupt(libuuid_bytes, 3 * 4096 + 16, "<IHH", 3, 1, 0)  # page 3: next 3, no bytes on it
    out = timed_extract({BDB: data})
    assert out.packages == []
    assert len(out.warnings) == 1


def test_bdb_overflow_page_outside_the_file(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: _corrupt(libuuid_bytes, 5 * 4096 + 16, "<I", 0xFFFFFFF0)})
    assert out.packages == []
    assert "outside the file" in out.warnings[0].message


def test_bdb_declared_length_larger_than_the_file(libuuid_bytes: bytes) -> None:
    hash_page = 2 * 4096
    value_at = struct.unpack_from("<H", libuuid_bytes, hash_page + 28)[0]
    out = timed_extract({BDB: _corrupt(libuuid_bytes, hash_page + value_at + 8, "<I", 2**32 - 1)})
    assert out.packages == []
    assert "more than the file holds" in out.warnings[0].message


def test_bdb_hash_page_with_too_many_entries(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: _corrupt(libuuid_bytes, 2 * 4096 + 20, "<H", 0xFFFF)})
    assert out.packages == []
    assert "do not fit" in out.warnings[0].message


def test_bdb_truncated(libuuid_bytes: bytes) -> None:
    out = timed_extract({BDB: libuuid_bytes[: 21 * 4096]})  # the last overflow page is missing
    assert out.packages == []
    assert "outside the file" in out.warnings[0].message


def test_ndb_bad_magic(mariner_bytes: bytes) -> None:
    data = ndb_db(sqlite_blobs(mariner_bytes)[:2])
    out = timed_extract({NDB: b"XXXX" + data[4:]})
    assert out.packages == []
    assert "bad magic" in out.warnings[0].message


def test_ndb_slot_past_the_end_and_overlapping_slots(mariner_bytes: bytes) -> None:
    data = ndb_db(sqlite_blobs(mariner_bytes)[:3])
    # Slot 2 holds package 1; slot 4 package 2; slot 6 package 3.
    block_1 = struct.unpack_from("<I", data, 2 * 16 + 8)[0]
    data = _corrupt(data, 4 * 16 + 8, "<I", 0xFFFFFF00)  # package 2 points past the end
    data = _corrupt(data, 6 * 16 + 8, "<I", block_1)  # package 3 overlaps package 1
    out = timed_extract({NDB: data})
    assert [p.name for p in out.packages] == ["mariner-release"]
    assert len(out.warnings) == 2


def test_ndb_duplicate_package_index(mariner_bytes: bytes) -> None:
    blobs = sqlite_blobs(mariner_bytes)[:2]
    data = ndb_db([(1, blobs[0][1]), (1, blobs[1][1])])
    out = timed_extract({NDB: data})
    assert [p.name for p in out.packages] == ["mariner-release"]
    assert "more than one slot" in out.warnings[0].message


def test_ndb_huge_slot_page_count(mariner_bytes: bytes) -> None:
    data = ndb_db(sqlite_blobs(mariner_bytes)[:1])
    out = timed_extract({NDB: _corrupt(data, 12, "<I", 2**31)})
    assert out.packages == []
    assert "slot page count" in out.warnings[0].message


def test_ndb_damaged_blob_tail(mariner_bytes: bytes) -> None:
    data = ndb_db(sqlite_blobs(mariner_bytes)[:1])
    out = timed_extract({NDB: data[:-4] + b"XXXX"})
    assert out.packages == []
    assert "tail" in out.warnings[0].message
