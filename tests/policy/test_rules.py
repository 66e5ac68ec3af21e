"""Disable rules: loading, strict validation (every error names file and field), matching, expiry."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.model.types import Cvss, Finding, LayerInfo, OSInfo, Package
from scanner.policy.image_context import ImageContext
from scanner.policy.rules import Rule, RuleError, apply_rules, expired_rules, load_rule_file, load_rules

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
TODAY = date(2025, 6, 15)

IMAGE = ImageContext(
    registry="myacr.azurecr.io",
    repository="team/api",
    digest=DIGEST,
    tags=("1.0",),
    os=OSInfo(id="debian", version="12.5"),
    package_managers=("apt",),
)


def finding(**changes: Any) -> Finding:
    package = Package(
        name="libssl3",
        version="3.0.9-1",
        ecosystem="Debian:12",
        purl="pkg:deb/debian/libssl3@3.0.9-1?arch=amd64",
        source_name="openssl",
        source_version="3.0.9-1",
        arch="amd64",
        locations=("/var/lib/dpkg/status",),
        kind="deb",
        detector="dpkg@1",
        layer=LayerInfo(0, "sha256:" + "0" * 64),
    )
    base = Finding(
        id="CVE-2023-1234",
        aliases=("DSA-5417-1",),
        package=package,
        installed_version="3.0.9-1",
        fixed_version="3.0.11-1~deb12u2",
        fix_status="fixed",
        severity="High",
        severity_source="debian",
        cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        category="os",
    )
    pkg_changes = {k[4:]: changes.pop(k) for k in list(changes) if k.startswith("pkg_")}
    if pkg_changes:
        changes["package"] = dataclasses.replace(package, **pkg_changes)
    return dataclasses.replace(base, **changes)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def rule_with(match: str, extra: str = "") -> str:
    return f"""\
rules:
  - name: r
    justification: because
{extra}    match:
      {match}
