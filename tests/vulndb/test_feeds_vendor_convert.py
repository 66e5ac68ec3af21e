"""Vendor feeds converted to records, on the real files: Amazon Linux 2 and 2023 updateinfo (ALAS), Oracle's ELSA
OVAL (OL5 bzip2, an OL7/OL8/OL10 slice, a ksplice-only OL8 definition), Wolfi and Chainguard secdb; and hostile
XML (bombs, entities, garbage) ending in one line."""

from __future__ import annotations

import bz2
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb import xmlstream
from scanner.vulndb.alas import release_of
from scanner.vulndb.converted import Converted, check_record, normalise_evr, rpm_evr
from scanner.vulndb.readers import Document, Unreadable, convert_xml, read_file
from scanner.vulndb.secdb import apk_distribution, convert_rolling, parse_secdb
from scanner.vulndb.xmlstream import XmlFeedError
from tests.vulndb.feedtools import SECDB, secdb_json
from tests.vulndb.vendorfeeds import (
    AL2_ONE,
    AL2_TWO,
    AL2023,
    CHAINGUARD_SECDB,
    ELSA_KSPLICE,
    ELSA_OL5_BZ2,
    ELSA_PER_ARCH,
    REPOMD,
    WOLFI_SECDB,
)


def converted(path: Path) -> Converted:
    item = read_file(path, path.name)
    assert isinstance(item, Document), item
    assert isinstance(item.data, Converted)
    return item.data


def by_id(path: Path) -> dict[str, dict[str, Any]]:
    records = converted(path).records
    assert all(check_record(r) is None for r in records)
    return {r["id"]: r for r in records}


def fixes(record: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (a["package"]["ecosystem"], a["package"]["name"]): a["ranges"][0]["events"][1]["fixed"]
        for a in record["affected"]
        if a["ranges"][0]["events"][0] == {"introduced": "0"}
    }


@pytest.mark.parametrize(
    ("alas_id", "declared", "expected"),
    [
        ("ALAS2-2018-939", None, ("2", False)),
        ("ALAS2023-2023-001", "2", ("2023", False)),  # the id wins over the declared release
        ("ALAS2022-2021-001", None, ("2022", False)),
        ("ALAS-2018-1000", None, ("1", False)),
        ("ALAS2KERNEL-5.10-2022-001", None, ("2", True)),
        ("ALAS2GOLANG1.19-2023-001", "2", ("2", True)),
        ("RHSA-2020:1234", "2", (None, False)),
    ],
)
def test_alas_release_from_the_id(alas_id: str, declared: str | None, expected: tuple[str | None, bool]) -> None:
    assert release_of(alas_id, declared) == expected


def test_amazon_linux_2_updateinfo() -> None:
    records = by_id(AL2_TWO) | by_id(AL2_ONE)
    assert sorted(records) == ["ALAS2-2018-939", "ALAS2-2018-942", "ALAS2-2018-949"]
    java = records["ALAS2-2018-949"]
    assert java["modified"] == "2018-02-08T21:45:00Z" and java["published"] == "2018-02-07T17:47:00Z"
    assert java["database_specific"] == {"severity": "important"}
    assert (
        java["summary"]
        == "Amazon Linux 2 2017.12 - ALAS2-2018-949: important priority package update for java-1.8.0-openjdk"
    )
    assert len(java["related"]) == 15 and java["related"][:2] == ["CVE-2018-2677", "CVE-2018-2599"]
    assert "aliases" not in java  # errata fix CVEs other errata fix again: related, never merged on
    java_fixes = fixes(java)
    assert len(java_fixes) == 17  # x86_64 and noarch binaries, one entry each
    assert set(java_fixes.values()) == {"1:1.8.0.161-0.b14.amzn2"}
    assert java_fixes[("Amazon Linux:2", "java-1.8.0-openjdk-headless")] == "1:1.8.0.161-0.b14.amzn2"
    assert java["references"] == [{"type": "ADVISORY", "url": "https://alas.aws.amazon.com/AL2/ALAS-2018-949.html"}]
    # epoch 10 kept, epoch 0 left out
    assert fixes(records["ALAS2-2018-942"])[("Amazon Linux:2", "qemu-img")] == "10:1.5.3-141.amzn2.5.3"
    kernel = records["ALAS2-2018-939"]
    assert fixes(kernel)[("Amazon Linux:2", "kernel")] == "4.9.76-38.79.amzn2"
    assert kernel["database_specific"] == {"severity": "critical"} and kernel["related"] == [
        "CVE-2017-5754",
        "CVE-2017-5715",
    ]
    assert kernel["modified"] == "2018-01-16T01:28:00Z"


