"""Helpers of the vendor-feed tests: the real fixture files (Amazon ALAS updateinfo, Oracle ELSA OVAL, Wolfi and
Chainguard secdb) and serving any path from the local feed server."""

from __future__ import annotations

import email.utils
import hashlib
import time
from pathlib import Path

from tests.vulndb.feedtools import Feed, FeedServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ALAS = FIXTURES / "amazon-alas"
ELSA = FIXTURES / "oracle-elsa"
WOLFI = FIXTURES / "wolfi-secdb"

AL2_ONE = ALAS / "al2-updateinfo-1-item.xml.gz"  # ALAS2-2018-939 (kernel)
AL2_TWO = ALAS / "al2-updateinfo-2-items.xml.gz"  # ALAS2-2018-942 (qemu-kvm), ALAS2-2018-949 (java-1.8.0-openjdk)
AL2023 = ALAS / "al2023-updateinfo.xml.gz"  # ALAS2023-2023-001 (rsyslog)
REPOMD = ALAS / "repomd.xml"  # names repodata/updateinfo.xml.gz
ELSA_PER_ARCH = ELSA / "elsa-per-arch-ol7-ol8-ol10.xml"  # ELSA-2022-4803 (OL7), -2025-10073 (OL10), -2024-2961 (OL8)
ELSA_KSPLICE = ELSA / "elsa-2021-9151-ksplice-ol8.xml"  # ksplice packages only, with its tests/objects/states
ELSA_OL5_BZ2 = ELSA / "elsa-2018-1196-1-ol5.xml.bz2"  # bzip2, with its tests/objects/states
WOLFI_SECDB = WOLFI / "wolfi-security.json"
CHAINGUARD_SECDB = WOLFI / "chainguard-security.json"


def serve(server: FeedServer, path: str, body: bytes, mode: str = "ok") -> Feed:
    """Serve `body` at `path` (a new ETag and Last-Modified each time it changes)."""
    stamp = email.utils.formatdate(time.time() + len(server.feeds), usegmt=True)
    feed = Feed(body, f'"{hashlib.sha256(body).hexdigest()[:16]}"', stamp, mode)
    server.feeds[path] = feed
    return feed
