"""PhpDetector: path selection, Composer 1 and 2 installed.json and composer.lock, on peers' real test data (see
tests/fixtures/php/SOURCES.md) and on hand-made hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.inventory.detectors import php
from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.php import PhpDetector, release_version
from scanner.inventory.detectors.plugins import default_registry
from scanner.model.limits import Limits
from scanner.model.types import RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "php"
INSTALLED = "/var/www/html/vendor/composer/installed.json"
LOCK = "/var/www/html/composer.lock"


def extract(files: dict[str, bytes]) -> tuple[list[RawPackage], list[str]]:
    out = PhpDetector().extract(MemoryFileSet(files), DetectContext())
    assert out.incomplete == []
    return out.packages, [str(w) for w in out.warnings]


def brief(packages: list[RawPackage]) -> list[tuple[str, str, str, str]]:
    return [(p.name, p.version, p.purl, p.evidence) for p in packages]


def fixture(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()


def test_plugin_identity_and_registration() -> None:
    detector = PhpDetector()
    assert (detector.name, detector.version, detector.group, detector.ident) == ("php", 1, "language", "php@1")
    assert default_registry().get("php").ident == "php@1"


@pytest.mark.parametrize("path", [INSTALLED, LOCK, "/composer.lock", "/app/vendor/composer/installed.json"])
def test_required_accepts(path: str) -> None:
    assert PhpDetector().required(path)


@pytest.mark.parametrize(
    "path",
    [
        "/app/composer.json",
        "/app/vendor/guzzlehttp/guzzle/composer.lock",  # a library author's lockfile
        "/app/vendor/composer/installed.php",
        "/app/installed.json",
        "/app/composer.lock.bak",
    ],
)
def test_required_rejects(path: str) -> None:
    assert not PhpDetector().required(path)


def test_installed_composer1_list() -> None:
    packages, warnings = extract({INSTALLED: fixture("installed-composer1", "installed.json")})
    assert warnings == []
    assert brief(packages) == [
        ("asm89/stack-cors", "1.3.0", "pkg:composer/asm89/stack-cors@1.3.0", "installed"),
        # Composer keeps the tag `v1.8.1`; Packagist advisories write 1.8.1.
        ("behat/mink", "1.8.1", "pkg:composer/behat/mink@1.8.1", "installed"),
    ]
    assert packages[0].ecosystem == "Packagist" and packages[0].kind == "composer"
    assert packages[0].locations == (INSTALLED,) and dict(packages[0].metadata) == {"license": "MIT"}


def test_installed_composer2_object_marks_dev_packages() -> None:
    packages, warnings = extract({INSTALLED: fixture("installed-composer2", "installed.json")})
    assert warnings == []
    assert [(p.name, p.version, dict(p.metadata).get("dev")) for p in packages] == [
        ("asm89/stack-cors", "1.3.0", None),
        ("behat/mink", "1.8.1", "true"),
    ]


def test_lockfile_many_packages_not_dev() -> None:
    packages, warnings = extract({LOCK: fixture("lockfiles", "trivy-composer-happy.lock")})
    assert warnings == []
    assert [(p.name, p.version) for p in packages] == [
        ("guzzlehttp/guzzle", "6.5.8"),
        ("guzzlehttp/promises", "1.5.2"),
        ("guzzlehttp/psr7", "1.9.0"),
        ("psr/http-message", "1.0.1"),
        ("ralouphie/getallheaders", "3.0.3"),
        ("symfony/polyfill-intl-idn", "1.27.0"),
        ("symfony/polyfill-intl-normalizer", "1.27.0"),
        ("symfony/polyfill-php72", "1.27.0"),
    ]  # packages-dev (pear/log, pear/pear_exception) is not reported
    assert {p.evidence for p in packages} == {"lockfile"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("scalibr-empty.json", []),
        ("scalibr-one-package.json", [("sentry/sdk", "2.0.4")]),
        ("scalibr-one-package-dev.json", []),
        ("scalibr-two-packages.json", [("sentry/sdk", "2.0.4")]),
        ("scalibr-duplicate-packages.json", [("sentry/sdk", "2.0.4"), ("sentry/sdk", "2.0.5")]),
        (
            "scalibr-drupal-packages.json",
            [("drupal/core", "10.4.5"), ("drupal/tfa", "2.0.0-alpha4"), ("theseer/tokenizer", "1.1.3")],
        ),
        ("syft-composer.lock", [("adoy/fastcgi-client", "1.0.2"), ("alcaeus/mongo-php-adapter", "1.1.11")]),
    ],
)
def test_lockfile_cases(case: str, expected: list[tuple[str, str]]) -> None:
    packages, warnings = extract({LOCK: fixture("lockfiles", case)})
    assert warnings == [] and [(p.name, p.version) for p in packages] == expected


def test_lockfile_not_json() -> None:
    packages, warnings = extract({LOCK: fixture("lockfiles", "scalibr-not-json.txt")})
    assert packages == [] and len(warnings) == 1 and warnings[0].startswith(f"{LOCK}: malformed JSON (")


def test_installed_and_locked_package_agree_but_for_evidence() -> None:
    app = FIXTURES / "laravel-app" / "var" / "www" / "html"
    packages, warnings = extract(
        {LOCK: (app / "composer.lock").read_bytes(), INSTALLED: (app / "vendor/composer/installed.json").read_bytes()}
    )
    assert warnings == []
    assert sorted(brief(packages)) == sorted(
        [
            (name, version, f"pkg:composer/{name}@{version}", evidence)
            for name, version in [
                ("guzzlehttp/guzzle", "7.4.4"),
                ("laravel/framework", "9.52.16"),
                ("symfony/http-kernel", "6.3.4"),
            ]
            for evidence in ("installed", "lockfile")
        ]
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v1.8.1", "1.8.1"), ("V2.0.0", "2.0.0"), ("1.3.0", "1.3.0"), ("v", "v"), ("vendor", "vendor")],
)
def test_release_version(version: str, expected: str) -> None:
    assert release_version(version) == expected


def test_branch_versions_skipped_and_bad_entries_warned() -> None:
    entries = [
        {"name": "acme/main", "version": "dev-main"},
        {"name": "acme/next", "version": "2.x-dev"},
        {"name": "Acme/Upper", "version": "v1.0.0"},
        {"name": "no-vendor", "version": "1.0.0"},
        {"version": "1.0.0"},
        {"name": "acme/noversion"},
        {"name": "acme/badversion", "version": "1.0 beta"},
        "not an object",
    ]
    packages, warnings = extract({INSTALLED: json.dumps(entries).encode()})
    assert brief(packages) == [("acme/upper", "1.0.0", "pkg:composer/acme/upper@1.0.0", "installed")]
    assert [w.removeprefix(f"{INSTALLED}: ") for w in warnings] == [
        "package #3 has no valid name ('no-vendor'); skipped",
        "package #4 has no valid name ('None'); skipped",
        "package acme/noversion has no valid version ('None'); skipped",
        "package acme/badversion has no valid version ('1.0 beta'); skipped",
        "package #7 is not an object; skipped",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "malformed JSON"),
        (b"\xff\xfe\x00garbage", "malformed JSON"),
        (b'"a string"', "no list of packages; skipped"),
        (b'{"packages": {"a": 1}}', "packages is not a list; skipped"),
        (b"{}", "no list of packages; skipped"),
    ],
)
def test_installed_hostile_is_a_warning(data: bytes, message: str) -> None:
    packages, warnings = extract({INSTALLED: data})
    assert packages == [] and len(warnings) == 1 and message in warnings[0]


def test_lockfile_without_packages_is_empty() -> None:
    assert extract({LOCK: b'{"packages-dev": []}'}) == ([], [])


def test_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    out = PhpDetector().extract(MemoryFileSet({INSTALLED: deep}), DetectContext())
    assert out.packages == [] and "recursion limit" in str(out.incomplete[0])
    monkeypatch.setattr(php, "MAX_ENTRIES", 1)
    out = PhpDetector().extract(
        MemoryFileSet({INSTALLED: fixture("installed-composer1", "installed.json")}), DetectContext()
    )
    assert out.packages == [] and [str(w) for w in out.incomplete] == [f"{INSTALLED}: more than 1 packages; not read"]
    monkeypatch.undo()
    lock = fixture("lockfiles", "trivy-composer-happy.lock")
    out = PhpDetector().extract(MemoryFileSet({LOCK: lock}), DetectContext(limits=Limits(max_package_db_bytes=1000)))
    assert out.packages == [] and "max_package_db_bytes" in str(out.incomplete[0])
    out = PhpDetector().extract(MemoryFileSet({LOCK: lock}), DetectContext(packages_left=3))
    assert len(out.packages) == 3 and "max_packages" in str(out.incomplete[0])
