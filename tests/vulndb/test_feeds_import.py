"""`db import`: every input form, exact counts on the real fixture records, and the replacement rules."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.errors import FeedError
from scanner.vulndb.osv_import import WARNING_CAP, import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.vulndb.feedtools import (
    ALMA,
    GOLANG,
    LINTER,
    PYPA,
    SECDB,
    FeedServer,
    load_record,
    records_in,
    secdb_json,
    zip_of,
)


def ids(records: list[Any]) -> list[str]:
    return sorted(r["id"] for r in records)


def db_rows(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, json FROM records ORDER BY id").fetchall()
    finally:
        conn.close()


def write_json(path: Path, record: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


# --- input forms ---------------------------------------------------------------------------------------------


def test_directory_of_json_go(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [str(GOLANG)])
    assert (result.kind, result.records, result.skipped, result.written) == ("directory", 9, 0, 9)
    with SqliteVulnDatabase.open(db_path) as db:
        assert ids(db.lookup("Go", "golang.org/x/net")) == [
            "GO-2026-5028",
            "GO-2026-5029",
            "GO-2026-5030",
            "GO-2026-5942",
        ]
        # GO-2022-0617 is withdrawn: stored, but neither looked up nor returned by id.
        assert db.lookup("Go", "k8s.io/kubernetes") == []
        assert db.by_id("GO-2022-0617") == []
        assert db.describe()["withdrawn_records"] == 1


def test_directory_of_yaml_pypa_tree(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [str(PYPA)])
    # 16 YAML files (.id-allocator is no advisory file): PYSEC-2021-371 fails the schema (a GIT `fixed` that is
    # not a full commit hash), the other 15 are stored, one of them withdrawn (PYSEC-2023-73).
    assert (result.records, result.skipped) == (15, 1)
    assert len(result.warnings) == 1
    assert "PYSEC-2021-371" in result.warnings[0]
    assert "binderhub/PYSEC-2021-371.yaml" in result.warnings[0]
    with SqliteVulnDatabase.open(db_path) as db:
        jinja = db.lookup("PyPI", "Jinja2")
        assert ids(jinja) == ["PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]
        assert db.lookup("PyPI", "jinja2") == jinja
        assert ids(db.lookup("PyPI", "JW_Util")) == ["PYSEC-2020-341"]  # `jw.util` under PEP 503
        assert ids(db.lookup("PyPI", "redis")) == ["PYSEC-2023-45", "PYSEC-2023-46"]  # not the withdrawn one
        record = db.by_id("PYSEC-2014-13")[0]
        unquoted = db.by_id("PYSEC-2023-192")[0]
    # YAML timestamps stay the strings the advisory wrote, quoted or not (a datetime would fail the schema).
    assert record["modified"] == "2021-07-05T00:01:25.632991Z"
    assert record["published"] == "2014-10-15T14:55:00Z"
    assert unquoted["modified"] == "2023-10-10T14:28:19.389317Z"
    assert unquoted["published"] == "2023-10-04T17:15:00Z"


def test_almalinux_records_with_colon_ids(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [str(ALMA)])
    assert (result.records, result.skipped) == (6, 0)
    with SqliteVulnDatabase.open(db_path) as db:
        assert ids(db.lookup("AlmaLinux:9", "openssl-libs")) == [
            "ALSA-2022:6224",
            "ALSA-2022:7288",
            "ALSA-2026:22312",
            "ALSA-2026:25239",
        ]
        assert ids(db.lookup("AlmaLinux:9", "libcurl")) == ["ALSA-2022:6157", "ALSA-2026:55439"]


def test_zip_in_osv_dev_layout(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    archive.write_bytes(zip_of(records_in(GOLANG) + records_in(ALMA)))
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [str(archive)])
    assert (result.kind, result.records, result.skipped) == ("zip", 15, 0)
    with SqliteVulnDatabase.open(db_path) as db:
        assert len(db.lookup("Go", "stdlib")) == 5
        assert len(db.lookup("AlmaLinux:9", "openssl")) == 4


def test_url_to_a_zip(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.publish("PyPI", zip_of(records_in(PYPA)))
    db_path = tmp_path / "db" / "v.sqlite"
    [result] = import_sources(db_path, [f"{feed_server.url}/PyPI/all.zip"])
    # Zipped as JSON the invalid record is still invalid; the withdrawn one is still stored.
    assert (result.kind, result.records, result.skipped) == ("url", 15, 1)
    assert not [p.name for p in db_path.parent.iterdir() if p.name.startswith(".acrguard-download")]
    with SqliteVulnDatabase.open(db_path) as db:
        assert len(db.lookup("PyPI", "requests")) == 5


def test_url_to_a_secdb_json(tmp_path: Path, feed_server: FeedServer) -> None:
    body = json.dumps(secdb_json(SECDB / "v3.11" / "main.yaml")).encode()
    feed_server.publish("v3.11", body)  # served at /v3.11/all.zip: the content decides, not the name
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [f"{feed_server.url}/v3.11/all.zip"])
    assert (result.records, result.skipped) == (1109, 14)


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="no such file"):
        import_sources(tmp_path / "v.sqlite", [str(tmp_path / "nowhere")])


# --- Alpine secdb ----------------------------------------------------------------------------------------------


def test_secdb_yaml_file(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [str(SECDB / "v3.11" / "main.yaml")])
    # 1109 distinct CVEs with a fix; 14 secfixes lines name no CVE (Xen XSA-only lines, "CVE-????-?????").
    assert (result.kind, result.records, result.skipped) == ("file", 1109, 14)
    assert any("XSA-207" in w for w in result.warnings)
    with SqliteVulnDatabase.open(db_path) as db:
        [record] = db.by_id("CVE-2019-1551")
        assert record["id"] == "ALPINE-CVE-2019-1551"
        assert record["aliases"] == ["CVE-2019-1551"]
        assert record["affected"] == [
            {
                "package": {
                    "ecosystem": "Alpine:v3.11",
                    "name": "openssl",
                    "purl": "pkg:apk/alpine/openssl?arch=source",
                },
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1d-r3"}]}],
            }
        ]
        assert ids(db.lookup("Alpine:v3.11", "openssl")) == [
            "ALPINE-CVE-2018-0734",
            "ALPINE-CVE-2018-0735",
            "ALPINE-CVE-2019-1543",
            "ALPINE-CVE-2019-1547",
            "ALPINE-CVE-2019-1549",
            "ALPINE-CVE-2019-1551",
            "ALPINE-CVE-2019-1563",
        ]


def test_secdb_one_record_per_cve_across_releases_and_imports(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(SECDB / "v3.10" / "main.yaml")])
    import_sources(db_path, [str(SECDB / "v3.11" / "main.yaml")])  # another day, another source
    with SqliteVulnDatabase.open(db_path) as db:
        [record] = db.by_id("ALPINE-CVE-2019-1547")
    fixes = [(a["package"]["ecosystem"], a["package"]["name"], a["ranges"][0]["events"]) for a in record["affected"]]
    assert fixes == [
        ("Alpine:v3.10", "openssl", [{"introduced": "0"}, {"fixed": "1.1.1d-r0"}]),
        ("Alpine:v3.11", "openssl", [{"introduced": "0"}, {"fixed": "1.1.1d-r1"}]),
    ]


def test_secdb_directory_counts(tmp_path: Path) -> None:
    [result] = import_sources(tmp_path / "v.sqlite", [str(SECDB)])
    # v3.8 main, v3.10 main+community, v3.11 main+community: 2029 distinct CVEs, 53 lines without a CVE id.
    assert (result.records, result.skipped) == (2029, 53)


def test_secdb_fix_version_zero_means_not_affected(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(SECDB / "v3.8" / "main.yaml")])
    with SqliteVulnDatabase.open(db_path) as db:
        # `db` lists CVE-2016-0682 & co under "0": Oracle Berkeley DB issues that never applied to Alpine's db.
        for cve in ("CVE-2016-0682", "CVE-2016-0689", "CVE-2016-0692", "CVE-2016-0694", "CVE-2016-3418"):
            assert db.by_id(cve) == []
        assert db.lookup("Alpine:v3.8", "db") == []


def test_secdb_json_in_the_published_shape(tmp_path: Path) -> None:
    # secdb.alpinelinux.org layout: v3.11/main.json, v3.11/community.json.
    for repo in ("main", "community"):
        write_json(tmp_path / "secdb" / "v3.11" / f"{repo}.json", secdb_json(SECDB / "v3.11" / f"{repo}.yaml"))
    from_json, from_yaml = tmp_path / "json.sqlite", tmp_path / "yaml.sqlite"
    [json_result] = import_sources(from_json, [str(tmp_path / "secdb")])
    import_sources(from_yaml, [str(SECDB / "v3.11" / "main.yaml"), str(SECDB / "v3.11" / "community.yaml")])
    assert (json_result.records, json_result.skipped) == (1902, 14)  # main and community share 36 CVEs

    def affected(path: Path) -> dict[str, Any]:
        return {rid: json.loads(text)["affected"] for rid, text in db_rows(path)}

    assert affected(from_json) == affected(from_yaml)


def test_secdb_release_from_directory_when_the_document_has_none(tmp_path: Path) -> None:
    doc = secdb_json(SECDB / "v3.11" / "main.yaml")
    del doc["distroversion"], doc["reponame"]
    write_json(tmp_path / "v3.11" / "main.json", doc)
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(tmp_path / "v3.11")])
    with SqliteVulnDatabase.open(db_path) as db:
        [record] = db.by_id("CVE-2019-1551")
    assert record["affected"][0]["package"]["ecosystem"] == "Alpine:v3.11"


def test_secdb_reimport_replaces_the_rows_of_its_release(tmp_path: Path) -> None:
    doc = secdb_json(SECDB / "v3.11" / "main.yaml")
    write_json(tmp_path / "a" / "main.json", doc)
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(tmp_path / "a" / "main.json")])
    # A newer main.json of v3.11 without openssl: its CVEs vanish from v3.11 (and, alone there, entirely).
    doc["packages"] = [p for p in doc["packages"] if p["pkg"]["name"] != "openssl"]
    write_json(tmp_path / "b" / "main.json", doc)
    import_sources(db_path, [str(tmp_path / "b" / "main.json")])
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.lookup("Alpine:v3.11", "openssl") == []
        assert db.by_id("CVE-2019-1551") == []
        assert len(db.lookup("Alpine:v3.11", "busybox")) == 5


# --- replacement rules -------------------------------------------------------------------------------------------


def test_reimport_is_idempotent(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(PYPA)])
    before = db_rows(db_path)
    [second] = import_sources(db_path, [str(PYPA)])
    assert db_rows(db_path) == before
    assert (second.records, second.skipped, second.written, second.kept, second.removed) == (15, 1, 15, 0, 0)
    with SqliteVulnDatabase.open(db_path) as db:
        [source] = db.describe()["sources"]
    assert (source["record_count"], source["skipped_count"]) == (15, 1)


def test_newer_or_equal_modified_replaces_older_does_not(tmp_path: Path) -> None:
    record = load_record(PYPA / "vulns" / "requests" / "PYSEC-2014-13.yaml")
    db_path = tmp_path / "v.sqlite"
    source = tmp_path / "src"
    write_json(source / "r.json", record)
    import_sources(db_path, [str(source)])

    newer = dict(record, modified="2021-07-05T00:01:25.7Z", summary="newer copy")  # .7 > .632991: later
    write_json(source / "r.json", newer)
    [result] = import_sources(db_path, [str(source)])
    assert (result.written, result.kept) == (1, 0)

    older = dict(record, modified="2021-07-05T00:01:25Z", summary="older copy")  # no fraction: earlier
    write_json(tmp_path / "other" / "r.json", older)
    [result] = import_sources(db_path, [str(tmp_path / "other")])
    assert (result.written, result.kept) == (0, 1)
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.by_id("PYSEC-2014-13")[0]["summary"] == "newer copy"


def test_withdrawn_on_reimport_disappears_from_lookup(tmp_path: Path) -> None:
    record = load_record(PYPA / "vulns" / "jinja2" / "PYSEC-2014-8.yaml")
    db_path = tmp_path / "v.sqlite"
    write_json(tmp_path / "src" / "r.json", record)
    import_sources(db_path, [str(tmp_path / "src")])
    write_json(
        tmp_path / "src" / "r.json",
        dict(record, modified="2024-01-01T00:00:00Z", withdrawn="2024-01-01T00:00:00Z"),
    )
    import_sources(db_path, [str(tmp_path / "src")])
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.lookup("PyPI", "jinja2") == []
        assert db.by_id("CVE-2014-1402") == []


def test_records_a_source_no_longer_lists_are_removed(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for path in (GOLANG / "osv").glob("GO-2026-50*.json"):
        write_json(source / path.name, load_record(path))
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(source)])
    (source / "GO-2026-5028.json").unlink()
    [result] = import_sources(db_path, [str(source)])
    assert (result.records, result.removed) == (2, 1)
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.by_id("GO-2026-5028") == []


# --- invalid input ---------------------------------------------------------------------------------------------


def test_schema_invalid_records_are_skipped_and_named(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    [result] = import_sources(db_path, [str(LINTER)])
    # Of the osv-linter negative samples only `nointroduced` breaks the schema (its `events` lack the
    # `introduced` the schema's `contains` requires). `nopackage` (a package name PyPI does not know, "Gradi0")
    # and `nondistinct` (repeated ranges) break linter rules that need a registry or judgement: schema-valid.
    assert (result.records, result.skipped) == (4, 1)
    [warning] = result.warnings
    assert "nointroduced-CVE-2023-41045.json" in warning and "CVE-2023-41045" in warning
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.describe()["total_records"] == 3  # the nopackage sample reuses the id of the GHSA sample
        # Same id, same `modified`, imported after it (name order): equal replaces.
        [gradio] = db.by_id("GHSA-9v2f-6vcg-3hgv")
        assert gradio["affected"][0]["package"]["name"] == "Gradi0"
        assert ids(db.lookup("PyPI", "gradi0")) == ["GHSA-9v2f-6vcg-3hgv"]
        assert db.lookup("PyPI", "gradio") == []


def test_unparsable_files_and_non_records_are_skipped(tmp_path: Path) -> None:
    good = load_record(GOLANG / "osv" / "GO-2026-5028.json")
    write_json(tmp_path / "src" / "good.json", good)
    (tmp_path / "src" / "broken.json").write_text('{"id": "GO-2026-1",')
    (tmp_path / "src" / "broken.yaml").write_text("id: [unclosed")
    (tmp_path / "src" / "scalar.json").write_text("42")
    write_json(tmp_path / "src" / "nested" / "deeper" / "list.json", [good, {"id": "GO-2026-2"}])  # type: ignore[arg-type]
    [result] = import_sources(tmp_path / "v.sqlite", [str(tmp_path / "src")])
    # good.json and list.json[0] (the same record twice), list.json[1] lacks `modified`.
    assert (result.records, result.skipped) == (2, 4)
    assert any("list.json[1]" in w for w in result.warnings)


def test_warnings_are_capped_but_all_skips_counted(tmp_path: Path) -> None:
    for n in range(WARNING_CAP + 10):
        write_json(tmp_path / "src" / f"{n}.json", {"id": f"GO-2026-{n}"})
    [result] = import_sources(tmp_path / "v.sqlite", [str(tmp_path / "src")])
    assert (result.skipped, len(result.warnings), result.more_warnings) == (WARNING_CAP + 10, WARNING_CAP, 10)


def test_a_corrupt_zip_aborts_its_source_only(tmp_path: Path) -> None:
    body = zip_of(records_in(GOLANG))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(body[:-200])  # the central directory is gone
    db_path = tmp_path / "v.sqlite"
    with pytest.raises(FeedError, match="zip"):
        import_sources(db_path, [str(ALMA), str(bad)])
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.describe()["total_records"] == 6  # ALMA committed before the bad zip was read


def test_a_zip_member_failing_its_crc_rolls_the_source_back(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    good.write_bytes(zip_of(records_in(GOLANG)))
    with zipfile.ZipFile(good) as archive:
        info = archive.infolist()[3]
    raw = bytearray(good.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 5] ^= 0xFF  # damage compressed data of the fourth member
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    db_path = tmp_path / "v.sqlite"
    with pytest.raises(FeedError, match="corrupt zip member"):
        import_sources(db_path, [str(bad)])
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.describe()["total_records"] == 0  # the three members before it were rolled back
