"""The bundled snapshot's Ubuntu and Debian records: imported whole, counted per release as the files
count them, documented in the README, and (Debian) derived faithfully from Debian's changelogs."""

from __future__ import annotations

import re
from pathlib import Path

from scanner.vulndb.snapshot import PARTS, default_db_path
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.snapshot_oracle import DEBIAN, SNAPSHOT, UBUNTU, counts, load
from tests.vulndb.debian_changelog import records, render

ROOT = Path(__file__).resolve().parents[2]
CHANGELOGS = ROOT / "tests" / "fixtures" / "debian-changelogs"


def test_both_directories_are_snapshot_sources_imported_whole() -> None:
    assert {"ubuntu-osv", "debian-osv"} <= {part.directory for part in PARTS}
    with SqliteVulnDatabase.open(default_db_path()) as db:
        sources = {s["name"]: s for s in db.describe()["sources"]}
    for directory in (UBUNTU, DEBIAN):
        source = sources[f"snapshot:{directory.name}"]
        assert source["record_count"] == len(list(directory.glob("*.json")))
        assert source["skipped_count"] == 0


def test_coverage_per_release_equals_the_files_count() -> None:
    expected = counts(UBUNTU) + counts(DEBIAN)
    # The releases the README promises, with the numbers the files give (a change of files shows here).
    assert {r: expected[r] for r in ("Ubuntu:22.04", "Ubuntu:24.04", "Debian:12")} == {
        "Ubuntu:22.04": 13,
        "Ubuntu:24.04": 12,
        "Debian:12": 91,
    }
    with SqliteVulnDatabase.open(default_db_path()) as db:
        got = {release: db.coverage(release).advisories for release in expected}
        assert got == dict(expected)
        # Releases with no record: Debian 11, Ubuntu's interim 23.10.
        assert db.coverage("Debian:11").advisories == 0
        assert db.coverage("Ubuntu:23.10").advisories == 0


def test_ubuntu_pro_entries_apply_to_no_plain_image() -> None:
    # UBUNTU-CVE-2024-6119 also names Ubuntu:Pro:FIPS-updates:22.04:LTS openssl; only the plain entry counts.
    with SqliteVulnDatabase.open(default_db_path()) as db:
        hits = db.lookup("Ubuntu:22.04:LTS", "openssl")
    assert [r["id"] for r in hits] == ["UBUNTU-CVE-2024-6119"]


def test_readme_states_the_counts_the_files_give() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### What the bundled snapshot covers", 1)[1].split("\n## ", 1)[0]
    table = dict(re.findall(r"^\| (Ubuntu [\d.]+|Debian \d+) \| (\d+) \|", section, re.M))
    expected = counts(UBUNTU) + counts(DEBIAN)
    assert table == {name.replace(":", " "): str(n) for name, n in expected.items()}
    assert f"{len(load(UBUNTU))} Ubuntu records" in section
    assert f"{len(load(DEBIAN))} Debian 12 records" in section


def test_debian_records_are_derived_faithfully_from_the_changelogs() -> None:
    derived = records(CHANGELOGS)
    shipped = {p.stem: p.read_text(encoding="utf-8") for p in DEBIAN.glob("*.json")}
    assert shipped.keys() == derived.keys()
    for record_id, record in derived.items():
        assert shipped[record_id] == render(record), record_id
    # Spot checks against the changelog text itself.
    glibc = (CHANGELOGS / "glibc.changelog").read_text(encoding="utf-8")
    assert "glibc (2.36-9+deb12u3) bookworm-security;" in glibc and "CVE-2023-4911" in glibc
    events = derived["DEBIAN-CVE-2023-4911"]["affected"][0]["ranges"][0]["events"]
    assert events == [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]
    # A later entry's "regression following CVE-2024-33601" is not the fix: the nscd fix of deb12u7 is.
    events = derived["DEBIAN-CVE-2024-33601"]["affected"][0]["ranges"][0]["events"]
    assert events[-1] == {"fixed": "2.36-9+deb12u7"}


def test_every_new_file_is_listed_in_sources_md() -> None:
    sources = (SNAPSHOT / "SOURCES.md").read_text(encoding="utf-8")
    for path in sorted(UBUNTU.glob("*.json")):
        row = next((line for line in sources.splitlines() if f"`{path.name}`" in line), "")
        assert row, path.name
        # The row gives the upstream length in characters, which the copy must have (a copy, not an edit).
        assert f"| {len(path.read_text(encoding='utf-8'))} |" in row, path.name
    fixtures = (CHANGELOGS / "SOURCES.md").read_text(encoding="utf-8")
    for path in sorted(CHANGELOGS.glob("*.changelog")):
        assert f"`{path.name}`" in fixtures, path.name