def test_amazon_linux_2023_updateinfo_arches_make_one_entry() -> None:
    (record,) = by_id(AL2023).values()
    assert record["id"] == "ALAS2023-2023-001"
    assert record["related"] == ["CVE-2014-3634", "CVE-2022-24903"]
    assert record["database_specific"] == {"severity": "Important"}
    assert (record["published"], record["modified"]) == ("2023-02-17T20:41:00Z", "2023-02-22T23:22:00Z")
    found = fixes(record)
    # 62 packages over x86_64, i686, aarch64 and noarch: 21 names
    assert len(found) == len(record["affected"]) == 21
    assert found[("Amazon Linux:2023", "rsyslog")] == "8.2204.0-3.amzn2023.0.2"
    assert {eco for eco, _ in found} == {"Amazon Linux:2023"}
    assert record["references"][0]["url"] == "https://alas.aws.amazon.com/AL2023/ALAS-2023-001.html"


def test_arches_that_disagree_keep_the_lowest_fix() -> None:
    raw = gzip.decompress(AL2023.read_bytes()).decode()
    # The aarch64 rsyslog respun one build later: the lowest fix stands (an x86_64 image at .0.2 is fixed).
    raw = raw.replace(
        'name="rsyslog" version="8.2204.0" release="3.amzn2023.0.2" epoch="0" arch="aarch64"',
        'name="rsyslog" version="8.2204.0" release="3.amzn2023.0.3" epoch="0" arch="aarch64"',
    )
    (record,) = convert_xml(io.BytesIO(raw.encode()), "edited").records
    assert fixes(record)[("Amazon Linux:2023", "rsyslog")] == "8.2204.0-3.amzn2023.0.2"


def test_oracle_per_arch_slice_releases_and_lowest_rebuild() -> None:
    records = by_id(ELSA_PER_ARCH)
    assert sorted(records) == ["ELSA-2022-4803", "ELSA-2024-2961", "ELSA-2025-10073"]
    rsyslog = records["ELSA-2022-4803"]
    # aarch64 says 8.24.0-57.0.4.el7_9.3, x86_64 8.24.0-57.0.1.el7_9.3: the lowest is kept
    assert fixes(rsyslog)[("Oracle Linux:7", "rsyslog")] == "8.24.0-57.0.1.el7_9.3"
    assert rsyslog["related"] == ["CVE-2022-24903"]
    assert rsyslog["database_specific"] == {"severity": "IMPORTANT"}
    assert rsyslog["published"] == rsyslog["modified"] == "2022-05-31T00:00:00Z"
    assert rsyslog["references"] == [{"type": "ADVISORY", "url": "https://linux.oracle.com/errata/ELSA-2022-4803.html"}]
    osbuild = fixes(records["ELSA-2024-2961"])
    # two rebuilds on each arch, 110-1.0.1.el8 and 110-1.el8: the lower one
    assert osbuild[("Oracle Linux:8", "osbuild")] == "110-1.el8"
    assert osbuild[("Oracle Linux:8", "osbuild-composer")] == "101-1.el8"
    assert {eco for eco, _ in osbuild} == {"Oracle Linux:8"}
    assert records["ELSA-2024-2961"]["database_specific"] == {"severity": "MODERATE"}
    firefox = records["ELSA-2025-10073"]
    assert fixes(firefox) == {("Oracle Linux:10", "firefox"): "128.12.0-1.0.1.el10_0"}
    assert firefox["related"] == ["CVE-2025-6429", "CVE-2025-6424", "CVE-2025-6430", "CVE-2025-6425"]


def test_oracle_ksplice_only_definition_is_skipped_by_its_tests() -> None:
    result = converted(ELSA_KSPLICE)
    assert result.records == []
    assert result.skipped == 1
    assert result.warnings == [f"ELSA-2021-9151 ({ELSA_KSPLICE.name}): ksplice packages only, not converted"]


