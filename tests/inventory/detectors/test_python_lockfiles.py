"""PythonDetector on lockfiles (poetry.lock, uv.lock, Pipfile.lock) and zipped eggs: real files from trivy,
syft and osv-scalibr (tests/fixtures/python-lockfiles/SOURCES.md), expected values transcribed from their
tests, and hand-made broken ones."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet
from scanner.inventory.detectors.python import MAX_EGG_ENTRIES, PythonDetector
from scanner.model.limits import Limits

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "python-lockfiles"
SITE = "/usr/local/lib/python3.10/site-packages"

# trivy uv/parse_testcase.go `uvNormal` without the root ("normal") and without `Dev: true` packages.
UV_NORMAL_RUNTIME = [
    ("anyio", "4.7.0"),
    ("certifi", "2024.12.14"),
    ("charset-normalizer", "3.4.0"),
    ("exceptiongroup", "1.2.2"),
    ("h11", "0.14.0"),
    ("httpcore", "1.0.7"),
    ("httpx", "0.28.1"),
    ("idna", "3.10"),
    ("orjson", "3.10.12"),
    ("requests", "2.32.0"),
    ("sniffio", "1.3.1"),
    ("socksio", "1.0.0"),  # reached only through httpx's `socks` extra
    ("typing-extensions", "4.12.2"),
    ("urllib3", "2.2.3"),
]
# trivy poetry/parse_testcase.go `poetryFlask` without its `Dev: true` packages.
POETRY_FLASK_MAIN = [
    ("click", "8.1.8"),
    ("colorama", "0.4.6"),
    ("flask", "1.0.3"),
    ("itsdangerous", "2.2.0"),
    ("jinja2", "3.1.5"),
    ("markupsafe", "3.0.2"),
    ("pluggy", "0.13.1"),
    ("werkzeug", "3.1.3"),
]
# trivy pipenv/parse_testcase.go `pipenvNormal`.
PIPENV_NORMAL = [
    ("certifi", "2019.3.9"),
    ("chardet", "3.0.4"),
    ("idna", "2.8"),
    ("pyyaml", "5.1"),
    ("requests", "2.21.0"),
    ("urllib3", "1.24.2"),
]


def extract(files: dict[str, bytes], limits: Limits | None = None) -> Extraction:
    detector = PythonDetector()
    wanted = {path: data for path, data in files.items() if detector.required(path)}
    return detector.extract(MemoryFileSet(wanted), DetectContext(limits=limits or Limits()))


def pairs(out: Extraction) -> list[tuple[str, str]]:
    return sorted((p.name, p.version) for p in out.packages)


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/app/poetry.lock", True),
        ("/srv/project/uv.lock", True),
        ("/Pipfile.lock", True),
        ("/app/Pipfile", False),
        ("/app/pyproject.toml", False),
        ("/app/my-poetry.lock", False),
        # Some installed project's test data, not this image's resolution.
        (f"{SITE}/poetry/tests/fixtures/poetry.lock", False),
        (f"{SITE}/monotonic-1.6-py3.10.egg", True),
        ("/home/user/monotonic-1.6-py3.10.egg", False),
    ],
)
def test_required(path: str, wanted: bool) -> None:
    assert PythonDetector().required(path) is wanted


# ---------------------------------------------------------------- uv.lock


def test_uv_normal_keeps_what_the_project_needs_at_run_time() -> None:
    out = extract({"/app/uv.lock": fixture("trivy/uv_normal.lock")})
    assert pairs(out) == UV_NORMAL_RUNTIME
    assert out.warnings == [] and out.incomplete == []
    package = next(p for p in out.packages if p.name == "requests")
    assert package.evidence == "lockfile"
    assert package.ecosystem == "PyPI" and package.kind == "pypi"
    assert package.purl == "pkg:pypi/requests@2.32.0"
    assert package.locations == ("/app/uv.lock",)
    assert dict(package.metadata) == {"lockfile": "uv"}


def test_uv_project_itself_is_not_a_package() -> None:
    names = [p.name for p in extract({"/app/uv.lock": fixture("trivy/uv_normal.lock")}).packages]
    assert "normal" not in names  # `source = { virtual = "." }`


def test_uv_without_a_project_keeps_every_package() -> None:
    assert pairs(extract({"/app/uv.lock": fixture("trivy/uv_without_root.lock")})) == [("asyncio", "3.4.3")]


def test_uv_workspace_of_two_projects() -> None:
    out = extract({"/app/uv.lock": fixture("trivy/uv_multiple_roots.lock")})
    assert pairs(out) == [("asyncio", "3.4.3")]  # foo and bar are the projects


def test_uv_simple_deps_from_syft() -> None:
    out = extract({"/app/uv.lock": fixture("syft/uv/simple-deps/uv.lock")})
    assert pairs(out) == [
        ("certifi", "2025.1.31"),
        ("charset-normalizer", "3.4.1"),
        ("idna", "3.10"),
        ("requests", "2.32.3"),
        ("urllib3", "2.3.0"),
    ]


# ---------------------------------------------------------------- poetry.lock


def test_poetry_lock_2_1_groups_keep_main_only() -> None:
    out = extract({"/app/poetry.lock": fixture("trivy/poetry_v2_flask.lock")})
    assert pairs(out) == POETRY_FLASK_MAIN
    assert {p.evidence for p in out.packages} == {"lockfile"}


def test_poetry_lock_1_categories_keep_main_only() -> None:
    assert pairs(extract({"/app/poetry.lock": fixture("trivy/poetry_flask.lock")})) == POETRY_FLASK_MAIN


def test_poetry_single_package() -> None:
    out = extract({"/app/poetry.lock": fixture("trivy/poetry_normal.lock")})
    assert pairs(out) == [("pypi", "2.1")]
    assert dict(out.packages[0].metadata) == {"lockfile": "poetry"}


def test_poetry_only_dev_packages_give_none() -> None:
    out = extract({"/app/poetry.lock": fixture("syft/poetry/dev-deps/poetry.lock")})
    assert out.packages == [] and out.warnings == [] and out.incomplete == []


def test_poetry_lock_2_0_without_categories_keeps_every_package() -> None:
    out = extract({"/app/poetry.lock": fixture("syft/poetry/simple-deps/poetry.lock")})
    assert pairs(out) == [
        ("certifi", "2024.2.2"),
        ("charset-normalizer", "3.3.2"),
        ("idna", "3.7"),
        ("requests", "2.32.2"),
        ("urllib3", "2.2.1"),
    ]


# ---------------------------------------------------------------- Pipfile.lock


def test_pipfile_default_section() -> None:
    out = extract({"/app/Pipfile.lock": fixture("trivy/Pipfile_normal.lock")})
    assert pairs(out) == PIPENV_NORMAL
    assert dict(out.packages[0].metadata) == {"lockfile": "pipenv"}


def test_pipfile_develop_section_is_left_out() -> None:
    names = {p.name for p in extract({"/app/Pipfile.lock": fixture("syft/pipfile-lock/Pipfile.lock")}).packages}
    assert names == {"aio-pika", "aiodns", "aiohttp", "aiohttp-jinja2"}  # not astroid, autopep8 (develop)


def test_pipfile_many() -> None:
    out = extract({"/app/Pipfile.lock": fixture("trivy/Pipfile_many.lock")})
    assert len(out.packages) == 24
    assert ("django", "2.2") in pairs(out)


def test_pipfile_git_dependency_has_no_version_and_is_skipped() -> None:
    lock = (
        b'{"default": {"mylib": {"git": "https://example.org/mylib.git", "ref": "abc"},'
        b' "six": {"version": "==1.16.0"}}}'
    )
    assert pairs(extract({"/app/Pipfile.lock": lock})) == [("six", "1.16.0")]


# ---------------------------------------------------------------- empty, invalid, hostile


@pytest.mark.parametrize("name", ["poetry.lock", "uv.lock"])
def test_empty_toml_lockfile_gives_nothing(name: str) -> None:
    out = extract({f"/app/{name}": b""})
    assert out.packages == [] and out.warnings == [] and out.incomplete == []


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("poetry.lock", b"[[package]\nname = "),
        ("uv.lock", b"\xff\xfe not utf-8"),
        ("Pipfile.lock", b"{"),
        ("Pipfile.lock", b"[1, 2]"),
        ("uv.lock", b"x = " + b"[" * 100_000 + b"]" * 100_000),
    ],
)
def test_unparseable_lockfile_is_incomplete(name: str, data: bytes) -> None:
    out = extract({f"/app/{name}": data, "/app/other/poetry.lock": fixture("trivy/poetry_normal.lock")})
    assert [w.where for w in out.incomplete] == [f"/app/{name}"]
    assert pairs(out) == [("pypi", "2.1")]  # the other lockfile is still read


def test_bad_entries_are_warnings() -> None:
    lock = (
        b'[[package]]\nname = "ok"\nversion = "1.0"\n\n[[package]]\nname = "no-version"\n\n'
        b'[[package]]\nname = "bad name!"\nversion = "1"\n'
    )
    out = extract({"/app/poetry.lock": lock})
    assert pairs(out) == [("ok", "1.0")]
    assert [w.message for w in out.warnings] == [
        "package no-version without a version; skipped",
        "invalid project name 'bad name!'; skipped",
    ]


def test_lockfile_over_the_byte_bound_is_not_read() -> None:
    out = extract({"/app/uv.lock": fixture("trivy/uv_normal.lock")}, Limits(max_package_db_bytes=1000))
    assert out.packages == []
    assert "max_package_db_bytes" in out.incomplete[0].message


def test_packages_past_the_image_budget_are_incomplete() -> None:
    out = extract({"/app/uv.lock": fixture("trivy/uv_normal.lock")}, Limits(max_packages=3))
    assert len(out.packages) == 3
    assert "max_packages" in out.incomplete[0].message


# ---------------------------------------------------------------- zipped eggs


def test_zipped_egg_is_read_from_its_pkg_info() -> None:
    path = f"{SITE}/monotonic-1.6-py3.10.egg"
    out = extract({path: fixture("osv-scalibr/monotonic-1.6-py3.10.egg")})
    assert pairs(out) == [("monotonic", "1.6")]
    package = out.packages[0]
    assert package.evidence == "installed"
    assert package.locations == (path,)
    assert package.purl == "pkg:pypi/monotonic@1.6"
    assert dict(package.metadata) == {"metadata_version": "2.1", "license": "Apache"}


def test_zipped_egg_without_pkg_info_is_a_warning() -> None:
    path = f"{SITE}/monotonic_no_pkginfo-1.6-py3.10.egg"
    out = extract({path: fixture("osv-scalibr/monotonic_no_pkginfo-1.6-py3.10.egg")})
    assert out.packages == [] and out.incomplete == []
    assert [w.message for w in out.warnings] == ["zipped egg without EGG-INFO/PKG-INFO; skipped"]


def test_egg_that_is_not_a_zip_is_a_warning() -> None:
    out = extract({f"{SITE}/broken-1.0-py3.10.egg": b"PK\x03\x04 truncated"})
    assert out.packages == [] and out.incomplete == []
    assert "not a readable zip archive" in out.warnings[0].message


def test_egg_with_too_many_entries_is_incomplete() -> None:
    # A real egg whose end-of-central-directory record claims more entries than the bound.
    data = bytearray(fixture("osv-scalibr/monotonic-1.6-py3.10.egg"))
    end = data.rfind(b"PK\x05\x06")
    data[end + 10 : end + 12] = (MAX_EGG_ENTRIES + 1).to_bytes(2, "little") if MAX_EGG_ENTRIES < 0xFFFE else b"\xff\xff"
    out = extract({f"{SITE}/monotonic-1.6-py3.10.egg": bytes(data)})
    assert out.packages == []
    assert "zip entries" in out.incomplete[0].message


def test_egg_with_a_pkg_info_bomb_is_incomplete() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("EGG-INFO/PKG-INFO", b"Name: bomb\nVersion: 1\n" + b" " * (2 * 1024 * 1024))
    out = extract({f"{SITE}/bomb-1-py3.10.egg": buffer.getvalue()})
    assert out.packages == []
    assert "larger than" in out.incomplete[0].message
