"""RustDetector: Cargo.lock v1/v3/v4 and `cargo auditable` programs, on peers' real test data (see
tests/fixtures/rust/SOURCES.md), and hostile variants of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.inventory.detectors import rust
from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet
from scanner.inventory.detectors.golang import elf_section
from scanner.inventory.detectors.rust import RustDetector
from scanner.model.limits import Limits
from tests.inventory.detectors.in_place import both_ways

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rust"
DETECTOR = RustDetector()
SERDE_JSON_CRATES = [
    ("itoa", "1.0.14"),
    ("memchr", "2.7.4"),
    ("proc-macro2", "1.0.92"),
    ("quote", "1.0.38"),
    ("ryu", "1.0.18"),
    ("serde", "1.0.217"),
    ("serde_derive", "1.0.217"),
    ("serde_json", "1.0.135"),
    ("syn", "2.0.95"),
    ("unicode-ident", "1.0.14"),
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def extract(files: dict[str, bytes], ctx: DetectContext | None = None) -> Extraction:
    return DETECTOR.extract(MemoryFileSet(files), ctx or DetectContext())


def crates(out: Extraction) -> list[tuple[str, str]]:
    return [(p.name, p.version) for p in out.packages]


def test_plugin_identity() -> None:
    assert (DETECTOR.name, DETECTOR.version, DETECTOR.group, DETECTOR.per_file) == ("rust", 1, "language", True)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/app/Cargo.lock", True),
        ("/src/workspace/Cargo.lock", True),
        ("/Cargo.lock", True),
        ("/usr/local/bin/ripgrep", True),
        ("/app/server", True),
        ("/server", True),
        # Downloaded crates' own lockfiles say what their authors built with.
        ("/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/regex-1.11.1/Cargo.lock", False),
        ("/usr/local/cargo/git/checkouts/x-1a2b/0c1d2e3/Cargo.lock", False),  # CARGO_HOME of rust images
        ("/usr/local/cargo/registry/src/index.crates.io-6f17d22bba15001f/x-1.0.0/Cargo.lock", False),
        ("/home/builder/.cargo/git/checkouts/x/Cargo.lock", False),
        ("/src/cargo/Cargo.lock", True),
        ("/usr/share/cargo/registry/regex-1.10.2/Cargo.lock", False),
        ("/src/app/Cargo.toml", False),
        ("/src/app/Cargo.lock.orig", False),
        # Wanted as any program is (kept only when ELF); an OS package's own is dropped by the analysis.
        ("/usr/bin/ls", True),
        ("/usr/lib/x86_64-linux-gnu/libssl.so.3", False),
        ("/app/target/release/deps/libfoo.rlib", False),
    ],
)
def test_required(path: str, wanted: bool) -> None:
    assert DETECTOR.required(path) is wanted


def test_lockfile_v1() -> None:
    out = extract({"/app/Cargo.lock": fixture("v1-many.lock")})
    # `normal`, the workspace's own crate, has no source and is not reported.
    assert crates(out) == [
        ("libc", "0.2.54"),
        ("unsafe-any", "0.4.2"),
        ("typemap", "0.3.3"),
        ("idna", "0.1.5"),
        ("matches", "0.1.8"),
        ("percent-encoding", "1.0.1"),
        ("url", "1.7.2"),
    ]
    assert not out.warnings and not out.incomplete


def test_lockfile_v3_keeps_every_version_of_a_crate() -> None:
    out = extract({"/app/Cargo.lock": fixture("v3-many.lock")})
    assert ("memchr", "1.0.2") in crates(out) and ("memchr", "2.5.0") in crates(out)
    assert ("regex-syntax", "0.5.6") in crates(out) and ("regex-syntax", "0.6.29") in crates(out)
    assert len(crates(out)) == 8


def test_lockfile_v4_packages_are_crates_io_lockfile_packages() -> None:
    out = extract({"/app/Cargo.lock": fixture("v4.lock")})
    assert ("serde", "1.0.215") in crates(out)
    assert "hello_world" not in [name for name, _ in crates(out)]  # the application itself
    serde = next(p for p in out.packages if p.name == "serde")
    assert serde.ecosystem == "crates.io"
    assert serde.purl == "pkg:cargo/serde@1.0.215"
    assert serde.kind == "cargo"
    assert serde.evidence == "lockfile"
    assert serde.locations == ("/app/Cargo.lock",)


def test_workspace_members_and_path_dependencies_are_the_applications_code() -> None:
    out = extract({"/app/Cargo.lock": fixture("workspace-path-deps.lock")})
    assert crates(out) == [("memchr", "2.7.4")]  # not `app`, not the path dependency `telemetry`
    out = extract({"/app/Cargo.lock": fixture("single-with-local.lock")})
    assert crates(out) == [("addr2line", "0.15.2")]  # not `local-rust-pkg`


def test_git_dependencies_are_not_crates_io_releases() -> None:
    out = extract({"/app/Cargo.lock": fixture("git-deps.lock")})
    # regex 1.11.1 is there twice, from crates.io and from git: reported once, for the crates.io one.
    assert crates(out).count(("regex", "1.11.1")) == 1
    git_only = b'version = 3\n[[package]]\nname = "regex"\nversion = "1.11.1"\nsource = "git+https://x/regex.git#1a"\n'
    assert crates(extract({"/app/Cargo.lock": git_only})) == []
    other_registry = b'[[package]]\nname = "x"\nversion = "1.0.0"\nsource = "registry+https://example.com/index"\n'
    assert crates(extract({"/app/Cargo.lock": other_registry})) == []
    sparse = b'[[package]]\nname = "x"\nversion = "1.0.0"\nsource = "sparse+https://index.crates.io/"\n'
    assert crates(extract({"/app/Cargo.lock": sparse})) == [("x", "1.0.0")]


def test_empty_lockfile() -> None:
    out = extract({"/app/Cargo.lock": fixture("empty.lock")})
    assert (out.packages, out.warnings, out.incomplete) == ([], [], [])


@pytest.mark.parametrize("name", ["invalid.lock", "not-toml.lock"])
def test_a_lockfile_that_does_not_parse_is_incomplete(name: str) -> None:
    out = extract({"/app/Cargo.lock": fixture(name)})
    assert out.packages == []
    assert len(out.incomplete) == 1
    assert out.incomplete[0].where == "/app/Cargo.lock"
    assert "not a Cargo.lock" in out.incomplete[0].message


def test_bad_entries_are_warnings_beside_the_good_ones() -> None:
    lock = (
        b'version = 4\npackage = [{name = "ok", version = "1.0.0", source = "sparse+https://index.crates.io/"},'
        b' {name = "no version", source = "sparse+https://index.crates.io/"}, {name = "n", version = 3}]\n'
    )
    out = extract({"/app/Cargo.lock": lock})
    assert crates(out) == [("ok", "1.0.0")]
    assert len(out.warnings) == 2
    assert extract({"/app/Cargo.lock": b'package = "x"\n'}).incomplete
    assert extract({"/app/Cargo.lock": b"version = 9\n"}).warnings  # unknown format: read as best we can


def test_lockfile_bounds() -> None:
    data = fixture("v3-many.lock")
    out = extract({"/app/Cargo.lock": data}, DetectContext(limits=Limits(max_package_db_bytes=len(data) - 1)))
    assert out.packages == [] and "max_package_db_bytes" in out.incomplete[0].message
    out = extract({"/app/Cargo.lock": data}, DetectContext(packages_left=3))
    assert len(out.packages) == 3 and "max_packages" in out.incomplete[0].message
    deep = b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"
    assert extract({"/app/Cargo.lock": deep}).incomplete


def test_lockfile_entry_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rust, "MAX_LOCK_ENTRIES", 5)
    out = extract({"/app/Cargo.lock": fixture("v3-many.lock")})
    assert out.packages == [] and "over the limit of 5" in out.incomplete[0].message


def test_auditable_binary() -> None:
    out = extract({"/usr/local/bin/uses_json": fixture("auditable-serde-json")})
    # `uses_json` itself has source "local": the program, not a dependency.
    assert crates(out) == SERDE_JSON_CRATES
    assert {p.evidence for p in out.packages} == {"binary"}
    assert {p.locations for p in out.packages} == {("/usr/local/bin/uses_json",)}
    assert out.packages[7].purl == "pkg:cargo/serde_json@1.0.135"
    assert not out.warnings and not out.incomplete


def test_binaries_without_dependencies_or_section_or_elf_are_silent() -> None:
    out = extract(
        {
            "/app/no_deps": fixture("auditable-no-deps"),
            "/app/script": fixture("not-binary"),
            "/app/truncated": fixture("auditable-serde-json")[:4096],
        }
    )
    assert (out.packages, out.warnings, out.incomplete) == ([], [], [])


def _with_section(content: bytes) -> bytes:
    """The real auditable program with its `.dep-v0` section's bytes replaced (same length, zero padded)."""
    binary = bytearray(fixture("auditable-serde-json"))
    section = elf_section(bytes(binary), b".dep-v0")
    assert section is not None and section[1] > 0
    offset, size = section
    assert len(content) <= size
    binary[offset : offset + size] = content.ljust(size, b"\0")
    return bytes(binary)


