"""`GET /api/rules` and `GET /api/rules/{name}` give each rule's status (active, expired, stale) from the stored
findings, through the app index on real adapters."""

from __future__ import annotations

import pytest

from tests.azure.manage_support import DIGEST, FILE_RULE, REG, REPO, call, drain, validate

pytestmark = pytest.mark.usefixtures("manage_env")


def test_listing_gives_status() -> None:
    assert call("import_notifications", {"registry": REG, "repository": REPO, "digest": DIGEST})[0] == 202
    assert drain().processed == 1
    musl = {"name": "accept-musl", "justification": "reviewed", "match": {"packages": ["musl"]}}
    lapsed = {"name": "lapsed", "justification": "was reviewed", "expires": "2001-01-01", "match": musl["match"]}
    assert call("create_rule", musl)[0] == 201 and call("create_rule", lapsed)[0] == 201
    status, listed = call("list_rules")
    assert status == 200
    validate("RuleList", listed)
    assert [(r["name"], r["status"], r["warnings"]) for r in listed["value"]] == [
        (FILE_RULE, "stale", []),  # CVE-0000-00000: no stored image has it
        ("accept-musl", "active", []),
        ("lapsed", "expired", []),
    ]
    assert (listed["imagesRead"], listed["staleChecked"]) == (1, True)
    status, one = call("get_rule", route={"name": FILE_RULE})
    assert (status, one["status"]) == (200, "stale")
    validate("Rule", one)
