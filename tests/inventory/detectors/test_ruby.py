"""RubyDetector: path selection, installed gemspecs and Gemfile.lock files, on peers' real test data (see
tests/fixtures/ruby/SOURCES.md) and on hand-made hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.inventory.detectors import ruby
from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.plugins import default_registry
from scanner.inventory.detectors.ruby import RubyDetector
from scanner.model.limits import Limits
from scanner.model.types import RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ruby"
SPECS = "/usr/local/bundle/specifications"


def extract(files: dict[str, bytes], ctx: DetectContext | None = None) -> tuple[list[RawPackage], list[str]]:
    out = RubyDetector().extract(MemoryFileSet(files), ctx or DetectContext())
    assert out.incomplete == []
    return out.packages, [str(w) for w in out.warnings]


def brief(packages: list[RawPackage]) -> list[tuple[str, str, str, str]]:
    return [(p.name, p.version, p.purl, p.evidence) for p in packages]


def lockfile(name: str) -> bytes:
    return (FIXTURES / "lockfiles" / name).read_bytes()


def test_plugin_identity_and_registration() -> None:
    detector = RubyDetector()
    assert (detector.name, detector.version, detector.group, detector.ident) == ("ruby", 1, "language", "ruby@1")
    assert default_registry().get("ruby").ident == "ruby@1"


@pytest.mark.parametrize(
    "path",
    [
        "/usr/local/bundle/specifications/rails-7.0.8.gemspec",
        "/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
        "/var/lib/gems/3.1.0/specifications/nokogiri-1.16.0-x86_64-linux.gemspec",
        "/app/vendor/bundle/ruby/3.2.0/specifications/rack-3.0.8.gemspec",
        "/app/Gemfile.lock",
        "/Gemfile.lock",
        "/srv/app/gems.locked",
    ],
)
def test_required_accepts(path: str) -> None:
    assert RubyDetector().required(path)


@pytest.mark.parametrize(
    "path",
    [
        "/app/rails.gemspec",  # a gem's source gemspec: Ruby code to run, not an installed record
        "/usr/local/bundle/gems/rails-7.0.8/rails.gemspec",
        "/usr/local/bundle/specifications/rails-7.0.8.gemspec.bak",
        "/usr/local/bundle/gems/rake-13.0.3/Gemfile.lock",  # the gem author's own lockfile
        "/app/Gemfile",
        "/app/Gemfile.lock.orig",
    ],
)
def test_required_rejects(path: str) -> None:
    assert not RubyDetector().required(path)


def test_installed_specifications_many() -> None:
    files = {f"{SPECS}/{p.name}": p.read_bytes() for p in (FIXTURES / "specifications").iterdir()}
    packages, warnings = extract(files)
    assert warnings == []
    assert brief(packages) == [
        ("bundler", "2.1.4", "pkg:gem/bundler@2.1.4", "installed"),
        ("formatador", "1.1.0", "pkg:gem/formatador@1.1.0", "installed"),
        ("rake", "13.0.3", "pkg:gem/rake@13.0.3", "installed"),
        ("yaml", "0.2.1", "pkg:gem/yaml@0.2.1", "installed"),
    ]
    assert packages[0].ecosystem == "RubyGems" and packages[0].kind == "gem"
    assert packages[0].locations == (f"{SPECS}/bundler-2.1.4.gemspec",)
    assert dict(packages[3].metadata) == {"license": "Ruby, BSD-2-Clause"}


def test_installed_platform_gem_keeps_the_platform_out_of_the_version() -> None:
    name = "nokogiri-1.16.0-x86_64-linux.gemspec"
    path = FIXTURES / "rails-app" / SPECS.lstrip("/") / name
    packages, warnings = extract({f"{SPECS}/{name}": path.read_bytes()})
    assert warnings == []
    assert brief(packages) == [("nokogiri", "1.16.0", "pkg:gem/nokogiri@1.16.0", "installed")]
    assert dict(packages[0].metadata) == {"platform": "x86_64-linux", "license": "MIT"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("normal01", ("async", "1.25.0")),  # `spec.` as the block variable, a trailing comment
        ("license", ("async", "1.25.0")),
        ("multiple_licenses", ("test-unit", "3.3.7")),
    ],
)
def test_gemspec_single(case: str, expected: tuple[str, str]) -> None:
    packages, warnings = extract(
        {f"{SPECS}/{case}.gemspec": (FIXTURES / "gemspec-cases" / f"{case}.gemspec").read_bytes()}
    )
    assert warnings == [] and [(p.name, p.version) for p in packages] == [expected]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("malformed00", "gemspec has no literal name and version; skipped"),  # assigns to `s.`, block var is `spec`
        ("malformed01", "gemspec has no literal version; skipped"),
        ("invalid", "gemspec has no literal name and version; skipped"),
        ("badspec", "no Gem::Specification.new block; skipped"),
        # A source gemspec's version is Ruby code (a constant, a method): never run, so never known.
        ("version_inline", "gemspec has no literal version; skipped"),
        ("version_method", "gemspec has no literal version; skipped"),
    ],
)
def test_gemspec_invalid(case: str, message: str) -> None:
    path = f"{SPECS}/{case}.gemspec"
    packages, warnings = extract({path: (FIXTURES / "gemspec-cases" / f"{case}.gemspec").read_bytes()})
    assert packages == [] and warnings == [f"{path}: {message}"]


def test_gemspec_version_object_and_single_quotes() -> None:
    text = b"Gem::Specification.new do |s|\n  s.name = 'old'\n  s.version = Gem::Version.new(\"0.9.1\")\nend\n"
    packages, warnings = extract({f"{SPECS}/old-0.9.1.gemspec": text})
    assert warnings == [] and [(p.name, p.version) for p in packages] == [("old", "0.9.1")]


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b'Gem::Specification.new do |s|\n  s.name = "x; `rm -rf /`"\n  s.version = "1"\nend\n',
        b'Gem::Specification.new do |s|\n  s.name = "x"\n  s.version = "1.0 beta"\nend\n',
        b'Gem::Specification.new do |s|\n  s.name = "x"\n  s.version = "' + b"9" * 10_000 + b'"\nend\n',
    ],
)
def test_gemspec_hostile_is_a_warning(text: bytes) -> None:
    packages, warnings = extract({f"{SPECS}/x-1.gemspec": text})
    assert packages == [] and len(warnings) == 1 and warnings[0].startswith(f"{SPECS}/x-1.gemspec: ")
    assert len(warnings[0]) < 300


def test_lockfile_gem_sections_only_and_platform_stripped() -> None:
    packages, warnings = extract({"/app/Gemfile.lock": lockfile("many-git-path-platform.lock")})
    assert warnings == []
    names = [p.name for p in packages]
    assert len(packages) == 51 and names[0] == "actionmailer" and names[-1] == "unicorn"
    # PATH (google-cloud-errors), GIT (turbolinks) and the unknown BAD-SECTION are not RubyGems gems.
    assert not {"google-cloud-errors", "turbolinks", "bad-entry"} & set(names)
    assert {p.evidence for p in packages} == {"lockfile"} and {p.locations for p in packages} == {
        ("/app/Gemfile.lock",)
    }
    nokogiri = next(p for p in packages if p.name == "nokogiri")
    assert (nokogiri.version, nokogiri.purl) == ("1.16.0", "pkg:gem/nokogiri@1.16.0")
    assert dict(nokogiri.metadata) == {"platform": "x86_64-linux"}
    arel = next(p for p in packages if p.name == "arel")
    assert arel.version == "5.0.1.20140414130214"


def test_lockfile_bundler1_and_bundler2() -> None:
    packages, warnings = extract(
        {"/a/Gemfile.lock": lockfile("Gemfile_normal.lock"), "/b/gems.locked": lockfile("Gemfile_bundler2.lock")}
    )
    assert warnings == []
    assert [(p.locations[0], p.name, p.version) for p in packages][:2] == [
        ("/a/Gemfile.lock", "coderay", "1.1.2"),
        ("/a/Gemfile.lock", "concurrent-ruby", "1.1.5"),
    ]
    assert len(packages) == 7 + 8


def test_lockfile_source_section_at_end() -> None:
    packages, warnings = extract({"/app/Gemfile.lock": lockfile("scalibr-source-section-at-end.lock")})
    assert warnings == [] and [(p.name, p.version) for p in packages] == [("ast", "2.4.2")]


def test_lockfile_invalid_and_malformed() -> None:
    packages, warnings = extract(
        {"/a/Gemfile.lock": lockfile("scalibr-invalid.lock"), "/b/Gemfile.lock": lockfile("Gemfile_malformed.lock")}
    )
    assert packages == []
    assert warnings == [
        "/a/Gemfile.lock: malformed spec line 'invalid-name'; skipped",
        "/b/Gemfile.lock: not a Gemfile.lock (no GEM, GIT, PATH or PLATFORMS section); skipped",
    ]


def test_lockfile_empty() -> None:
    assert extract({"/app/Gemfile.lock": b""}) == ([], [])


def test_lockfile_one_gem_many_platforms_is_one_package() -> None:
    # What Bundler writes for `bundle lock --add-platform x86_64-darwin x86_64-linux` with nokogiri.
    text = (
        b"GEM\n  remote: https://rubygems.org/\n  specs:\n    mini_portile2 (2.8.4)\n    nokogiri (1.15.4)\n"
        b"      mini_portile2 (~> 2.8.2)\n      racc (~> 1.4)\n    nokogiri (1.15.4-x86_64-darwin)\n"
        b"      racc (~> 1.4)\n    nokogiri (1.15.4-x86_64-linux)\n      racc (~> 1.4)\n    racc (1.7.1)\n\n"
        b"PLATFORMS\n  ruby\n  x86_64-darwin\n  x86_64-linux\n\nDEPENDENCIES\n  nokogiri\n"
    )
    packages, warnings = extract({"/app/Gemfile.lock": text})
    assert warnings == []
    assert [(p.name, p.version, dict(p.metadata)) for p in packages] == [
        ("mini_portile2", "2.8.4", {}),
        ("nokogiri", "1.15.4", {"platform": "x86_64-darwin, x86_64-linux"}),
        ("racc", "1.7.1", {}),
    ]


def test_installed_and_locked_gem_agree_but_for_evidence() -> None:
    spec = (FIXTURES / "rails-app" / SPECS.lstrip("/") / "nokogiri-1.16.0-x86_64-linux.gemspec").read_bytes()
    packages, _ = extract(
        {
            f"{SPECS}/nokogiri-1.16.0-x86_64-linux.gemspec": spec,
            "/app/Gemfile.lock": lockfile("many-git-path-platform.lock"),
        }
    )
    both = [p for p in packages if p.name == "nokogiri"]
    assert {(p.name, p.version, p.purl, p.ecosystem) for p in both} == {
        ("nokogiri", "1.16.0", "pkg:gem/nokogiri@1.16.0", "RubyGems")
    }
    assert sorted(p.evidence for p in both) == ["installed", "lockfile"]


def test_lockfile_entry_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ruby, "MAX_LOCK_ENTRIES", 3)
    out = RubyDetector().extract(MemoryFileSet({"/app/Gemfile.lock": lockfile("Gemfile_normal.lock")}), DetectContext())
    assert [p.name for p in out.packages] == ["coderay", "concurrent-ruby", "dotenv"]
    assert [str(w) for w in out.incomplete] == ["/app/Gemfile.lock: more than 3 gems; the rest not read"]


def test_file_size_and_package_budget_bounds() -> None:
    limits = Limits(max_package_db_bytes=100)
    out = RubyDetector().extract(
        MemoryFileSet({"/app/Gemfile.lock": lockfile("Gemfile_normal.lock")}), DetectContext(limits=limits)
    )
    assert out.packages == [] and "max_package_db_bytes" in str(out.incomplete[0])
    out = RubyDetector().extract(
        MemoryFileSet({"/app/Gemfile.lock": lockfile("Gemfile_normal.lock")}), DetectContext(packages_left=2)
    )
    assert len(out.packages) == 2 and "max_packages" in str(out.incomplete[0])