def test_hostile_sections_are_incomplete() -> None:
    import zlib

    cases = {
        b"not zlib at all": "not zlib",
        zlib.compress(b"{not json"): "not JSON",
        zlib.compress(b'{"packages": 3}'): "no `packages` array",
        zlib.compress(b"[" * 100_000): "",
    }
    for content, message in cases.items():
        out = extract({"/app/x": _with_section(content)})
        assert out.packages == [] and len(out.incomplete) == 1, content
        assert message in out.incomplete[0].message


def test_decompressed_size_is_bounded() -> None:
    import zlib

    bomb = zlib.compress(b'{"packages":[' + b" " * 200_000 + b"]}", 9)
    out = extract({"/app/x": _with_section(bomb)}, DetectContext(limits=Limits(max_package_db_bytes=10_000)))
    assert out.packages == [] and "max_package_db_bytes" in out.incomplete[0].message
    # The real section is read under a bound it fits in, and stops at the image's package budget.
    out = extract({"/app/x": fixture("auditable-serde-json")}, DetectContext(packages_left=2))
    assert len(out.packages) == 2 and "max_packages" in out.incomplete[0].message


def test_build_dependencies_and_bad_entries() -> None:
    import zlib

    document = (
        b'{"packages":[{"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"},'
        b'{"name":"libc","version":"0.2.1","source":"crates.io","kind":"runtime"},'
        b'{"name":"g","version":"1.0.0","source":"git"},{"name":"x"},7]}'
    )
    out = extract({"/app/x": _with_section(zlib.compress(document))})
    assert crates(out) == [("libc", "0.2.1")]
    assert len(out.warnings) == 2


def test_programs_read_in_place_give_what_their_bytes_give(tmp_path: Path) -> None:
    """A program of a layer read in place is a view into a map of the layer's file (a memoryview): the same
    crates, warnings and incompleteness as from its bytes."""
    files = {
        "/usr/local/bin/uses_json": fixture("auditable-serde-json"),
        "/app/no_deps": fixture("auditable-no-deps"),
        "/app/truncated": fixture("auditable-serde-json")[:4096],
        "/app/hostile": _with_section(b"not zlib at all"),
    }
    mapped, plain = both_ways(DETECTOR, files, tmp_path)
    assert mapped == plain
    assert crates(plain) == SERDE_JSON_CRATES and plain.incomplete
