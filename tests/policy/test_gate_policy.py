"""Gate policies: loading with strict validation (every error one line naming file and field), evaluation."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest

from scanner.model.types import Finding, LayerInfo, OSInfo, Package
from scanner.policy.gates import CountAtLeast, Gate, GateError, When, evaluate, load_gate_file, load_gates
from scanner.policy.image_context import ImageContext

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageContext(
    registry="myacr.azurecr.io",
    repository="team/api",
    digest=DIGEST,
    tags=("1.0",),
    os=OSInfo(id="debian", version="12"),
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
        aliases=(),
        package=package,
        installed_version="3.0.9-1",
        fixed_version="3.0.11-1",
        fix_status="fixed",
        severity="High",
        severity_source="debian",
        cvss=None,
        category="os",
    )
    pkg = {k[4:]: changes.pop(k) for k in list(changes) if k.startswith("pkg_")}
    if pkg:
        changes["package"] = dataclasses.replace(package, **pkg)
    return dataclasses.replace(base, **changes)


def gate(when: When, repositories: tuple[str, ...] | None = None) -> Gate:
    return Gate("g", "d", when, ("lock",), repositories)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------------------------------- evaluation


def test_any_severity_at_least() -> None:
    g = gate(When(any_severity_at_least="Critical"))
    assert not evaluate([g], IMAGE, [finding(severity="High")])[0].failed
    verdict = evaluate([g], IMAGE, [finding(severity="Critical", id="CVE-1")])[0]
    assert verdict.failed and verdict.reasons == ("1 finding(s) at least Critical: CVE-1",)
    # Unknown ranks lowest, as the scan's --fail-on does.
    assert not evaluate([gate(When(any_severity_at_least="Low"))], IMAGE, [finding(severity="Unknown")])[0].failed


def test_disabled_findings_never_count() -> None:
    g = gate(When(any_severity_at_least="Low"))
    assert not evaluate([g], IMAGE, [finding(severity="Critical", disabled=True, disabled_by="r")])[0].failed


def test_patchable_severity_at_least() -> None:
    g = gate(When(patchable_severity_at_least="High"))
    assert not evaluate([g], IMAGE, [finding(severity="Critical", fix_status="not_fixed", fixed_version="")])[0].failed
    assert not evaluate([g], IMAGE, [finding(severity="Medium")])[0].failed
    verdict = evaluate([g], IMAGE, [finding(severity="Critical")])[0]
    assert verdict.failed and "patchable" in verdict.reasons[0]


def test_count_at_least() -> None:
    g = gate(When(count_at_least=CountAtLeast("Medium", 3)))
    two = [finding(id=f"CVE-{i}", severity="Medium") for i in range(2)]
    assert not evaluate([g], IMAGE, [*two, finding(id="CVE-L", severity="Low")])[0].failed
    verdict = evaluate([g], IMAGE, [*two, finding(id="CVE-C", severity="Critical")])[0]
    assert verdict.failed and verdict.reasons == ("3 finding(s) at least Medium (limit 3)",)


def test_conditions_are_alternatives_and_each_reason_is_listed() -> None:
    g = gate(When(any_severity_at_least="Critical", patchable_severity_at_least="High"))
    verdict = evaluate([g], IMAGE, [finding(severity="Critical")])[0]
    assert verdict.failed and len(verdict.reasons) == 2
    assert evaluate([g], IMAGE, [finding(severity="High")])[0].failed  # the patchable one alone


def test_fix_status_filter() -> None:
    g = gate(When(any_severity_at_least="High", fix_status=frozenset({"not_fixed"})))
    assert not evaluate([g], IMAGE, [finding(severity="Critical")])[0].failed
    assert evaluate([g], IMAGE, [finding(severity="Critical", fix_status="not_fixed")])[0].failed


def test_packages_filter_binary_source_and_purl() -> None:
    by_source = gate(When(packages=("openssl",)))
    by_binary = gate(When(packages=("libssl*",)))
    by_purl = gate(When(packages=("pkg:deb/debian/libssl3@*",)))
    other = gate(When(packages=("zlib*",)))
    for g in (by_source, by_binary, by_purl):
        verdict = evaluate([g], IMAGE, [finding()])[0]
        assert verdict.failed and verdict.reasons == ("1 matching finding(s): CVE-2023-1234",)
    assert not evaluate([other], IMAGE, [finding()])[0].failed
    # A filter with a condition: only matching packages are counted.
    scoped = gate(When(packages=("zlib*",), any_severity_at_least="Low"))
    assert not evaluate([scoped], IMAGE, [finding(severity="Critical")])[0].failed


def test_repositories_scope() -> None:
    inside = gate(When(any_severity_at_least="Low"), ("team/*",))
    outside = dataclasses.replace(inside, name="o", repositories=("prod/*",))
    verdicts = evaluate([inside, outside], IMAGE, [finding()])
    assert [v.gate.name for v in verdicts] == ["g"]
    local = dataclasses.replace(IMAGE, registry="", repository="")
    assert evaluate([dataclasses.replace(inside, repositories=("*",))], local, [finding()]) == []


def test_no_findings_passes_everything() -> None:
    gates = [gate(When(any_severity_at_least="Unknown")), gate(When(packages=("*",)))]
    assert [v.failed for v in evaluate(gates, IMAGE, [])] == [False, False]


def test_reasons_list_ids_bounded() -> None:
    many = [finding(id=f"CVE-{i:02d}", severity="Critical") for i in range(8)]
    reason = evaluate([gate(When(any_severity_at_least="Critical"))], IMAGE, many)[0].reasons[0]
    assert reason == "8 finding(s) at least Critical: CVE-00, CVE-01, CVE-02, CVE-03, CVE-04 (+3 more)"


# ---------------------------------------------------------------------------------------------- loading

GOOD = """\
version: 1
gates:
  - name: crit
    description: no criticals
    repositories: ["Team/*"]
    when:
      any_severity_at_least: critical
      patchable_severity_at_least: High
      count_at_least: {severity: Medium, count: 10}
      fix_status: [fixed, NOT_FIXED]
      packages: ["OpenSSL"]
    actions: [lock, quarantine, notify]