def test_oracle_bzip2_document_resolved_through_its_tests() -> None:
    (record,) = by_id(ELSA_OL5_BZ2).values()
    assert record["id"] == "ELSA-2018-1196-1"
    found = fixes(record)
    assert len(found) == 18
    assert found[("Oracle Linux:5", "kernel")] == "2.6.18-419.0.0.0.10.el5"
    assert record["related"] == ["CVE-2017-5715"]


OVAL = """<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5">
<definitions><definition id="oval:com.oracle.elsa:def:20990001" version="1" class="patch"><metadata>
<title>ELSA-2099-0001: test</title><reference source="elsa" ref_id="ELSA-2099-0001" ref_url="u"/>
<advisory><severity>LOW</severity><issued date="2099-01-02"/></advisory></metadata>
<criteria operator="AND">
<criterion test_ref="oval:t:tst:1" comment="Oracle Linux 9 is installed"/>
<criteria operator="OR"><criterion test_ref="oval:t:tst:2" comment="{comment}"/></criteria>
</criteria></definition></definitions>
<tests>
<rpminfo_test {L} id="oval:t:tst:1" check="at least one">
<object object_ref="oval:t:obj:1"/><state state_ref="oval:t:ste:1"/></rpminfo_test>
<rpminfo_test {L} id="oval:t:tst:2" check="at least one">
<object object_ref="oval:t:obj:2"/><state state_ref="oval:t:ste:2"/></rpminfo_test>
</tests>
<objects>
<rpminfo_object {L} id="oval:t:obj:1">
<name>oraclelinux-release</name></rpminfo_object>
<rpminfo_object {L} id="oval:t:obj:2"><name>openssl-libs</name></rpminfo_object>
</objects>
<states>
<rpminfo_state {L} id="oval:t:ste:1">
<version operation="pattern match">^9</version></rpminfo_state>
<rpminfo_state {L} id="oval:t:ste:2">
<evr datatype="evr_string" operation="less than">1:3.0.7-25.0.1.el9_3</evr></rpminfo_state>
</states></oval_definitions>"""


def test_oval_tests_win_over_comments() -> None:
    # A comment that disagrees with the test it labels: OVAL evaluates the test, and so does the conversion.
    linux = 'xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux"'
    doc = OVAL.replace("{L}", linux).replace("{comment}", "openssl is earlier than 0:1.0.0-1.el9")
    (record,) = convert_xml(io.BytesIO(doc.encode()), "unit").records
    assert fixes(record) == {("Oracle Linux:9", "openssl-libs"): "1:3.0.7-25.0.1.el9_3"}
    assert record["modified"] == "2099-01-02T00:00:00Z"


def test_wolfi_secdb() -> None:
    data = json.loads(WOLFI_SECDB.read_text())
    assert apk_distribution(data) == "Wolfi"
    result = convert_rolling(data, "Wolfi", origin="security.json", modified="2024-01-02T03:04:05Z")
    records = {r["id"]: r for r in result.records}
    assert all(check_record(r) is None for r in records.values())
    assert result.skipped == 0
    binutils = records["WOLFI-CVE-2022-38533"]
    assert fixes(binutils) == {("Wolfi", "binutils"): "2.39-r2"}
    assert binutils["aliases"] == binutils["upstream"] == ["CVE-2022-38533"]
    assert binutils["modified"] == "2024-01-02T03:04:05Z"
    assert fixes(records["WOLFI-CVE-2022-37434"]) == {("Wolfi", "zlib"): "1.2.12-r3"}
    assert fixes(records["WOLFI-CVE-2023-39325"]) == {("Wolfi", "apko"): "0.10.0-r6"}
    # "0": a false-positive determination, never affected: no record (coreutils, flex, postgresql-15, apko)
    for vid in ["CVE-2016-2781", "CVE-2019-6293", "CVE-2017-8806", "CVE-2023-45283", "GHSA-jq35-85cj-fj4p"]:
        assert f"WOLFI-{vid}" not in records
    assert len(records) == 53  # the ids listed under a version other than "0"


