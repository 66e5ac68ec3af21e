"""Packages matched once per rescan: the memo gives the same findings as matching each image afresh.

The Alpine sample image (samples/) against a database imported from the real Alpine secdb advisories in
tests/fixtures, and a second image holding the same packages (as a rebuild on the same base does).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scanner.assess.assessment import assess
from scanner.assess.findings import MatchMemo, category_of, find_vulnerabilities
from scanner.model.codec import InventoryDecoder, inventory_to_dict
from scanner.model.types import BaseImage, Inventory, Package
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

ORDER = ("vendor", "cvss")


def test_a_memo_gives_the_same_findings_and_matches_each_package_once(
    alpine310_sample: Inventory, alpine310_db: Path
) -> None:
    with SqliteVulnDatabase.open(alpine310_db) as db:
        fresh = find_vulnerabilities(alpine310_sample.packages, db, ORDER)
        assert fresh, "the alpine310_sample has findings against Alpine 3.10's advisories"
        memo = MatchMemo(db, ORDER)
        first = find_vulnerabilities(alpine310_sample.packages, db, ORDER, memo)
        assert first == fresh and memo.hits == 0
        again = find_vulnerabilities(alpine310_sample.packages, db, ORDER, memo)
        assert again == fresh
        matched = [p for p in alpine310_sample.packages if p.ecosystem and p.version and not _skipped(p)]
        assert memo.hits == len(matched)  # every package the second time, with or without findings
        # A package that differs in anything (here its version) is matched afresh, not served from the memo.
        changed = [replace(p, version=p.version + "-r99") for p in alpine310_sample.packages]
        hits = memo.hits
        other = find_vulnerabilities(changed, db, ORDER, memo)
        assert memo.hits == hits
        assert other == find_vulnerabilities(changed, db, ORDER)


def _skipped(package: Package) -> bool:
    return category_of(package) == "language" and package.os_owned


def test_a_memo_of_another_database_or_order_is_not_used(alpine310_sample: Inventory, alpine310_db: Path) -> None:
    with SqliteVulnDatabase.open(alpine310_db) as db, SqliteVulnDatabase.open(alpine310_db) as reopened:
        memo = MatchMemo(db, ORDER)
        find_vulnerabilities(alpine310_sample.packages, db, ORDER, memo)
        find_vulnerabilities(alpine310_sample.packages, reopened, ORDER, memo)
        find_vulnerabilities(alpine310_sample.packages, db, ("cvss", "vendor"), memo)
        assert memo.hits == 0


def test_a_full_memo_starts_again(alpine310_sample: Inventory, alpine310_db: Path) -> None:
    with SqliteVulnDatabase.open(alpine310_db) as db:
        memo = MatchMemo(db, ORDER, max_packages=3)
        found = find_vulnerabilities(alpine310_sample.packages, db, ORDER, memo)
        assert 0 < len(memo.findings) <= 3
        assert find_vulnerabilities(alpine310_sample.packages, db, ORDER, memo) == found


def test_images_sharing_one_decoded_package_tuple_share_their_assessment(
    alpine310_sample: Inventory, alpine310_db: Path
) -> None:
    """Two stored copies of the image under other digests decode to one shared tuple of packages; the second
    is assessed from what the first left in the memo, equal to assessing it afresh; another base is not."""
    document = inventory_to_dict(alpine310_sample)
    decode = InventoryDecoder()
    first, second = (decode({**document, "image": {**document["image"], "digest": f"sha256:{n * 64}"}}) for n in "ab")
    assert first.packages is second.packages and first.packages == alpine310_sample.packages
    assert first == replace(alpine310_sample, image=replace(alpine310_sample.image, digest="sha256:" + "a" * 64))
    rebased = replace(second, image=replace(second.image, base=BaseImage("alpine:3.10", "sha256:" + "c" * 64, 1)))
    with SqliteVulnDatabase.open(alpine310_db) as db:
        memo = MatchMemo(db, ORDER)
        assess(first, db, severity_order=ORDER, memo=memo)
        hits = memo.hits
        shared = assess(second, db, severity_order=ORDER, memo=memo)
        assert memo.hits == hits  # not even looked up per package: the whole image came from the memo
        assert shared == assess(second, db, severity_order=ORDER)
        assert shared.findings and shared.coverage
        assert assess(rebased, db, severity_order=ORDER, memo=memo) == assess(rebased, db, severity_order=ORDER)
        assert memo.hits > hits  # another base: matched again (from the package memo), origin set afresh
    # A list of other packages is decoded afresh, never mistaken for a shared one.
    other = decode({**document, "packages": document["packages"][:1]})
    assert other.packages is not first.packages and len(other.packages) == 1
