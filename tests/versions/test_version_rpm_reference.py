"""Differential test: rpm ordering against python3-rpm's `rpm.ver` + `rpm.labelCompare` on this machine.

The versions are real ones (tests/fixtures/rpm/expected: CBL-Mariner 2.0 and RHEL 8 packages),
mutated the ways that stress rpmvercmp: `~` and `^` segments, epochs (including an empty one),
letters, case, digits bumped and zero-padded, other separators, releases dropped or emptied. rpm
itself parses every EVR (rpm.ver), so the split into epoch, version and release is checked too. The
generator is seeded, and a failure prints the seed and the failing pairs.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from reference_tools import rpm_compare
from version_fixtures import claircore_cases, scalibr

from scanner.ecosystems import compare
from scanner.versions.rpm import rpmvercmp

SEED = 20240612
PAIRS = 4000
RPM_EXPECTED = Path(__file__).parents[1] / "fixtures" / "rpm" / "expected"
_DIGITS = re.compile(r"\d+")
_PIECES = ["~rc1", "~", "~~", "^", "^git1", "^20240101", "~pre^1", "a", "b", "_1", "+git", ".0", ".1", "p1", "Z"]


def real_evrs() -> list[str]:
    found: set[str] = set()
    for path in sorted(RPM_EXPECTED.glob("*.json")):
        for package in json.loads(path.read_text(encoding="utf-8"))["packages"]:
            epoch = "" if package["epoch"] is None else f"{package['epoch']}:"
            found.add(f"{epoch}{package['version']}-{package['release']}")
    evrs = sorted(found)
    assert len(evrs) >= 50, f"too few rpm versions in {RPM_EXPECTED} ({len(evrs)})"
    return evrs


def _bump_digits(rng: random.Random, text: str) -> str:
    runs = list(_DIGITS.finditer(text))
    if not runs:
        return text + "1"
    run = rng.choice(runs)
    number = int(run.group())
    new = rng.choice([str(number + 1), str(max(number - 1, 0)), "0" + run.group(), "00", str(number * 100)])
    return text[: run.start()] + new + text[run.end() :]


def _insert(rng: random.Random, text: str, piece: str) -> str:
    spot = rng.randrange(len(text) + 1)
    return text[:spot] + piece + text[spot:]


def mutate(rng: random.Random, evr: str) -> str:
    head, colon, rest = evr.partition(":")
    epoch, rest = (head, rest) if colon else (None, evr)
    version, hyphen, release = rest.rpartition("-")
    version, release_or_none = (version, release) if hyphen else (rest, None)
    kind = rng.randrange(9)
    if kind == 0:
        version = _bump_digits(rng, version)
    elif kind == 1:
        version = _insert(rng, version, rng.choice(_PIECES))
    elif kind == 2:
        release_or_none = _insert(rng, release_or_none or "1", rng.choice(_PIECES))
    elif kind == 3:
        epoch = rng.choice([None, "0", "1", "2", "01", ""])
    elif kind == 4:
        release_or_none = rng.choice([None, "", "1", "0", "1.el9", "2.cm2", "1.fc39", "1.el9_3.1"])
    elif kind == 5:
        release_or_none = _bump_digits(rng, release_or_none or "1")
    elif kind == 6:
        version = version.swapcase() if rng.random() < 0.5 else version.replace(".", rng.choice(["_", "+", "", ".."]))
    elif kind == 7:
        version = version + rng.choice(["", ".0", "a", ".a", "0"])
    else:
        version = version.rsplit(".", 1)[0] if "." in version else version + ".1"
    text = version if release_or_none is None else f"{version}-{release_or_none}"
    return text if epoch is None else f"{epoch}:{text}"


def make_pairs(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    bases = real_evrs()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        base = rng.choice(bases)
        shape = rng.random()
        if shape < 0.4:
            pair = (mutate(rng, base), mutate(rng, base))
        elif shape < 0.7:
            pair = (base, mutate(rng, base))
        elif shape < 0.9:
            pair = (mutate(rng, mutate(rng, base)), mutate(rng, base))
        else:
            pair = (base, rng.choice(bases))
        if pair[0] != pair[1] and pair[0] and pair[1]:
            pairs.append(pair)
    return pairs


def test_rpm_evr_ordering_matches_python3_rpm_on_mutated_real_versions() -> None:
    pairs = make_pairs(SEED, PAIRS)
    data = [(c.a, c.b) for c in scalibr("redhat-versions.txt")]
    pairs += data
    expected = rpm_compare([("evr", a, b) for a, b in pairs])
    bad = [
        f"{a!r} vs {b!r}: rpm {want}, ours {compare('Red Hat', a, b)}"
        for (a, b), want in zip(pairs, expected, strict=True)
        if compare("Red Hat", a, b) != want
    ]
    print(f"checked {len(pairs)} EVR pairs ({PAIRS} generated with seed {SEED}, {len(data)} from redhat-versions.txt)")
    assert not bad, f"seed {SEED}: {len(bad)} of {len(pairs)} pairs disagree with rpm:\n" + "\n".join(bad[:40])


def test_rpmvercmp_matches_python3_rpm_on_bare_versions() -> None:
    rng = random.Random(SEED + 1)
    pairs = [(a.partition(":")[2] or a, b.partition(":")[2] or b) for a, b in make_pairs(SEED + 1, 1500)]
    pairs = [(rng.choice([a, a.rpartition("-")[0] or a]), b) for a, b in pairs]
    data = [(c.a, c.b) for c in claircore_cases("rpmvercmp")]
    pairs += data
    expected = rpm_compare([("vercmp", a, b) for a, b in pairs])
    bad = [
        f"{a!r} vs {b!r}: rpm {want}, ours {rpmvercmp(a, b)}"
        for (a, b), want in zip(pairs, expected, strict=True)
        if rpmvercmp(a, b) != want
    ]
    print(f"checked {len(pairs)} version pairs ({len(pairs) - len(data)} generated, {len(data)} from claircore)")
    assert not bad, f"seed {SEED + 1}: {len(bad)} of {len(pairs)} pairs disagree with rpm:\n" + "\n".join(bad[:40])
