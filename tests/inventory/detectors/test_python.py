"""PythonDetector: path selection and core-metadata parsing, on real metadata files (see
tests/fixtures/python/SOURCES.md) and on hand-made broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.ecosystems.languages import pep503_name
from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.python import PythonDetector
from scanner.model.limits import Limits
from scanner.model.types import RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "python"
SITE = "/usr/local/lib/python3.11/site-packages"
DIST = "/usr/lib/python3/dist-packages"


def fixture_tree() -> dict[str, bytes]:
    """The fixture directory as image paths (`fixtures/python/usr/...` -> `/usr/...`)."""
    return {
        "/" + path.relative_to(FIXTURES).as_posix(): path.read_bytes()
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.name != "SOURCES.md"
    }


def extract(files: dict[str, bytes]) -> tuple[list[RawPackage], list[str]]:
    out = PythonDetector().extract(MemoryFileSet(files), DetectContext())
    return out.packages, [str(w) for w in out.warnings]


def pypi(name: str, version: str, purl: str, location: str, *meta: tuple[str, str]) -> RawPackage:
    return RawPackage(
        name=name,
        version=version,
        ecosystem="PyPI",
        purl=purl,
        source_name=name,
        source_version=version,
        locations=(location,),
        kind="pypi",
        metadata=meta,
    )


def test_plugin_identity() -> None:
    detector = PythonDetector()
    assert (detector.name, detector.version, detector.group) == ("python", 2, "language")
    assert detector.ident == "python@2"


@pytest.mark.parametrize(
    "path",
    [
        f"{SITE}/six-1.17.0.dist-info/METADATA",
        f"{DIST}/six-1.16.0.egg-info/PKG-INFO",
        f"{DIST}/selinux-3.4.egg-info",
        "/usr/lib/python2.7/dist-packages/foo-1.0.egg-info",
        "/opt/venv/lib/python3.12/site-packages/requests-2.32.3.dist-info/METADATA",
        "/root/.local/lib/python3.11/site-packages/rich-13.0.0.dist-info/METADATA",
        "/opt/conda/lib/python3.11/site-packages/conda-24.1.0.dist-info/METADATA",
        "/usr/lib64/python3.9/site-packages/rpm-4.16.1.3-py3.9.egg-info",
        "/usr/local/lib/python3.8/site-packages/foo-1.0-py3.8.egg/EGG-INFO/PKG-INFO",
        # Vendored distributions are code in the image too.
        f"{SITE}/setuptools/_vendor/packaging-24.2.dist-info/METADATA",
    ],
)
def test_required_accepts(path: str) -> None:
    assert PythonDetector().required(path)


@pytest.mark.parametrize(
    "path",
    [
        f"{SITE}/six-1.17.0.dist-info/RECORD",
        f"{SITE}/six-1.17.0.dist-info/WHEEL",
        f"{SITE}/six-1.17.0.dist-info/LICENSE",
        f"{SITE}/six.py",
        f"{DIST}/six-1.16.0.egg-info/top_level.txt",
        f"{DIST}/six-1.16.0.egg-info/requires.txt",
        # Not under site-packages/dist-packages: a source tree or build directory, not an install.
        "/src/six-1.17.0.dist-info/METADATA",
        "/build/foo.egg-info/PKG-INFO",
        "/app/foo.egg-info",
        # Right directory, wrong parent.
        f"{SITE}/foo/METADATA",
        f"{SITE}/foo/PKG-INFO",
        f"{SITE}/foo-1.0.tar.gz/PKG-INFO",
        f"{SITE}/foo-1.0.dist-info/METADATA.json",
        f"{SITE}/foo-1.0.egg-info.bak",
        # Look-alike directory names are not site directories.
        "/usr/lib/python3/site-packages-old/foo-1.0.dist-info/METADATA.bak",
        "/usr/lib/python3/mysite-packages.d/foo-1.0.dist-info/METADATA",
        "/etc/os-release",
        "/",
    ],
)
def test_required_rejects(path: str) -> None:
    assert not PythonDetector().required(path)


def test_real_site_and_dist_packages() -> None:
    files = fixture_tree()
    # Files beside the metadata are handed over too when another detector wants them; ignored here.
    files[f"{SITE}/six-1.17.0.dist-info/RECORD"] = b"six.py,sha256=abc,1000\n"
    packages, warnings = extract(files)
    assert warnings == []
    assert packages == [
        pypi(
            "rpm",
            "4.18.0",
            "pkg:pypi/rpm@4.18.0",
            f"{DIST}/rpm-4.18.0.egg-info",
            ("metadata_version", "1.0"),
            ("license", "GNU General Public License v2"),
        ),
        # License: UNKNOWN is setuptools' "not given": not kept.
        pypi(
            "selinux",
            "3.4",
            "pkg:pypi/selinux@3.4",
            f"{DIST}/selinux-3.4.egg-info",
            ("metadata_version", "1.0"),
        ),
        pypi(
            "six",
            "1.16.0",
            "pkg:pypi/six@1.16.0",
            f"{DIST}/six-1.16.0.egg-info/PKG-INFO",
            ("metadata_version", "2.1"),
            ("license", "MIT"),
        ),
        pypi(
            "boolean.py",
            "5.0",
            "pkg:pypi/boolean-py@5.0",
            f"{SITE}/boolean_py-5.0.dist-info/METADATA",
            ("metadata_version", "2.4"),
            ("license", "BSD-2-Clause"),
        ),
        pypi(
            "MarkupSafe",
            "3.0.4",
            "pkg:pypi/markupsafe@3.0.4",
            f"{SITE}/markupsafe-3.0.4.dist-info/METADATA",
            ("metadata_version", "2.4"),
            ("license", "BSD-3-Clause"),
        ),
        pypi(
            "mypy_extensions",
            "1.2.0",
            "pkg:pypi/mypy-extensions@1.2.0",
            f"{SITE}/mypy_extensions-1.2.0.dist-info/METADATA",
            ("metadata_version", "2.5"),
            ("license", "MIT"),
        ),
        pypi(
            "PyJWT",
            "2.15.1",
            "pkg:pypi/pyjwt@2.15.1",
            f"{SITE}/pyjwt-2.15.1.dist-info/METADATA",
            ("metadata_version", "2.4"),
            ("license", "MIT"),
        ),
        pypi(
            "six",
            "1.17.0",
            "pkg:pypi/six@1.17.0",
            f"{SITE}/six-1.17.0.dist-info/METADATA",
            ("metadata_version", "2.1"),
            ("license", "MIT"),
        ),
    ]


@pytest.mark.parametrize(
    ("declared", "normalised"),
    [
        ("six", "six"),
        ("MarkupSafe", "markupsafe"),
        ("boolean.py", "boolean-py"),
        ("mypy_extensions", "mypy-extensions"),
        ("Foo.._-Bar", "foo-bar"),
        ("zope.interface", "zope-interface"),
    ],
)
def test_pep503_normalisation(declared: str, normalised: str) -> None:
    assert pep503_name(declared) == normalised


def one(data: bytes, path: str = f"{SITE}/x-1.0.dist-info/METADATA") -> tuple[list[RawPackage], list[str]]:
    return extract({path: data})


def test_crlf_bom_continuations_and_repeated_fields() -> None:
    data = (
        b"\xef\xbb\xbfMetadata-Version: 1.1\r\n"
        b"Name: Foo_Bar\r\n"
        b"Version: 2.0.post1+local\r\n"
        b"Description: a long\r\n"
        b"        folded description: with colons\r\n"
        b"License: Apache 2.0\r\n"
        b"License: a second License field is ignored\r\n"
        b"Version: 9.9\r\n"
        b"\r\n"
        b"Name: body text, not a header\r\n"
    )
    packages, warnings = one(data)
    assert warnings == []
    assert [(p.name, p.version, p.purl, p.metadata) for p in packages] == [
        (
            "Foo_Bar",
            "2.0.post1+local",
            "pkg:pypi/foo-bar@2.0.post1%2Blocal",
            (("metadata_version", "1.1"), ("license", "Apache 2.0")),
        )
    ]


def test_license_expression_wins_and_licence_texts_are_dropped() -> None:
    both = b"Name: a\nVersion: 1\nLicense: MIT License\nLicense-Expression: MIT OR Apache-2.0\n"
    assert one(both)[0][0].metadata == (("license", "MIT OR Apache-2.0"),)
    text = b"Name: a\nVersion: 1\nLicense: Copyright (c) someone\n        Permission is hereby granted\n"
    assert one(text)[0][0].metadata == ()
    assert one(b"Name: a\nVersion: 1\nLicense: " + b"x" * 500 + b"\n")[0][0].metadata == ()


def test_latin1_metadata_is_read_with_a_warning() -> None:
    path = f"{DIST}/foo-1.0.egg-info"
    packages, warnings = one(b"Metadata-Version: 1.0\nName: foo\nVersion: 1.0\nAuthor: Jos\xe9\n", path)
    assert [(p.name, p.version, p.locations) for p in packages] == [("foo", "1.0", (path,))]
    assert warnings == [f"{path}: metadata is not valid UTF-8; read as Latin-1"]


def test_invalid_utf8_in_the_description_body_costs_nothing() -> None:
    packages, warnings = one(b"Name: foo\nVersion: 1.0\n\nDescription body \xff\xfe\n")
    assert [p.name for p in packages] == ["foo"]
    assert warnings == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Metadata-Version: 2.1\nVersion: 1.0\n", "metadata has no Name; skipped"),
        (b"Metadata-Version: 2.1\nName: foo\n", "metadata has no Version; skipped"),
        (b"", "metadata has no Name and Version; skipped"),
        (b"\x00\x01\x02\xff\xfe binary garbage", "metadata has no Name and Version; skipped"),
        # The Version after the blank line is in the body, not a header.
        (b"Name: foo\n\nVersion: 1.0\n", "metadata has no Version; skipped"),
        # A non-header line ends the header block, as in email.parser.
        (b"Name: foo\nthis is not a header\nVersion: 1.0\n", "metadata has no Version; skipped"),
        (b"Name: foo bar\nVersion: 1.0\n", "invalid project name 'foo bar'; skipped"),
        (b"Name: -foo\nVersion: 1.0\n", "invalid project name '-foo'; skipped"),
        (b"Name: foo\nVersion: 1.0 beta\n", "invalid version '1.0 beta' for foo; skipped"),
        (b"Name: foo\nVersion: 1.\xc3\xa9\n", "invalid version '1.\xe9' for foo; skipped"),
    ],
)
def test_unusable_metadata_is_skipped_with_a_warning(data: bytes, message: str) -> None:
    path = f"{SITE}/foo-1.0.dist-info/METADATA"
    packages, warnings = one(data, path)
    assert packages == []
    assert warnings == [f"{path}: {message}"]


def test_one_bad_file_does_not_hide_the_others() -> None:
    files = fixture_tree()
    files[f"{SITE}/broken-1.0.dist-info/METADATA"] = b"garbage"
    packages, warnings = extract(files)
    assert len(packages) == 8
    assert warnings == [f"{SITE}/broken-1.0.dist-info/METADATA: metadata has no Name and Version; skipped"]


def test_files_not_required_are_ignored() -> None:
    files = {
        "/etc/os-release": b"ID=debian\n",
        "/src/foo-1.0.dist-info/METADATA": b"Name: foo\nVersion: 1.0\n",
    }
    assert extract(files) == ([], [])


def test_metadata_over_the_byte_bound_is_incomplete_and_the_others_are_read() -> None:
    big = "/usr/lib/python3/site-packages/big-1.0.dist-info/METADATA"
    small = "/usr/lib/python3/site-packages/small-1.0.dist-info/METADATA"
    data = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n" + b"x" * 100
    files = MemoryFileSet({big: data, small: b"Name: small\nVersion: 1.0\n"})
    out = PythonDetector().extract(files, DetectContext(limits=Limits(max_package_db_bytes=len(data) - 1)))
    assert [p.name for p in out.packages] == ["small"] and out.warnings == []
    assert [str(w) for w in out.incomplete] == [
        f"{big}: {len(data)} bytes, over the limit of {len(data) - 1} (limit max_package_db_bytes)"
    ]
