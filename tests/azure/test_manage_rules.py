"""Disable rules over HTTP, through the app index on real adapters: validation by the rule files' own
validator, names unique across files and the store, and the re-assessment that makes a created or deleted
rule show at once in the sub-assessments, the image lookups and the findings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scanner.service.config import clients
from scanner.store import open_store
from tests.azure.manage_support import (
    DIGEST,
    FILE_RULE,
    OTHER,
    REG,
    REPO,
    call,
    drain,
    sub_assessments,
    validate,
)
from tests.store.pg_server import PgServer, running_postgres

pytestmark = pytest.mark.usefixtures("manage_env")

ACCEPT_ALL = {
    "name": "accept-all-alpine",
    "justification": "base image replaced next sprint; SEC-42",
    "expires": "2099-12-31",
    "match": {"severity_at_most": "Unknown", "os": {"id": "alpine"}},
}


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The findings store the app is configured with: the temp SQLite file, or a real PostgreSQL."""
    request.getfixturevalue("manage_env")
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg")
        monkeypatch.setenv("ACRGUARD_STORE", server.fresh_url())
        clients.close()
    yield str(request.param)
    # An open PostgreSQL connection would hold up the server's (smart) shutdown.
    clients.close()


def scanned(digest: str = DIGEST) -> None:
    status, body = call("import_notifications", {"registry": REG, "repository": REPO, "digest": digest})
    assert (status, body["queued"]) == (202, 1), body
    assert drain().processed == 1


def image(digest: str = DIGEST) -> dict[str, Any]:
    status, body = call("get_image", route={"registry": REG, "digest": digest})
    assert status == 200, body
    return body


def test_created_rule_flips_unhealthy_to_healthy_and_deleting_flips_back(store_kind: str) -> None:
    scanned()
    before = sub_assessments()
    assert len(before) > 1 and {r["properties"]["status"]["code"] for r in before} == {"Unhealthy"}
    assert image()["health"] == "Unhealthy"

    status, created = call("create_rule", ACCEPT_ALL)
    assert status == 201, created
    validate("RuleChange", created)
    assert created["reassessed"] == 1 and created["failed"] == 0
    assert created["rule"]["origin"] == "api" and created["rule"]["name"] == "accept-all-alpine"

    after = sub_assessments()
    assert [r["properties"]["status"]["code"] for r in after] == ["Healthy"]
    assert image()["health"] == "Healthy"
    assert call("list_images", params={"status": "Healthy"})[1]["value"][0]["digest"] == DIGEST
    route = {"registry": REG, "digest": DIGEST}
    assert call("image_findings", route=route)[1]["value"] == []
    disabled = call("image_findings", route=route, params={"include_disabled": "true"})[1]["value"]
    assert len(disabled) == len(before)  # still queryable
    assert {(f["disabled"], f["disabled_by"]) for f in disabled} == {(True, "accept-all-alpine")}

    status, deleted = call("delete_rule", route={"name": "ACCEPT-ALL-alpine"})
    assert (status, deleted["reassessed"]) == (200, 1), deleted
    validate("RuleChange", deleted)
    again = sub_assessments()
    assert {r["properties"]["status"]["code"] for r in again} == {"Unhealthy"}
    assert sorted(r["name"] for r in again) == sorted(r["name"] for r in before)
    assert image()["health"] == "Unhealthy"


def test_rule_matching_no_finding_reassesses_nothing() -> None:
    scanned()
    rule = {"name": "other-cve", "justification": "x", "match": {"ids": ["CVE-1999-0001"]}}
    status, created = call("create_rule", rule)
    assert (status, created["reassessed"]) == (201, 0)
    assert image()["health"] == "Unhealthy"
    # An expired rule disables nothing either, so nothing is re-assessed for it.
    expired = {**ACCEPT_ALL, "name": "expired", "expires": "2001-01-01"}
    assert call("create_rule", expired)[1]["reassessed"] == 0
    assert image()["health"] == "Unhealthy"


def test_rule_stored_by_another_instance_applies_to_the_next_scan(store_kind: str) -> None:
    clients.policy()  # this worker's policy is loaded before the rule exists
    with open_store(os.environ["ACRGUARD_STORE"]) as other_instance:
        assert other_instance.create_rule(str(ACCEPT_ALL["name"]), ACCEPT_ALL, datetime.now(UTC))
    scanned(OTHER)
    assert image(OTHER)["health"] == "Healthy"


