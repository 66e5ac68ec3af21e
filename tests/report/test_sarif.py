"""SARIF 2.1.0 output, validated against the SARIF 2.1.0 JSON schema (tests/fixtures/sarif/SOURCES.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scanner.assess.risk import with_risk
from scanner.model.types import Coverage, Cvss, Epss, Finding, FixStatus, Kev, LayerInfo, Package, Severity
from scanner.report.sarif import security_severity, to_sarif

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
IMAGE = "myacr.azurecr.io/team/api:1.0"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def finding(
    vuln_id: str = "CVE-2023-1234",
    severity: Severity = "High",
    fix_status: FixStatus = "fixed",
    name: str = "libssl3",
    locations: tuple[str, ...] = ("/var/lib/dpkg/status",),
    **changes: Any,
) -> Finding:
    pkg = Package(
        name=name,
        version="3.0.9-1",
        ecosystem="Debian:12",
        purl=f"pkg:deb/debian/{name}@3.0.9-1",
        source_name="openssl",
        source_version="3.0.9-1",
        arch="amd64",
        locations=locations,
        kind="deb",
        detector="dpkg@1",
        layer=LayerInfo(0, "sha256:" + "1" * 64),
    )
    f = Finding(
        id=vuln_id,
        aliases=("DSA-5417-1",),
        package=pkg,
        installed_version="3.0.9-1",
        fixed_version="3.0.11-1~deb12u2" if fix_status == "fixed" else "",
        fix_status=fix_status,
        severity=severity,
        severity_source="debian",
        cvss=None,
        category="os",
        summary="OpenSSL: excessive time spent checking DH keys",
        references=("https://security-tracker.debian.org/tracker/" + vuln_id,),
    )
    return dataclasses.replace(f, **changes)


def run(log: dict[str, Any]) -> dict[str, Any]:
    (only,) = log["runs"]
    assert isinstance(only, dict)
    return only


def test_a_mixed_log_is_valid_sarif(validator: jsonschema.protocols.Validator) -> None:
    findings = [
        finding(),
        finding("CVE-2023-1234", name="openssl"),  # same vulnerability, second package: one rule
        finding("CVE-2024-0001", "Critical", cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)),
        finding("CVE-2024-0002", "Medium", "not_fixed"),
        finding("CVE-2024-0003", "Low", "wont_fix", disabled=True, disabled_by="accept-low"),
        finding("GHSA-aaaa-bbbb-cccc", "Unknown", summary="", references=()),
        finding("CVE-2024-0004", locations=()),
        finding("CVE-2024-0005", locations=("/opt/my app/lib#1/100%.jar", "/usr/lib/é.so")),
        finding("CVE-2024-0006", remediation="Fix it:\n  apt-get install x\n"),
    ]
    log = to_sarif(findings, IMAGE, "0.1.0")
    validator.validate(log)
    json.dumps(log)  # plain JSON types only
    assert log["version"] == "2.1.0"
    assert len(run(log)["results"]) == len(findings)


def test_empty_log_is_valid(validator: jsonschema.protocols.Validator) -> None:
    log = to_sarif([], IMAGE, "0.1.0")
    validator.validate(log)
    assert run(log)["results"] == [] and run(log)["tool"]["driver"]["rules"] == []


def test_schema_rejects_what_it_should(validator: jsonschema.protocols.Validator) -> None:
    # The schema is the real one, not a permissive stand-in.
    log = to_sarif([finding()], IMAGE, "0.1.0")
    run(log)["results"][0]["level"] = "critical"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(log)
    log = to_sarif([finding(disabled=True, disabled_by="r")], IMAGE, "0.1.0")
    run(log)["results"][0]["suppressions"][0]["kind"] = "ignored"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(log)


def test_one_rule_per_vulnerability_id() -> None:
    log = to_sarif([finding(), finding(name="openssl"), finding("CVE-2024-0001")], IMAGE, "1.2.3")
    driver = run(log)["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("acrguard", "1.2.3")
    assert [r["id"] for r in driver["rules"]] == ["CVE-2023-1234", "CVE-2024-0001"]
    results = run(log)["results"]
    assert [(r["ruleId"], r["ruleIndex"]) for r in results] == [
        ("CVE-2023-1234", 0),
        ("CVE-2023-1234", 0),
        ("CVE-2024-0001", 1),
    ]


def test_rule_fields_for_github() -> None:
    f = finding("CVE-2024-0001", "Critical", cvss=Cvss("3.1", "CVSS:3.1/AV:N", 9.8))
    (rule,) = run(to_sarif([f], IMAGE, "0.1.0"))["tool"]["driver"]["rules"]
    assert rule["helpUri"] == "https://security-tracker.debian.org/tracker/CVE-2024-0001"
    assert rule["shortDescription"]["text"] == "OpenSSL: excessive time spent checking DH keys"
    assert rule["defaultConfiguration"]["level"] == "error"
    props = rule["properties"]
    assert props["security-severity"] == "9.8" and isinstance(props["security-severity"], str)
    assert {"security", "vulnerability"} <= set(props["tags"])
    assert props["aliases"] == ["DSA-5417-1"]


def test_help_uri_falls_back_to_osv() -> None:
    (rule,) = run(to_sarif([finding("GHSA-aaaa-bbbb-cccc", references=())], IMAGE, "0"))["tool"]["driver"]["rules"]
    assert rule["helpUri"] == "https://osv.dev/vulnerability/GHSA-aaaa-bbbb-cccc"


@pytest.mark.parametrize(
    ("severity", "cvss", "level", "score"),
    [
        ("Critical", None, "error", "9.5"),
        ("Critical", 9.1, "error", "9.1"),
        ("High", 7.5, "error", "7.5"),
        ("High", 9.8, "error", "8.0"),  # the distribution's class wins over a score from another band
        ("Medium", 5.3, "warning", "5.3"),
        ("Medium", None, "warning", "5.5"),
        ("Low", 3.9, "note", "3.9"),
        ("Low", 7.0, "note", "2.0"),
        ("Unknown", None, "note", None),
    ],
)
def test_levels_and_security_severity(severity: Severity, cvss: float | None, level: str, score: str | None) -> None:
    f = finding(severity=severity, cvss=Cvss("3.1", "v", cvss) if cvss is not None else None)
    log = to_sarif([f], IMAGE, "0")
    (result,) = run(log)["results"]
    (rule,) = run(log)["tool"]["driver"]["rules"]
    assert result["level"] == level
    assert security_severity(f) == score
    assert rule["properties"].get("security-severity") == score


def test_result_message_and_locations() -> None:
    (result,) = run(to_sarif([finding()], IMAGE, "0"))["results"]
    assert result["message"]["text"] == (
        "libssl3 3.0.9-1 is affected by CVE-2023-1234 (High); fixed in 3.0.11-1~deb12u2."
    )
    (location,) = result["locations"]
    assert location["physicalLocation"]["artifactLocation"] == {"uri": "var/lib/dpkg/status", "uriBaseId": "IMAGE_ROOT"}
    assert location["logicalLocations"] == [{"name": IMAGE, "fullyQualifiedName": IMAGE, "kind": "module"}]
    assert result["properties"]["installedVersion"] == "3.0.9-1"
    assert result["properties"]["fixedVersion"] == "3.0.11-1~deb12u2"
    assert "suppressions" not in result


@pytest.mark.parametrize(
    ("status", "text"),
    [("not_fixed", "no fix is available yet"), ("wont_fix", "the maintainers will not fix it")],
)
def test_message_without_a_fix(status: FixStatus, text: str) -> None:
    (result,) = run(to_sarif([finding(fix_status=status)], IMAGE, "0"))["results"]
    assert result["message"]["text"] == f"libssl3 3.0.9-1 is affected by CVE-2023-1234 (High); {text}."


def test_location_uris_are_encoded() -> None:
    f = finding(locations=("/opt/my app/lib#1/100%.jar", "/usr/lib/é.so"))
    (result,) = run(to_sarif([f], IMAGE, "0"))["results"]
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"] for loc in result["locations"]]
    assert uris == ["opt/my%20app/lib%231/100%25.jar", "usr/lib/%C3%A9.so"]


def test_a_package_without_location_keeps_its_logical_location() -> None:
    (result,) = run(to_sarif([finding(locations=())], IMAGE, "0"))["results"]
    assert result["locations"] == [
        {"logicalLocations": [{"name": IMAGE, "fullyQualifiedName": IMAGE, "kind": "module"}]}
    ]


def test_disabled_findings_are_suppressed_with_the_rule_name() -> None:
    (result,) = run(to_sarif([finding(disabled=True, disabled_by="accept-openssl")], IMAGE, "0"))["results"]
    assert result["suppressions"] == [{"kind": "external", "status": "accepted", "justification": "accept-openssl"}]


def test_fingerprints_follow_the_repository_not_the_tag() -> None:
    def fingerprint(reference: str, f: Finding) -> str:
        (result,) = run(to_sarif([f], reference, "0"))["results"]
        value = result["partialFingerprints"]["acrguardFinding/v1"]
        assert isinstance(value, str)
        return value

    f = finding()
    same = fingerprint(IMAGE, f)
    assert fingerprint("myacr.azurecr.io/team/api:2.0", f) == same
    assert fingerprint("myacr.azurecr.io/team/api@sha256:" + "a" * 64, f) == same
    assert fingerprint("myacr.azurecr.io/team/web:1.0", f) != same
    assert fingerprint(IMAGE, finding(name="openssl")) != same


def test_results_sorted_by_severity_then_id() -> None:
    findings = [finding("CVE-B", "Low"), finding("CVE-A", "Low"), finding("CVE-C", "Critical"), finding("X", "Unknown")]
    results = run(to_sarif(findings, IMAGE, "0"))["results"]
    assert [r["ruleId"] for r in results] == ["CVE-C", "CVE-A", "CVE-B", "X"]


def test_remediation_travels_in_properties() -> None:
    (result,) = run(to_sarif([finding(remediation="Upgrade:\n  apt-get x\n")], IMAGE, "0"))["results"]
    assert result["properties"]["remediation"] == "Upgrade:\n  apt-get x"


def test_an_incomplete_inventory_makes_the_run_unsuccessful(validator: jsonschema.protocols.Validator) -> None:
    reason = "inventory incomplete: /var/lib/dpkg/status: 70000000 bytes, over the limit of 67108864"
    doc = to_sarif([finding()], IMAGE, "1.0", incomplete=[reason])
    validator.validate(doc)
    run = doc["runs"][0]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"] == [
        {"level": "error", "descriptor": {"id": "inventory-incomplete"}, "message": {"text": reason}}
    ]
    assert run["properties"]["inventoryStatus"] == "Incomplete"
    assert len(run["results"]) == 1  # what was found is still reported


def test_a_whole_inventory_has_no_invocation_notes() -> None:
    assert "invocations" not in to_sarif([finding()], IMAGE, "1.0")["runs"][0]


def test_an_image_not_assessed_makes_the_run_unsuccessful_and_says_why(
    validator: jsonschema.protocols.Validator,
) -> None:
    reason = "the database holds no Debian:12 advisories: run `acrguard db update`"
    coverage = (Coverage("Debian:12", "os", 0), Coverage("PyPI", "language", 0))
    log = to_sarif([], IMAGE, "0.1.0", coverage=coverage, not_assessed=[reason])
    validator.validate(log)
    (invocation,) = run(log)["invocations"]
    assert invocation["executionSuccessful"] is False
    assert [
        (n["level"], n["descriptor"]["id"], n["message"]["text"]) for n in invocation["toolExecutionNotifications"]
    ] == [
        ("error", "not-assessed", reason),
        ("warning", "ecosystem-not-assessed", "the database holds no PyPI advisories: run `acrguard db update`"),
    ]
    properties = run(log)["properties"]
    assert properties["assessmentStatus"] == "NotAssessed"
    assert [(c["ecosystem"], c["kind"], c["advisories"], c["assessed"]) for c in properties["coverage"]] == [
        ("Debian:12", "os", 0, False),
        ("PyPI", "language", 0, False),
    ]


def test_a_language_ecosystem_not_assessed_is_a_warning_only(validator: jsonschema.protocols.Validator) -> None:
    coverage = (
        Coverage("Debian:12", "os", 900, "2025-01-01T00:00:00Z"),
        Coverage("npm", "language", 3, selection=True),
    )
    log = to_sarif([finding()], IMAGE, "0.1.0", coverage=coverage)
    validator.validate(log)
    (invocation,) = run(log)["invocations"]
    assert invocation["executionSuccessful"] is True
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert note["message"]["text"] == (
        "the database holds only a selection of npm advisories (3, the bundled snapshot): run `acrguard db update`"
    )
    assert "assessmentStatus" not in run(log)["properties"]
    # Without coverage (older callers), nothing is added.
    assert "invocations" not in run(to_sarif([finding()], IMAGE, "0.1.0"))


def test_results_are_in_risk_order_with_the_risk_as_rank(validator: jsonschema.protocols.Validator) -> None:
    findings = with_risk(
        [
            finding("CVE-2024-0001", "Critical", cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)),
            finding("CVE-2024-0002", "Medium", "not_fixed", epss=Epss(0.9, 0.99, "2024-06-01")),
            finding("CVE-2021-44228", "High", kev=Kev("2021-12-10", "2021-12-24", True)),
            finding("GHSA-aaaa-bbbb-cccc", "Unknown", "not_fixed"),
            finding("CVE-2024-0003", "Low", "wont_fix"),
        ]
    )
    log = to_sarif(findings, IMAGE, "0.1.0")
    validator.validate(log)
    results = run(log)["results"]
    assert [r["ruleId"] for r in results] == [
        "CVE-2021-44228",  # KEV (ransomware), High, fixed: 88
        "CVE-2024-0002",  # Medium with an EPSS of 0.9: 39
        "CVE-2024-0001",  # Critical, CVSS 9.8, fixed: 35.4
        "GHSA-aaaa-bbbb-cccc",  # Unknown: 12
        "CVE-2024-0003",  # Low: 4
    ]
    assert [r["rank"] for r in results] == [88.0, 39.0, 35.4, 12.0, 4.0]
    assert all(0 <= r["rank"] <= 100 and r["rank"] == r["properties"]["risk"] for r in results)


def test_a_rule_defaults_to_its_most_severe_finding_whatever_the_risk_order() -> None:
    # The same id in two packages: the KEV-less Critical one is the rule's default, though it ranks second.
    findings = with_risk(
        [finding("CVE-2024-0001", "Critical"), finding("CVE-2024-0001", "Low", name="x", kev=Kev("a", "", False))]
    )
    log = to_sarif(findings, IMAGE, "0.1.0")
    [rule] = run(log)["tool"]["driver"]["rules"]
    assert rule["defaultConfiguration"]["level"] == "error" and rule["properties"]["severity"] == "Critical"
    assert [r["properties"]["package"] for r in run(log)["results"]] == ["x", "libssl3"]