"""


def one_rule(tmp_path: Path, match: str, extra: str = "") -> Rule:
    (rule,) = load_rule_file(write(tmp_path, "r.yaml", rule_with(match, extra)))
    return rule


def disabled_by(rules: list[Rule], f: Finding, image: ImageContext = IMAGE, today: date = TODAY) -> str:
    (out,) = apply_rules([f], rules, image, today)
    assert out.disabled == bool(out.disabled_by)
    return out.disabled_by


# --- each criterion alone: (criterion, a finding/image it matches, one it does not) -----------------

OTHER_IMAGE = dataclasses.replace(
    IMAGE, registry="docker.io", repository="library/debian", digest="sha256:" + "cd" * 32, os=OSInfo("alpine", "3.19")
)

CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("ids: [CVE-2023-1234]", {}, {"id": "CVE-2023-9999", "aliases": ()}),
    ("ids: [dsa-5417-1]", {}, {"aliases": ("DSA-1-1",)}),  # an alias, case-insensitive
    ("ids: [GHSA-abcd-efgh-ijkl]", {"id": "GHSA-abcd-efgh-ijkl"}, {}),
    ("packages: [libssl3]", {}, {"pkg_name": "libc6", "pkg_source_name": "glibc"}),
    ("packages: ['libssl*']", {}, {"pkg_name": "openssl-tools", "pkg_source_name": "x"}),
    ("packages: [openssl]", {}, {"pkg_source_name": "openssl3"}),  # the source package name counts
    ("packages: ['pkg:deb/debian/*']", {}, {"pkg_purl": "pkg:npm/libssl3@1"}),
    ("category: os", {}, {"category": "language"}),
    ("category: language", {"category": "language"}, {}),
    ("severity_at_most: High", {"severity": "Medium"}, {"severity": "Critical"}),
    ("severity_at_most: high", {"severity": "High"}, {"severity": "Unknown"}),
    ("severity_at_most: Low", {"severity": "Low"}, {"severity": "Unknown"}),  # Unknown is not below Low
    ("severity_at_most: Critical", {"severity": "Critical"}, {"severity": "Unknown"}),
    ("severity_at_most: Unknown", {"severity": "Unknown"}, None),  # any severity: nothing to miss
    ("cvss_below: 7.6", {}, {"cvss": Cvss("3.1", "v", 7.6)}),  # strictly below
    ("cvss_below: 5", {"cvss": Cvss("3.1", "v", 4.9)}, {"cvss": None}),  # no score: no match
    ("patchable: true", {}, {"fix_status": "not_fixed", "fixed_version": ""}),
    ("patchable: false", {"fix_status": "wont_fix", "fixed_version": ""}, {}),
    ("fix_status: [not_fixed, wont_fix]", {"fix_status": "not_fixed"}, {}),
    ("fix_status: [fixed]", {}, {"fix_status": "wont_fix"}),
    (f"image_digests: ['{DIGEST}']", {}, {"image": OTHER_IMAGE}),
    (f"image_digests: ['{DIGEST.upper().replace('SHA256', 'sha256')}']", {}, {"image": OTHER_IMAGE}),
    ("repositories: ['team/*']", {}, {"image": OTHER_IMAGE}),
    ("repositories: ['*']", {}, {"image": dataclasses.replace(IMAGE, repository="")}),  # local image
    ("registries: ['*.azurecr.io']", {}, {"image": OTHER_IMAGE}),
    ("os: {id: debian}", {}, {"image": OTHER_IMAGE}),
    ("os: {id: Debian, version: '12'}", {}, {"image": dataclasses.replace(IMAGE, os=OSInfo("debian", "120"))}),
    ("os: {version: '12.5'}", {}, {"image": dataclasses.replace(IMAGE, os=OSInfo("debian", "12"))}),
    ("os: {version: 12}", {}, {"image": dataclasses.replace(IMAGE, os=None)}),
]


@pytest.mark.parametrize(("match", "hit", "miss"), CASES, ids=[c[0] for c in CASES])
def test_each_criterion_alone(tmp_path: Path, match: str, hit: dict[str, Any], miss: dict[str, Any] | None) -> None:
    rules = [one_rule(tmp_path, match)]
    assert disabled_by(rules, finding(**hit)) == "r"
    if miss is not None:
        changes = dict(miss)
        image = changes.pop("image", IMAGE)
        assert disabled_by(rules, finding(**changes), image) == ""


def test_every_criterion_is_covered_by_a_case() -> None:
    from scanner.policy.rules import _MATCH_KEYS

    covered = {c[0].split(":", 1)[0] for c in CASES}
    assert covered == set(_MATCH_KEYS)


def test_all_criteria_combined_must_all_hold(tmp_path: Path) -> None:
    match = f"""ids: [CVE-2023-1234]
      packages: [openssl]
      category: os
      severity_at_most: High
      cvss_below: 8
      patchable: true
      fix_status: [fixed]
      image_digests: ['{DIGEST}']
      repositories: ['team/*']
      registries: ['myacr.azurecr.io']
      os: {{id: debian, version: '12'}}"""
    rules = [one_rule(tmp_path, match)]
    assert disabled_by(rules, finding()) == "r"
    # Break one criterion at a time: each alone is enough to keep the finding active.
    breakers: list[dict[str, Any]] = [
        {"id": "CVE-1", "aliases": ()},
        {"pkg_name": "x", "pkg_source_name": "y"},
        {"category": "language"},
        {"severity": "Critical"},
        {"cvss": Cvss("3.1", "v", 8.0)},
        {"fix_status": "not_fixed"},
    ]
    for breaking in breakers:
        assert disabled_by(rules, finding(**breaking)) == "", breaking
    for image in [
        dataclasses.replace(IMAGE, digest=DIGEST[:-2] + "00"),
        dataclasses.replace(IMAGE, repository="other/api"),
        dataclasses.replace(IMAGE, registry="other.azurecr.io"),
        dataclasses.replace(IMAGE, os=OSInfo("debian", "11")),
    ]:
        assert disabled_by(rules, finding(), image) == "", image


def test_two_criteria_combined(tmp_path: Path) -> None:
    rules = [one_rule(tmp_path, "severity_at_most: Medium\n      category: os")]
    assert disabled_by(rules, finding(severity="Low")) == "r"
    assert disabled_by(rules, finding(severity="Low", category="language")) == ""
    assert disabled_by(rules, finding(severity="High")) == ""


# --- expiry ---------------------------------------------------------------------------------------


def test_expiry_is_inclusive_of_its_day(tmp_path: Path) -> None:
    rules = [one_rule(tmp_path, "category: os", "    expires: 2025-06-15\n")]
    assert disabled_by(rules, finding(), today=TODAY) == "r"  # expires today: still applies
    assert disabled_by(rules, finding(), today=TODAY + timedelta(days=1)) == ""  # expired yesterday
    assert expired_rules(rules, TODAY) == []
    assert expired_rules(rules, TODAY + timedelta(days=1)) == rules


def test_expiry_as_quoted_string(tmp_path: Path) -> None:
    rule = one_rule(tmp_path, "category: os", "    expires: '2025-06-14'\n")
    assert rule.expires == date(2025, 6, 14)
    assert disabled_by([rule], finding(), today=TODAY) == ""


def test_today_defaults_to_the_real_date(tmp_path: Path) -> None:
    yesterday = date.today() - timedelta(days=1)
    rule = one_rule(tmp_path, "category: os", f"    expires: {yesterday.isoformat()}\n")
    (out,) = apply_rules([finding()], [rule], IMAGE)
    assert not out.disabled


# --- order and application ------------------------------------------------------------------------


def test_first_matching_rule_in_file_name_then_file_order(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(rules_dir, "b.yml", rule_with("category: os").replace("name: r", "name: b-first"))
    write(
        rules_dir,
        "a.yaml",
        """\
        rules:
          - name: a-second-in-file-order
            justification: j
            match: {severity_at_most: Low}
          - name: a-later
            justification: j
            match: {category: os}
          - name: a-also
            justification: j
            match: {packages: [libssl3]}
        """,
    )
    write(rules_dir, "c.txt", "not: a rule file")  # other extensions are ignored
    write(rules_dir, ".hidden.yaml", "garbage: [")  # so are hidden files (editor swap files)
    rules = load_rules(rules_dir)
    assert [r.name for r in rules] == ["a-second-in-file-order", "a-later", "a-also", "b-first"]
    assert disabled_by(rules, finding()) == "a-later"
    assert disabled_by(rules, finding(severity="Low")) == "a-second-in-file-order"
    assert disabled_by(rules, finding(category="language", pkg_name="x", pkg_source_name="")) == ""


def test_apply_keeps_order_and_leaves_disabled_findings_alone(tmp_path: Path) -> None:
    rules = [one_rule(tmp_path, "category: os")]
    already = finding(disabled=True, disabled_by="earlier")
    language = finding(category="language")
    out = apply_rules([already, language, finding()], rules, IMAGE, TODAY)
    assert [f.disabled_by for f in out] == ["earlier", "", "r"]
    assert out[1] is language


def test_rule_carries_its_origin(tmp_path: Path) -> None:
    rule = one_rule(tmp_path, "category: os")
    assert (rule.source, rule.index, rule.justification) == (str(tmp_path / "r.yaml"), 1, "because")


# --- loading edge cases -----------------------------------------------------------------------------


def test_empty_files_and_commented_out_rules_hold_no_rules(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "# nothing yet\n")
    write(tmp_path, "b.yaml", "rules:\n# - name: x\n")
    write(tmp_path, "c.yaml", "version: 1\nrules: []\n")
    assert load_rules(tmp_path) == []


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="nope: rules directory does not exist"):
        load_rules(tmp_path / "nope")
    assert load_rules(tmp_path / "nope", missing_ok=True) == []


def test_shipped_example_rules_load_and_disable_nothing() -> None:
    rules = load_rules(REPO / "policies" / "rules")
    assert len(rules) >= 3
    assert all(r.justification for r in rules)
    images = [IMAGE, OTHER_IMAGE, dataclasses.replace(IMAGE, digest="")]
    findings = [
        finding(severity=s, category=c, fix_status=fs, cvss=None if s == "Unknown" else Cvss("3.1", "v", 1.0))
        for s in ("Critical", "High", "Medium", "Low", "Unknown")
        for c in ("os", "language")
        for fs in ("fixed", "not_fixed", "wont_fix")
    ]
    findings.append(finding(id="CVE-2023-0000", pkg_purl="pkg:npm/x@1", category="language"))
    for image in images:
        assert not any(f.disabled for f in apply_rules(findings, rules, image, date(2000, 1, 1)))


# --- malformed files: each error is one line naming the file and the field ------------------------------

RULE = "rules:\n  - name: ignore-openssl\n    justification: j\n"
GOOD = "  - name: fine\n    justification: j\n    match: {category: os}\n"

MALFORMED: list[tuple[str, str, str]] = [
    # (case, file text, expected message after "policies/rules/x.yaml: ")
    (
        "bad severity",
        "rules:\n" + GOOD + "  - name: ignore-openssl\n    justification: j\n    match: {severity_at_most: Hgh}\n",
        "rule 2 ('ignore-openssl'): 'severity_at_most': 'Hgh' is not one of Critical, High, Medium, Low, Unknown",
    ),
    (
        "unknown criterion",
        RULE + "    match: {severity_atmost: Low}\n",
        "rule 1 ('ignore-openssl'): 'severity_atmost': unknown criterion in 'match'; did you mean 'severity_at_most'?",
    ),
    (
        "unknown rule key",
        RULE + "    match: {category: os}\n    expiry: 2025-01-01\n",
        "rule 1 ('ignore-openssl'): 'expiry': unknown key; did you mean 'expires'?",
    ),
    ("unknown top-level key", "rule:\n  - name: x\n", "'rule': unknown top-level key; did you mean 'rules'?"),
    (
        "unknown os key",
        RULE + "    match: {os: {distro: debian}}\n",
        "rule 1 ('ignore-openssl'): 'distro': unknown key in 'os' (expected id, version)",
    ),
    ("missing rules", "version: 1\n", "'rules': missing"),
    ("rules not a list", "rules: {name: x}\n", "'rules': expected a list of rules, got a mapping"),
    ("bad version", "version: 2\nrules: []\n", "'version': 2 is not supported (only 1)"),
    ("not a mapping", "- a\n- b\n", "expected a mapping with a 'rules' list, got a list"),
    ("rule not a mapping", "rules:\n  - just-a-name\n", "rule 1: expected a mapping, got a string"),
    ("missing name", "rules:\n  - justification: j\n    match: {category: os}\n", "rule 1: 'name': missing"),
    ("bad name", "rules:\n  - name: has space\n", "rule 1: 'name': 'has space' must be 1 to 100 letters"),
    (
        "missing justification",
        "rules:\n  - name: n\n    match: {category: os}\n",
        "rule 1 ('n'): 'justification': required: a non-empty text",
    ),
    (
        "blank justification",
        "rules:\n  - name: n\n    justification: '  '\n    match: {category: os}\n",
        "rule 1 ('n'): 'justification': required",
    ),
    ("missing match", RULE, "rule 1 ('ignore-openssl'): 'match': missing: give at least one of ids, packages"),
    ("empty match", RULE + "    match: {}\n", "rule 1 ('ignore-openssl'): 'match': needs at least one criterion"),
    (
        "match not a mapping",
        RULE + "    match: [ids]\n",
        "rule 1 ('ignore-openssl'): 'match': expected a mapping of criteria, got a list",
    ),
    (
        "ids not a list",
        RULE + "    match: {ids: CVE-2023-1}\n",
        "rule 1 ('ignore-openssl'): 'ids': expected a non-empty list, got a string",
    ),
    ("empty ids", RULE + "    match: {ids: []}\n", "rule 1 ('ignore-openssl'): 'ids': expected a non-empty list"),
    (
        "number in packages",
        RULE + "    match: {packages: [7]}\n",
        "rule 1 ('ignore-openssl'): 'packages': 7 is not a non-empty string",
    ),
    (
        "bad category",
        RULE + "    match: {category: binary}\n",
        "rule 1 ('ignore-openssl'): 'category': 'binary' is not one of os, language",
    ),
    (
        "cvss too high",
        RULE + "    match: {cvss_below: 11}\n",
        "rule 1 ('ignore-openssl'): 'cvss_below': 11 is not a number above 0 and at most 10",
    ),
    (
        "cvss text",
        RULE + "    match: {cvss_below: high}\n",
        "rule 1 ('ignore-openssl'): 'cvss_below': 'high' is not a number above 0 and at most 10",
    ),
    (
        "cvss bool",
        RULE + "    match: {cvss_below: true}\n",
        "rule 1 ('ignore-openssl'): 'cvss_below': true is not a number",
    ),
    (
        "patchable text",
        RULE + "    match: {patchable: 'no'}\n",
        "rule 1 ('ignore-openssl'): 'patchable': 'no' is not true or false",
    ),
    (
        "bad fix status",
        RULE + "    match: {fix_status: [unfixed]}\n",
        "rule 1 ('ignore-openssl'): 'fix_status': 'unfixed' is not one of fixed, not_fixed, wont_fix",
    ),
    (
        "fix status scalar",
        RULE + "    match: {fix_status: fixed}\n",
        "rule 1 ('ignore-openssl'): 'fix_status': expected a non-empty list of fixed, not_fixed, wont_fix",
    ),
    (
        "digest without algorithm",
        RULE + "    match: {image_digests: ['" + "ab" * 32 + "']}\n",
        "rule 1 ('ignore-openssl'): 'image_digests': '" + "ab" * 32 + "' is not an image digest",
    ),
    (
        "short digest",
        RULE + "    match: {image_digests: ['sha256:abc']}\n",
        "rule 1 ('ignore-openssl'): 'image_digests': 'sha256:abc' is not an image digest",
    ),
    (
        "repositories scalar",
        RULE + "    match: {repositories: team/*}\n",
        "rule 1 ('ignore-openssl'): 'repositories': expected a non-empty list, got a string",
    ),
    (
        "registries empty string",
        RULE + "    match: {registries: ['']}\n",
        "rule 1 ('ignore-openssl'): 'registries': '' is not a non-empty string",
    ),
    (
        "os not a mapping",
        RULE + "    match: {os: debian}\n",
        "rule 1 ('ignore-openssl'): 'os': expected a mapping with 'id' and/or 'version', got a string",
    ),
    (
        "os float version",
        RULE + "    match: {os: {id: alpine, version: 3.10}}\n",
        "rule 1 ('ignore-openssl'): 'os.version': 3.1 is a number; quote it, e.g. version: '3.10'",
    ),
    (
        "os empty id",
        RULE + "    match: {os: {id: ''}}\n",
        "rule 1 ('ignore-openssl'): 'os.id': '' is not an os-release ID",
    ),
    (
        "bad expires",
        RULE + "    expires: next year\n    match: {category: os}\n",
        "rule 1 ('ignore-openssl'): 'expires': 'next year' is not a date (YYYY-MM-DD)",
    ),
    (
        "expires with time",
        RULE + "    expires: 2025-01-01T10:00:00\n    match: {category: os}\n",
        "rule 1 ('ignore-openssl'): 'expires': 2025-01-01 10:00:00 has a time; write a date, YYYY-MM-DD",
    ),
    (
        "impossible date string",
        RULE + "    expires: '2025-02-30'\n    match: {category: os}\n",
        "rule 1 ('ignore-openssl'): 'expires': '2025-02-30' is not a date (YYYY-MM-DD)",
    ),
    (
        "impossible date",
        RULE + "    expires: 2025-13-01\n    match: {category: os}\n",
        "invalid YAML: month must be in 1..12",
    ),
    ("yaml syntax", "rules: [\n", "invalid YAML at line 2, column 1:"),
    (
        "duplicate yaml key",
        RULE + "    match: {category: os}\n    match: {ids: [X]}\n",
        "invalid YAML at line 5, column 5: duplicate key 'match'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_rule_files_name_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "policies" / "rules", "x.yaml", text)
    with pytest.raises(RuleError) as err:
        load_rules("policies/rules")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("policies/rules/x.yaml: " + expected), message


def test_duplicate_names_across_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "rules", "a.yaml", "rules:\n" + GOOD)
    write(tmp_path / "rules", "b.yaml", "rules:\n" + GOOD.replace("fine", "other") + GOOD.replace("fine", "FINE"))
    with pytest.raises(RuleError) as err:
        load_rules("rules")
    assert str(err.value) == "rules/b.yaml: rule 2 ('FINE'): 'name': 'FINE' is already used by rules/a.yaml rule 1"


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n" + GOOD + GOOD)
    with pytest.raises(
        RuleError, match=r"a.yaml: rule 2 \('fine'\): 'name': 'fine' is already used by .*a.yaml rule 1"
    ):
        load_rules(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RuleError, match=r"bin.yaml: cannot read"):
        load_rules(tmp_path)


# --- image context ----------------------------------------------------------------------------------


def test_image_context_from_inventory() -> None:
    from scanner.model.types import ImageInfo, Inventory

    pkg = finding().package
    inv = Inventory(
        image=ImageInfo("myacr.azurecr.io/team/api:1.0", DIGEST, "sha256:c", "linux/amd64", OSInfo("debian", "12")),
        status="Scanned",
        reason="",
        packages=(pkg,),
    )
    ctx = ImageContext.from_inventory(inv)
    assert (ctx.registry, ctx.repository, ctx.digest, ctx.tags) == ("myacr.azurecr.io", "team/api", DIGEST, ("1.0",))
    assert ctx.package_managers == ("apt",)
    local = dataclasses.replace(inv, image=dataclasses.replace(inv.image, reference="oci:/tmp/layout"))
    ctx = ImageContext.from_inventory(local, tags=["x"])
    assert (ctx.registry, ctx.repository, ctx.tags) == ("", "", ("x",))