def test_list_and_get() -> None:
    assert call("create_rule", ACCEPT_ALL)[0] == 201
    status, listed = call("list_rules")
    assert status == 200
    validate("RuleList", listed)
    file_rule, api_rule = listed["value"]
    assert (file_rule["name"], file_rule["origin"]) == (FILE_RULE, "file")
    assert file_rule["source"].endswith("accept.yaml") and file_rule["match"] == {"ids": ["cve-0000-00000"]}
    assert (api_rule["name"], api_rule["origin"], api_rule["expires"]) == ("accept-all-alpine", "api", "2099-12-31")
    assert api_rule["match"] == {"severity_at_most": "Unknown", "os": {"id": "alpine"}} and api_rule["createdAt"]
    status, one = call("get_rule", route={"name": "Accept-All-Alpine"})
    assert (status, one["name"]) == (200, "accept-all-alpine")
    validate("Rule", one)
    assert call("get_rule", route={"name": FILE_RULE})[1]["origin"] == "file"
    status, missing = call("get_rule", route={"name": "nope"})
    assert (status, missing["error"]["message"]) == (404, "no rule named 'nope'")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {**ACCEPT_ALL, "match": {"severity_at_most": "Hgh"}},
            "rule ('accept-all-alpine'): 'severity_at_most': 'Hgh' is not one of Critical, High, Medium, Low, Unknown",
        ),
        (
            {**ACCEPT_ALL, "match": {"severity_atmost": "Low"}},
            "rule ('accept-all-alpine'): 'severity_atmost': unknown criterion in 'match'; "
            "did you mean 'severity_at_most'?",
        ),
        ({**ACCEPT_ALL, "expires": "31/12/2099"}, "rule ('accept-all-alpine'): 'expires': '31/12/2099' is not a date"),
        ({"name": "x", "match": {"ids": ["CVE-1"]}}, "rule ('x'): 'justification': required"),
        ({"justification": "y", "match": {}}, "rule: 'name': missing"),
        ({"name": "bad name", "justification": "y", "match": {"ids": ["a"]}}, "rule: 'name': 'bad name' must be"),
        (
            {"name": "x", "justification": "y", "match": {"os": {"version": 3.1}}},
            "rule ('x'): 'os.version': 3.1 is a number",
        ),
        ([ACCEPT_ALL], "rule: expected a mapping, got a list"),
    ],
)
def test_invalid_rule_is_400_naming_the_field(body: Any, message: str) -> None:
    status, answer = call("create_rule", body)
    assert status == 400, answer
    assert answer["error"]["message"].startswith(message), answer
    assert "\n" not in answer["error"]["message"]
    assert [r["origin"] for r in call("list_rules")[1]["value"]] == ["file"]  # nothing stored


def test_body_that_is_not_json_is_400() -> None:
    status, answer = call("create_rule", raw=b"name: yaml-is-not-json")
    assert status == 400 and answer["error"]["message"].startswith("rule: body is not JSON")


def test_duplicate_names_conflict() -> None:
    assert call("create_rule", ACCEPT_ALL)[0] == 201
    status, answer = call("create_rule", {**ACCEPT_ALL, "name": "ACCEPT-ALL-ALPINE"})
    assert status == 409 and "already used by a stored rule" in answer["error"]["message"]
    status, answer = call("create_rule", {**ACCEPT_ALL, "name": FILE_RULE.upper()})
    assert status == 409 and answer["error"]["message"].endswith("accept.yaml")


def test_delete_unknown_is_404_and_file_rule_is_409() -> None:
    status, answer = call("delete_rule", route={"name": "nope"})
    assert (status, answer["error"]["code"]) == (404, "NotFound")
    status, answer = call("delete_rule", route={"name": FILE_RULE})
    assert status == 409 and answer["error"]["message"].endswith(": edit the file")
    assert [r["name"] for r in call("list_rules")[1]["value"]] == [FILE_RULE]


def test_writes_are_never_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_API_KEY")
    monkeypatch.setenv("ACRGUARD_ALLOW_ANONYMOUS", "true")
    assert call("list_rules", headers={})[0] == 200  # reads opened explicitly
    assert call("create_rule", ACCEPT_ALL, headers={})[0] == 401
    assert call("delete_rule", route={"name": FILE_RULE}, headers={})[0] == 401
    assert call("create_scan", {"registry": REG, "repository": REPO, "digest": DIGEST}, headers={})[0] == 401
    assert call("import_notifications", {"registry": REG, "repository": REPO, "digest": DIGEST}, headers={})[0] == 401
    assert call("requeue_dead_letter", route={"id": "x"}, headers={})[0] == 401
    assert [r["origin"] for r in call("list_rules", headers={})[1]["value"]] == ["file"]


def test_wrong_key_is_401() -> None:
    for name in ("list_rules", "list_dead_letters"):
        status, answer = call(name, headers={"x-api-key": "wrong"})
        assert (status, answer["error"]["code"]) == (401, "Unauthorized")


def test_stored_rule_stays_deletable_when_a_file_rule_takes_its_name_later() -> None:
    assert call("create_rule", ACCEPT_ALL)[0] == 201
    later = Path(os.environ["ACRGUARD_RULES"]) / "later.yaml"
    later.write_text("rules:\n  - name: accept-all-alpine\n    justification: j\n    match: {ids: [CVE-1]}\n")
    assert [r["origin"] for r in call("list_rules")[1]["value"]] == ["file", "file", "api"]
    status, deleted = call("delete_rule", route={"name": "accept-all-alpine"})
    assert (status, deleted["rule"]["origin"]) == (200, "api")
    status, answer = call("delete_rule", route={"name": "accept-all-alpine"})
    assert status == 409 and answer["error"]["message"].endswith("later.yaml: edit the file")
