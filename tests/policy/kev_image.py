"""Real data for the KEV tests of gates and rule reports: Alpine's v3.10 secdb, CISA's KEV slice and the EPSS
file (tests/fixtures/kev, tests/fixtures/epss) imported into one database, and the Alpine 3.10 sample with
apache2 2.4.38-r0 added. None of the sample's own CVEs is in the KEV catalog; apache2's CVE-2019-0211 is (CISA
added it on 2021-11-03), and Alpine's v3.10/main.yaml lists it fixed in 2.4.39-r0, as tests/e2e/test_risk_scan.py
uses it."""

from __future__ import annotations

import dataclasses
import functools
import io
import tarfile
from pathlib import Path

from scanner.inventory.build import inventory
from scanner.model.types import Inventory, Kev, Package

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = ROOT / "samples" / "alpine-3.10-app.tar"
SECDB = FIXTURES / "osv" / "alpine-secdb" / "v3.10"
KEV_FILE = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
EPSS_FILE = FIXTURES / "epss" / "epss_scores-2025-08-25.csv"
BASE_LAYER = "0503825856099e6adb39c8297af09547f69684b7016b7f3680ed801aa310baaa.tar.gz"  # Alpine 3.10.1 itself

APACHE_KEV = Kev("2021-11-03", "2022-05-03", False)  # CVE-2019-0211 in the KEV slice
APACHE_ID = "ALPINE-CVE-2019-0211"
APACHE = Package("apache2", "2.4.38-r0", "Alpine:v3.10", "pkg:apk/alpine/apache2@2.4.38-r0", "apache2",
                 "2.4.38-r0", "x86_64", ("/lib/apk/db/installed",), "apk", "test@1", None)  # fmt: skip
# The same package as an entry of apk's installed database, for an image that holds it.
APK_ENTRY = "P:apache2\nV:2.4.38-r0\nA:x86_64\nT:Apache HTTP Server\no:apache2\n\n"


def import_kev_db(path: Path) -> Path:
    from scanner.vulndb.osv_import import import_sources

    import_sources(path, [str(SECDB), str(KEV_FILE), str(EPSS_FILE)])
    return path


@functools.cache
def sample_inventory() -> Inventory:
    return inventory(f"docker-archive:{SAMPLE}")[0]


def sample_with_apache() -> Inventory:
    inv = sample_inventory()
    return dataclasses.replace(inv, packages=(*inv.packages, APACHE))


def rootfs_with_apache(directory: Path) -> Path:
    """A `dir:` root file system: the sample's base layer's os-release and apk database, apache2 added."""
    wanted = ("etc/os-release", "etc/alpine-release", "lib/apk/db/installed")
    with tarfile.open(SAMPLE) as outer:
        member = outer.extractfile(BASE_LAYER)
        assert member is not None
        layer = member.read()
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        for name in wanted:
            data = tar.extractfile(name)
            assert data is not None, name
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.read())
    installed = directory / "lib/apk/db/installed"
    installed.write_text(installed.read_text() + APK_ENTRY)
    return directory