def test_chainguard_secdb_and_alpine_unchanged() -> None:
    data = json.loads(CHAINGUARD_SECDB.read_text())
    assert apk_distribution(data) == "Chainguard"
    result = convert_rolling(data, "Chainguard", origin="security.json", modified="2024-01-02T03:04:05Z")
    assert sorted(r["id"] for r in result.records) == [
        "CHAINGUARD-CVE-2022-38126",
        "CHAINGUARD-CVE-2022-38128",
        "CHAINGUARD-CVE-2022-38533",
    ]
    assert {a["package"]["ecosystem"] for r in result.records for a in r["affected"]} == {"Chainguard"}
    alpine = secdb_json(SECDB / "v3.11" / "main.yaml")
    assert apk_distribution(alpine) is None
    assert parse_secdb(alpine, origin="main.yaml", parent_name="v3.11", stem="main").release == "v3.11"
    # Told by content, not the repository name: an Alpine-hosted document named "os" stays Alpine's.
    assert apk_distribution({"urlprefix": "https://dl-cdn.alpinelinux.org/alpine", "reponame": "os"}) is None
    assert apk_distribution({"reponame": "os", "packages": []}) == "Wolfi"


def test_evr_forms() -> None:
    assert rpm_evr("0", "4.9.76", "38.79.amzn2") == "4.9.76-38.79.amzn2"
    assert rpm_evr(None, "1.0", "1") == "1.0-1"
    assert rpm_evr("10", "1.5.3", "141.amzn2.5.3") == "10:1.5.3-141.amzn2.5.3"
    assert normalise_evr("0:110-1.el8") == "110-1.el8"
    assert normalise_evr("2:1.1.1g-15.el8_3") == "2:1.1.1g-15.el8_3"


def test_check_record_bounds() -> None:
    (record,) = by_id(AL2023).values()
    assert check_record({**record, "affected": []}) is not None
    assert check_record({**record, "modified": "yesterday"}) is not None
    assert check_record({**record, "id": "x" * 200}) is not None
    bad = json.loads(json.dumps(record))
    bad["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1.0 -1"
    assert "bad version" in str(check_record(bad))


def unreadable(tmp_path: Path, name: str, body: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(body)
    item = read_file(path, name)
    assert isinstance(item, Unreadable), item
    assert "\n" not in item.reason
    return item.reason


def test_gzip_bomb_stops_at_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlstream, "MAX_XML_BYTES", 1 << 20)
    bomb = gzip.compress(b"<updates>" + b" " * (8 << 20) + b"</updates>")
    assert len(bomb) < 64 << 10
    assert unreadable(tmp_path, "updateinfo.xml.gz", bomb) == "decompresses to more than 1048576 bytes"


def test_bzip2_and_plain_documents_over_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlstream, "MAX_XML_BYTES", 10_000)
    assert unreadable(tmp_path, "a.xml.bz2", ELSA_OL5_BZ2.read_bytes()) == "decompresses to more than 10000 bytes"
    assert unreadable(tmp_path, "b.xml", ELSA_PER_ARCH.read_bytes()) == "is more than 10000 bytes"


def test_hostile_and_broken_xml_is_one_line(tmp_path: Path) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE updates [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<updates><update><id>&b;</id></update></updates>"
    )
    assert unreadable(tmp_path, "laughs.xml", laughs) == "forbidden XML construct (DTDForbidden)"
    external = b'<?xml version="1.0"?><!DOCTYPE u SYSTEM "http://127.0.0.1:9/x.dtd"><updates/>'
    assert unreadable(tmp_path, "external.xml", external) == "forbidden XML construct (DTDForbidden)"
    assert unreadable(tmp_path, "cut.xml.gz", AL2023.read_bytes()[:700]).startswith("corrupt gzip data")
    assert unreadable(tmp_path, "cut.xml.bz2", ELSA_OL5_BZ2.read_bytes()[:900]).startswith("corrupt bzip2 data")
    assert unreadable(tmp_path, "junk.xml", b"<updates><update>").startswith("not well-formed XML")
    assert (
        unreadable(tmp_path, "repomd.xml", REPOMD.read_bytes())
        == "<repomd> is neither a yum updateinfo nor an OVAL document"
    )
    assert unreadable(tmp_path, "empty.xml.bz2", bz2.compress(b"")).startswith("not well-formed XML (no element")


def test_xml_feed_error_is_a_value_error() -> None:
    assert issubclass(XmlFeedError, ValueError)
