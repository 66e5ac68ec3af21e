"""Never a silent Healthy: real images scanned with the real bundled snapshot database.

The Alpine 3.10 sample is covered by the snapshot's Alpine secdb (Unhealthy, with findings); an Alpine 3.12
image (a real apk installed-database stanza) and an image of a distribution acrguard has no record for (a real
os-release) have no advisories in it: NotAssessed, with the reason, in every output and in the exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.snapshot import default_db_path
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "alpine-3.10-app.tar"
# musl-utils 1.1.24-r2, the musl of Alpine 3.12 (anchore/syft's fixture, tests/fixtures/apk/SOURCES.md).
STANZA = (FIXTURES / "apk" / "syft" / "alpine" / "single").read_bytes()
ALPINE_312 = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.12.0\nPRETTY_NAME="Alpine Linux v3.12"\n'
# ID=secureos: a distribution acrguard has no record for (anchore/grype's fixture, tests/fixtures/os/SOURCES.md).
UNKNOWN_OS = (FIXTURES / "os" / "grype-distro" / "os" / "secureos" / "etc" / "os-release").read_bytes()
NO_ALPINE_312 = "the database holds no Alpine:v3.12 advisories: run `acrguard db update`"


def image(root: Path, os_release: bytes) -> str:
    layer = layer_tar([Entry("etc/os-release", os_release), Entry("lib/apk/db/installed", STANZA)])
    return f"oci:{write_layout(root, [Image([Layer(layer)])])}"


@pytest.fixture(scope="module")
def snapshot() -> str:
    return str(default_db_path())


@pytest.fixture
def alpine_312(tmp_path: Path) -> str:
    return image(tmp_path / "alpine-3.12", ALPINE_312)


def test_the_alpine_310_sample_is_unhealthy_with_its_findings(acrguard: Any, snapshot: str) -> None:
    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["status"] == "Unhealthy"
    assert doc["findings"]
    [alpine] = doc["coverage"]
    assert (alpine["ecosystem"], alpine["kind"]) == ("Alpine:v3.10", "os")
    assert alpine["advisories"] > 0
    # The secdb holds the whole of Alpine 3.10: assessed (unless the database calls it a selection).
    assert alpine["assessed"] is not alpine["selection"]
    assert bool(doc["coverage_warnings"]) is alpine["selection"]
    assert "not assessed" not in run.err


def test_an_alpine_312_image_is_not_assessed(acrguard: Any, snapshot: str, alpine_312: str) -> None:
    run = acrguard("scan", alpine_312, "--db", snapshot, "--format", "json")
    assert run.code == 0  # no gate asked for: the exit code judges nothing, stderr says it
    doc = run.json()
    assert (doc["status"], doc["reason"]) == ("NotAssessed", NO_ALPINE_312)
    assert doc["findings"] == []
    assert doc["coverage"] == [
        {
            "ecosystem": "Alpine:v3.12",
            "kind": "os",
            "advisories": 0,
            "feed_date": "",
            "selection": False,
            "assessed": False,
        }
    ]
    assert doc["coverage_warnings"] == [NO_ALPINE_312]
    assert run.err == f"acrguard: {alpine_312}: not assessed: {NO_ALPINE_312}\n"


def test_an_unknown_distribution_is_not_assessed(acrguard: Any, snapshot: str, tmp_path: Path) -> None:
    ref = image(tmp_path / "secureos", UNKNOWN_OS)
    doc = acrguard("scan", ref, "--db", snapshot, "--format", "json").json()
    assert doc["status"] == "NotAssessed"
    assert doc["reason"] == "the database holds no secureos advisories: run `acrguard db update`"
    assert [(c["ecosystem"], c["kind"], c["assessed"]) for c in doc["coverage"]] == [("secureos", "os", False)]


@pytest.mark.parametrize(
    ("options", "environment", "code"),
    [
        ((), None, 1),  # the default: a gate fails an image it could not assess
        (("--on-not-assessed", "findings"), None, 0),  # judged by its findings: none
        (("--on-not-assessed", "skip"), None, 0),
        ((), "skip", 0),  # the setting's default
        (("--on-not-assessed", "fail"), "skip", 1),  # the option wins over the setting
    ],
)
def test_fail_on_judges_a_not_assessed_image(
    acrguard: Any,
    snapshot: str,
    alpine_312: str,
    monkeypatch: pytest.MonkeyPatch,
    options: tuple[str, ...],
    environment: str | None,
    code: int,
) -> None:
    if environment is not None:
        monkeypatch.setenv("ACRGUARD_GATE_ON_NOT_ASSESSED", environment)
    run = acrguard("scan", alpine_312, "--db", snapshot, "--fail-on", "low", *options)
    assert run.code == code
    assert run.err.splitlines() == [f"acrguard: {alpine_312}: not assessed: {NO_ALPINE_312}"]


def test_the_table_shows_the_coverage_and_the_status(acrguard: Any, snapshot: str, alpine_312: str) -> None:
    out = acrguard("scan", alpine_312, "--db", snapshot).out
    lines = out.splitlines()
    assert lines[0] == f"{alpine_312} (linux/amd64): NotAssessed — {NO_ALPINE_312}"
    assert lines[1].split() == ["ECOSYSTEM", "KIND", "ADVISORIES", "FEED", "DATE", "SELECTION", "ASSESSED"]
    assert lines[3].split() == ["Alpine:v3.12", "os", "0", "-", "no", "NO"]
    assert f"warning: {NO_ALPINE_312}" in lines
    assert lines[-1] == "no findings"


def test_sarif_says_the_run_assessed_nothing(acrguard: Any, snapshot: str, alpine_312: str) -> None:
    run = acrguard("scan", alpine_312, "--db", snapshot, "--format", "sarif").json()["runs"][0]
    assert run["results"] == []
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"] == [
        {"level": "error", "descriptor": {"id": "not-assessed"}, "message": {"text": NO_ALPINE_312}}
    ]
    assert run["properties"]["assessmentStatus"] == "NotAssessed"
    assert [c["ecosystem"] for c in run["properties"]["coverage"]] == ["Alpine:v3.12"]


def test_a_hostile_os_release_id_reaches_stderr_as_one_clean_bounded_line(
    acrguard: Any, snapshot: str, tmp_path: Path
) -> None:
    hostile = b'ID="evil\\x1b[31m' + b"x" * 5000 + b'"\n'
    ref = image(tmp_path / "hostile", hostile.replace(b"\\x1b", b"\x1b"))
    run = acrguard("scan", ref, "--db", snapshot, "--format", "json", "--fail-on", "high")
    assert run.code == 1
    doc = run.json()
    assert doc["status"] == "NotAssessed"
    assert len(doc["reason"]) < 200  # the ID is shown bounded
    (line,) = run.err.splitlines()
    assert "\x1b" not in line and len(line) < len(ref) + 400
    table = acrguard("scan", ref, "--db", snapshot).out
    assert "\x1b" not in table and "NotAssessed" in table.splitlines()[0]
