"""Differential tests against second implementations: node-semver, Maven's ComparableVersion, univers.

dpkg and rpm are the mandatory references (test_version_*_reference.py). These oracles cover the
language ecosystems. `semantic_version` and `univers` are Python dependencies and always present.
node (with npm's bundled node-semver) and Maven's maven-artifact jar come from Debian's nodejs/npm and
maven packages, which scripts/install-system-deps.sh installs where missing; if they are still missing
these tests fail with an install hint, never skip.
Every generator is seeded; failures print the seed and the pairs.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import semantic_version
from univers.versions import NugetVersion, RubygemsVersion

from scanner.ecosystems import compare, is_valid

SEED = 20240613
# npm's bundled copy (NodeSource or upstream node), else Debian's node-semver package.
NODE_SEMVER = next(
    (
        p
        for p in (Path("/usr/lib/node_modules/npm/node_modules/semver"), Path("/usr/share/nodejs/semver"))
        if p.is_dir()
    ),
    Path("/usr/share/nodejs/semver"),
)
MAVEN_ARTIFACT = Path("/usr/share/java/maven-artifact-3.x.jar")
_PRE_IDS = ["alpha", "beta", "rc", "0", "1", "2", "10", "11", "a", "b", "A", "x-y", "alpha-1", "1a", "pre", "dev"]
_PSEUDO = "20210101000000-abcdef123456"


def _semver(rng: random.Random) -> str:
    text = ".".join(str(rng.choice([0, 1, 2, 3, 10, 11, 100])) for _ in range(3))
    if rng.random() < 0.6:
        text += "-" + ".".join(rng.choice([*_PRE_IDS, _PSEUDO]) for _ in range(rng.choice([1, 1, 2, 3])))
    if rng.random() < 0.2:
        text += "+" + rng.choice(["build", "1", "exp.sha.5114f85", "incompatible"])
    return text


def _report(seed: int, bad: list[str], total: int, oracle: str) -> str:
    return f"seed {seed}: {len(bad)} of {total} disagree with {oracle}:\n" + "\n".join(bad[:40])


def test_npm_matches_node_semver() -> None:
    node = shutil.which("node")
    if node is None or not NODE_SEMVER.is_dir():
        pytest.fail(
            f"node and npm's bundled node-semver ({NODE_SEMVER}) are missing: run scripts/install-system-deps.sh"
        )
    rng = random.Random(SEED)
    pairs = [(_semver(rng), _semver(rng)) for _ in range(5000)]
    pairs = [(("v" + a) if rng.random() < 0.1 else a, b) for a, b in pairs]
    candidates = sorted({a for a, _ in pairs} | {"=v1.2.3", " 1.2.3 ", "1.2", "01.2.3", "1.2.3-01", "V1.2.3", "1.2.3-"})
    program = (
        f"const s=require({json.dumps(str(NODE_SEMVER))});let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{{"
        "const [p,v]=JSON.parse(d);process.stdout.write(JSON.stringify("
        "[p.map(([a,b])=>s.compare(a,b)),v.map(x=>s.clean(x)!==null)]))})"
    )
    done = subprocess.run(
        [node, "-e", program], input=json.dumps([pairs, candidates]), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    orders, valid = json.loads(done.stdout)
    bad = [f"{a} vs {b}: node-semver {w}, ours {compare('npm', a, b)}" for (a, b), w in zip(pairs, orders, strict=True)]
    bad = [line for line, (a, b), w in zip(bad, pairs, orders, strict=True) if compare("npm", a, b) != w]
    bad += [f"{v!r}: node-semver clean {w}" for v, w in zip(candidates, valid, strict=True) if is_valid("npm", v) != w]
    assert not bad, _report(SEED, bad, len(pairs) + len(candidates), "node-semver")


def test_crates_semver_matches_semantic_version_precedence() -> None:
    rng = random.Random(SEED + 1)
    pairs = [(_semver(rng), _semver(rng)) for _ in range(5000)]
    bad = []
    for a, b in pairs:
        # semantic_version's precedence_key ends with the build, which SemVer precedence ignores.
        ka = semantic_version.Version(a).precedence_key[:4]
        kb = semantic_version.Version(b).precedence_key[:4]
        want = (ka > kb) - (ka < kb)
        if compare("crates.io", a, b) != want:
            bad.append(f"{a} vs {b}: semantic_version {want}, ours {compare('crates.io', a, b)}")
        if not (is_valid("crates.io", a) and semantic_version.validate(a)):
            bad.append(f"{a!r} should be valid")
    for text in ["1.2", "v1.2.3", "01.2.3", "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3-"]:
        if is_valid("crates.io", text) != semantic_version.validate(text):
            bad.append(f"{text!r}: semantic_version.validate says {semantic_version.validate(text)}")
    assert not bad, _report(SEED + 1, bad, len(pairs), "semantic_version")


# The generator writes qualifiers the conventional way, after a '-' (`1.0-beta-1`, `2.1-rc1`, `3.0-SNAPSHOT`),
# and leaves out the null qualifiers `ga`, `final` and `release`: there Maven's ComparableVersion and the
# specification model OSV uses part ways (scanner/versions/maven.py lists how), so Maven is no oracle for them.
_MAVEN_QUALIFIERS = ["alpha", "beta", "milestone", "rc", "cr", "snapshot", "SNAPSHOT", "sp", "a", "b", "m", "RC", "M"]
_MAVEN_QUALIFIERS += ["jre", "android", "redhat", "foo", "dev", "pre", "incubating"]


def _maven(rng: random.Random) -> str:
    text = str(rng.choice([0, 0, 1, 2, 3, 10, 11, 20, 2023]))
    for _ in range(rng.choice([0, 1, 2, 2, 2, 3])):
        text += "." + str(rng.choice([0, 0, 1, 2, 5, 9, 10, 12, 100]))
    if rng.random() < 0.5:
        text += "-" + rng.choice(_MAVEN_QUALIFIERS)
        if rng.random() < 0.6:
            text += rng.choice(["", "-", "."]) + str(rng.choice([0, 1, 2, 3, 10]))
    if rng.random() < 0.15:
        text += "-" + str(rng.choice([1, 2, 3]))
    if rng.random() < 0.1:
        text += "-SNAPSHOT"
    return text


def test_maven_matches_comparable_version() -> None:
    java = shutil.which("java")
    if java is None or not MAVEN_ARTIFACT.is_file():
        pytest.fail(f"java and Maven's {MAVEN_ARTIFACT} are missing: run scripts/install-system-deps.sh")
    rng = random.Random(SEED + 2)
    versions = [_maven(rng) for _ in range(3000)]
    # ComparableVersion's main() prints "   <previous> <op> <next>" for each adjacent pair of its arguments.
    done = subprocess.run(
        [java, "-cp", str(MAVEN_ARTIFACT), "org.apache.maven.artifact.versioning.ComparableVersion", *versions],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("   ")]
    assert len(lines) == len(versions) - 1
    bad = []
    for index, line in enumerate(lines):
        a, b = versions[index], versions[index + 1]
        op = line[len(f"   {a} ") :].split(" ", 1)[0]
        want = {"<": -1, "==": 0, ">": 1}[op]
        if compare("Maven", a, b) != want:
            bad.append(f"{a} vs {b}: ComparableVersion {want}, ours {compare('Maven', a, b)}")
    assert not bad, _report(SEED + 2, bad, len(lines), "Maven's ComparableVersion")


def _oracle_cmp(a: object, b: object) -> int:
    return -1 if a < b else (1 if a > b else 0)  # type: ignore[operator]


def _gem(rng: random.Random) -> str:
    text = ".".join(str(rng.choice([0, 1, 2, 3, 10])) for _ in range(rng.choice([1, 2, 3, 4])))
    for _ in range(rng.choice([0, 0, 1, 2])):
        text += "." + rng.choice(["a", "b", "pre", "rc", "beta", "alpha", "1", "0", "a1", "rc2", "A", "pre1"])
    if rng.random() < 0.15:
        text += "-" + rng.choice(["1", "pre", "rc.1", "x-y"])
    return text


def test_rubygems_matches_univers_gem_version_on_valid_versions() -> None:
    rng = random.Random(SEED + 3)
    pairs = [(_gem(rng), _gem(rng)) for _ in range(5000)]
    bad = []
    for a, b in pairs:
        assert is_valid("RubyGems", a) and RubygemsVersion.is_valid(a), a
        want = _oracle_cmp(RubygemsVersion(a), RubygemsVersion(b))
        if compare("RubyGems", a, b) != want:
            bad.append(f"{a} vs {b}: univers {want}, ours {compare('RubyGems', a, b)}")
    assert not bad, _report(SEED + 3, bad, len(pairs), "univers' Gem::Version port")


def _nuget(rng: random.Random) -> str:
    text = ".".join(str(rng.choice([0, 1, 2, 10, 11])) for _ in range(rng.choice([1, 2, 3, 4])))
    if rng.random() < 0.5:
        parts = ["alpha", "Alpha", "beta", "BETA", "rc", "1", "2", "10", "x-y", "a1", "01"]
        text += "-" + ".".join(rng.choice(parts) for _ in range(rng.choice([1, 2, 3])))
    if rng.random() < 0.2:
        text += "+" + rng.choice(["b", "1", "meta.2"])
    return text


def test_nuget_matches_univers_on_ordering_and_validity() -> None:
    rng = random.Random(SEED + 4)
    pairs = [(_nuget(rng), _nuget(rng)) for _ in range(5000)]
    bad = []
    checked = 0
    for a, b in pairs:
        if is_valid("NuGet", a) != NugetVersion.is_valid(a):
            bad.append(f"{a!r}: univers says valid={NugetVersion.is_valid(a)}")
        if not (NugetVersion.is_valid(a) and NugetVersion.is_valid(b)):
            continue
        checked += 1
        want = _oracle_cmp(NugetVersion(a), NugetVersion(b))
        if compare("NuGet", a, b) != want:
            bad.append(f"{a} vs {b}: univers {want}, ours {compare('NuGet', a, b)}")
    assert checked > 3000
    assert not bad, _report(SEED + 4, bad, len(pairs), "univers' NuGet.Versioning port")