"""


def test_load_full_gate(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    [g] = load_gates(tmp_path)
    assert g.name == "crit" and g.description == "no criticals"
    assert g.repositories == ("team/*",)
    assert g.actions == ("lock", "quarantine", "notify")
    assert g.when == When(
        any_severity_at_least="Critical",
        patchable_severity_at_least="High",
        count_at_least=CountAtLeast("Medium", 10),
        fix_status=frozenset({"fixed", "not_fixed"}),
        packages=("openssl",),
    )
    assert g.source == str(tmp_path / "a.yaml") and g.index == 1


def test_shipped_example_is_safe_by_default() -> None:
    gates = load_gates(REPO / "policies" / "gates")
    assert gates, "policies/gates has an example"
    for g in gates:
        assert g.actions == ("notify",), f"{g.name}: the shipped example must not lock or quarantine"


def test_missing_directory(tmp_path: Path) -> None:
    assert load_gates(tmp_path / "nope", missing_ok=True) == []
    with pytest.raises(GateError, match="does not exist"):
        load_gates(tmp_path / "nope")


def test_empty_file_and_empty_list(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "")
    write(tmp_path, "b.yml", "gates:\n")
    write(tmp_path, "notes.txt", "ignored")
    assert load_gates(tmp_path) == []


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("name: crit", "name: CRIT"))
    with pytest.raises(GateError) as err:
        load_gates(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'b.yaml'}: gate 1 ('CRIT'): 'name':")
    assert "already used" in str(err.value)


HEAD = GOOD.split("    when:")[0]
BAD: list[tuple[str, str, str]] = [
    ("unknown top key", GOOD.replace("version: 1", "verison: 1"), "'verison': unknown top-level key; did you mean"),
    ("bad version", GOOD.replace("version: 1", "version: 2"), "'version': 2 is not supported"),
    ("no gates", "version: 1\n", "'gates': missing"),
    ("gates not list", "gates: {a: 1}\n", "'gates': expected a list, got a mapping"),
    ("gate not mapping", "gates: [x]\n", "gate 1: expected a mapping, got a string"),
    ("unknown gate key", GOOD.replace("    actions:", "    action:"), "'action': unknown key in a gate"),
    ("unknown criterion", GOOD.replace("fix_status:", "fix_state:"), "'fix_state': unknown criterion in 'when'"),
    ("missing description", GOOD.replace("    description: no criticals\n", ""), "'description': missing"),
    ("blank description", GOOD.replace("description: no criticals", "description: ' '"), "'description':"),
    ("bad name", GOOD.replace("name: crit", "name: 'a b'"), "'name': 'a b' is not a name"),
    (
        "bad severity",
        GOOD.replace("any_severity_at_least: critical", "any_severity_at_least: severe"),
        "'any_severity_at_least': 'severe' is not one of Critical, High, Medium, Low, Unknown",
    ),
    ("bad count", GOOD.replace("count: 10", "count: 0"), "'count_at_least.count': 0 is not a whole number"),
    ("count bool", GOOD.replace("count: 10", "count: true"), "'count_at_least.count': true is not"),
    ("count missing", GOOD.replace("severity: Medium, ", ""), "'count_at_least.severity': missing"),
    ("count extra", GOOD.replace("count: 10}", "count: 10, max: 3}"), "'max': unknown key in 'count_at_least'"),
    ("count not mapping", GOOD.replace("{severity: Medium, count: 10}", "10"), "'count_at_least': expected a mapping"),
    ("bad fix status", GOOD.replace("NOT_FIXED", "maybe"), "'fix_status': 'maybe' is not one of fixed"),
    ("fix status scalar", GOOD.replace("[fixed, NOT_FIXED]", "fixed"), "'fix_status': expected a non-empty list"),
    ("packages scalar", GOOD.replace('["OpenSSL"]', "openssl"), "'packages': expected a non-empty list, got a string"),
    ("packages blank", GOOD.replace('["OpenSSL"]', '[""]'), "'packages': '' is not a non-empty string"),
    ("repositories empty", GOOD.replace('["Team/*"]', "[]"), "'repositories': expected a non-empty list"),
    ("empty when", HEAD + "    when: {}\n    actions: [lock]\n", "'when': needs at least one"),
    (
        "when not mapping",
        HEAD + "    when: [1]\n    actions: [lock]\n",
        "'when': expected a mapping",
    ),
    ("bad action", GOOD.replace("[lock, quarantine, notify]", "[lock, delete]"), "'actions': 'delete' is not one of"),
    ("empty actions", GOOD.replace("[lock, quarantine, notify]", "[]"), "'actions': expected a non-empty list"),
    ("twice", GOOD.replace("[lock, quarantine, notify]", "[lock, LOCK]"), "'actions': 'lock' is listed twice"),
    ("duplicate key", GOOD.replace("    actions:", "    name: x\n    actions:"), "invalid YAML at line"),
    ("bad yaml", "gates: [\n", "invalid YAML"),
    ("not mapping", "- a\n", "expected a mapping with a 'gates' list, got a list"),
]


@pytest.mark.parametrize(("label", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_files_fail_in_one_line_naming_file_and_field(
    tmp_path: Path, label: str, text: str, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(GateError) as err:
        load_gate_file(path)
    text_of = str(err.value)
    assert "\n" not in text_of, label
    assert text_of.startswith(str(path)), text_of
    assert message in text_of, text_of


def _second() -> str:
    return GOOD.split("gates:\n")[1].replace("name: crit", "name: second").replace("lock, ", "")


def test_error_names_the_gate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        GOOD + _second(),
    )
    assert [g.name for g in load_gate_file(path)] == ["crit", "second"]
    path = write(tmp_path, "bad.yaml", GOOD.replace("count: 10", "count: -1"))
    with pytest.raises(GateError, match=r"bad\.yaml: gate 1 \('crit'\): 'count_at_least\.count'"):
        load_gate_file(path)


# ---------------------------------------------------------------------------------------------- incomplete images

INCOMPLETE = "inventory incomplete: /var/lib/dpkg/status: 70000000 bytes, over the limit of 67108864"


def test_an_incomplete_image_fails_a_gate_by_default_even_with_no_finding() -> None:
    verdict = evaluate([gate(When(any_severity_at_least="Critical"))], IMAGE, [], INCOMPLETE)[0]
    assert verdict.failed
    assert verdict.reasons == (f"{INCOMPLETE}",)


def test_an_incomplete_image_keeps_its_finding_reasons_after_the_incomplete_one() -> None:
    g = gate(When(any_severity_at_least="High"))
    verdict = evaluate([g], IMAGE, [finding(id="CVE-1")], INCOMPLETE)[0]
    assert verdict.reasons == (INCOMPLETE, "1 finding(s) at least High: CVE-1")


def test_findings_policy_judges_what_was_found_and_skip_gives_no_verdict() -> None:
    judged = dataclasses.replace(gate(When(any_severity_at_least="High")), on_incomplete="findings")
    assert not evaluate([judged], IMAGE, [], INCOMPLETE)[0].failed
    assert evaluate([judged], IMAGE, [finding()], INCOMPLETE)[0].failed
    skipped = dataclasses.replace(judged, name="s", on_incomplete="skip")
    assert [v.gate.name for v in evaluate([judged, skipped], IMAGE, [finding()], INCOMPLETE)] == ["g"]
    # A whole inventory is judged by every gate, whatever its policy.
    assert len(evaluate([judged, skipped], IMAGE, [finding()])) == 2


def test_on_incomplete_in_the_file_wins_over_the_configured_default(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("name: crit", "name: other") + "    on_incomplete: SKIP\n")
    assert [g.on_incomplete for g in load_gates(tmp_path)] == ["fail", "skip"]
    assert [g.on_incomplete for g in load_gates(tmp_path, on_incomplete="findings")] == ["findings", "skip"]


def test_a_bad_on_incomplete_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", GOOD + "    on_incomplete: pass\n")
    with pytest.raises(GateError) as err:
        load_gate_file(path)
    assert "'on_incomplete': 'pass' is not one of fail, findings, skip" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


# ---------------------------------------------------------------------------------------------- not assessed images

NOT_ASSESSED = "the database holds no Debian:12 advisories: run `acrguard db update`"


def test_a_not_assessed_image_fails_a_gate_by_default() -> None:
    verdict = evaluate([gate(When(any_severity_at_least="Critical"))], IMAGE, [], not_assessed=NOT_ASSESSED)[0]
    assert verdict.failed
    assert verdict.reasons == (f"not assessed: {NOT_ASSESSED}",)


def test_on_not_assessed_findings_judges_what_was_found_and_skip_gives_no_verdict() -> None:
    judged = dataclasses.replace(gate(When(any_severity_at_least="High")), on_not_assessed="findings")
    assert not evaluate([judged], IMAGE, [], not_assessed=NOT_ASSESSED)[0].failed
    skipped = dataclasses.replace(judged, name="s", on_not_assessed="skip")
    assert [v.gate.name for v in evaluate([judged, skipped], IMAGE, [], not_assessed=NOT_ASSESSED)] == ["g"]
    # An assessed image is judged by every gate, whatever its policy; on_incomplete does not decide here.
    assert len(evaluate([judged, skipped], IMAGE, [])) == 2
    incomplete_only = dataclasses.replace(gate(When(any_severity_at_least="High")), on_incomplete="skip")
    assert evaluate([incomplete_only], IMAGE, [], not_assessed=NOT_ASSESSED)[0].failed


def test_on_not_assessed_in_the_file_wins_over_the_configured_default(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("name: crit", "name: other") + "    on_not_assessed: findings\n")
    assert [g.on_not_assessed for g in load_gates(tmp_path)] == ["fail", "findings"]
    assert [g.on_not_assessed for g in load_gates(tmp_path, on_not_assessed="skip")] == ["skip", "findings"]
    # The two defaults are independent.
    assert [g.on_incomplete for g in load_gates(tmp_path, on_not_assessed="skip")] == ["fail", "fail"]


def test_a_bad_on_not_assessed_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", GOOD + "    on_not_assessed: pass\n")
    with pytest.raises(GateError) as err:
        load_gate_file(path)
    assert "'on_not_assessed': 'pass' is not one of fail, findings, skip" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
