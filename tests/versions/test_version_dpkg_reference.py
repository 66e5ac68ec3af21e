"""Differential test: Debian ordering and validity against `dpkg --compare-versions` on this machine.

The versions are real ones (this machine's /var/lib/dpkg/status and the dpkg fixtures of
tests/fixtures/dpkg), mutated the ways that stress the algorithm: digits bumped and zero-padded,
`~rc1`, `~`, `+b1`, `+deb12u1` appended, epochs added and removed, revisions changed, letters
flipped in case. The generator is seeded, and a failure prints the seed and the failing pairs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from reference_tools import dpkg_compare, dpkg_syntax
from version_fixtures import dpkg_data, scalibr

from scanner.ecosystems import compare, is_valid

SEED = 20240611
PAIRS = 3000
STATUS = Path("/var/lib/dpkg/status")
DPKG_FIXTURES = Path(__file__).parents[1] / "fixtures" / "dpkg"
_VERSION_FIELD = re.compile(r"^Version: (\S+)$", re.M)
_DIGITS = re.compile(r"\d+")
_SUFFIXES = ["~rc1", "~", "~~", "~beta2", "+b1", "+deb12u1", ".1", "a", "+really1.0", "+dfsg", ".0", "~0"]
_REVISIONS = ["1", "0", "2", "1ubuntu1", "1+b1", "1~bpo12+1", "1.1", "0.1", "10", "1+deb12u1", "1build1"]


def real_versions() -> list[str]:
    found: set[str] = set()
    sources = [STATUS, *(p for p in DPKG_FIXTURES.rglob("*") if p.is_file())]
    for source in sources:
        if source.exists():
            found.update(_VERSION_FIELD.findall(source.read_text(encoding="utf-8", errors="replace")))
    versions = sorted(v for v in found if is_valid("Debian", v))
    assert len(versions) >= 100, f"too few real Debian versions found ({len(versions)}) in {STATUS} and {DPKG_FIXTURES}"
    return versions


def _split(version: str) -> tuple[str, str, str]:
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "", version
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def _join(epoch: str, upstream: str, revision: str) -> str:
    return (f"{epoch}:" if epoch else "") + upstream + (f"-{revision}" if revision else "")


def _bump_digits(rng: random.Random, text: str) -> str:
    runs = list(_DIGITS.finditer(text))
    if not runs:
        return text
    run = rng.choice(runs)
    number = int(run.group())
    new = rng.choice([str(number + 1), str(max(number - 1, 0)), "0" + run.group(), "0", str(number * 10 + 9)])
    return text[: run.start()] + new + text[run.end() :]


def mutate(rng: random.Random, version: str) -> str:
    epoch, upstream, revision = _split(version)
    kind = rng.randrange(9)
    if kind == 0:
        upstream = _bump_digits(rng, upstream)
    elif kind == 1:
        upstream += rng.choice(_SUFFIXES)
    elif kind == 2:
        revision = (revision or "1") + rng.choice(_SUFFIXES)
    elif kind == 3:
        epoch = rng.choice(["", "0", "1", "2", "10"])
    elif kind == 4:
        revision = rng.choice([*_REVISIONS, ""])
    elif kind == 5:
        revision = _bump_digits(rng, revision) if revision else rng.choice(_REVISIONS)
    elif kind == 6:
        upstream = upstream.swapcase() if rng.random() < 0.5 else upstream + rng.choice("aZ")
    elif kind == 7 and revision:
        upstream += "-" + rng.choice(["1", "a", "git"])  # a '-' inside the upstream part
    else:
        upstream = upstream.rsplit(".", 1)[0] if "." in upstream else upstream + ".0"
    return _join(epoch, upstream, revision)


def make_pairs(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    bases = real_versions()
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
        if pair[0] != pair[1] and is_valid("Debian", pair[0]) and is_valid("Debian", pair[1]):
            pairs.append(pair)
    return pairs


def test_debian_ordering_matches_dpkg_on_mutated_real_versions() -> None:
    pairs = make_pairs(SEED, PAIRS)
    data = [(c.a, c.b) for c in dpkg_data() + scalibr("debian-versions.txt")]
    pairs += data
    expected = dpkg_compare(pairs)
    bad = [
        f"{a!r} vs {b!r}: dpkg {want}, ours {compare('Debian', a, b)}"
        for (a, b), want in zip(pairs, expected, strict=True)
        if compare("Debian", a, b) != want
    ]
    print(f"checked {len(pairs)} pairs ({PAIRS} generated with seed {SEED}, {len(data)} from the data files)")
    assert not bad, f"seed {SEED}: {len(bad)} of {len(pairs)} pairs disagree with dpkg:\n" + "\n".join(bad[:40])


def test_debian_validity_matches_dpkg() -> None:
    """is_valid is False exactly when dpkg rejects the version or warns about its syntax."""
    rng = random.Random(SEED + 1)
    bases = real_versions()
    damage = ["_", "!", "1:", ":", "-", "a:", "1:a", "é", "/", "=", "1.0-", "-1", "99999999999:", "0:", ":1"]
    candidates = set(rng.sample(bases, 200))
    for base in rng.sample(bases, 200):
        spot = rng.randrange(len(base) + 1)
        candidates.add(base[:spot] + rng.choice(damage) + base[spot:])
    for base in rng.sample(bases, 50):
        candidates.update({"a" + base, base + "-", "1:" + base.swapcase(), base.replace(".", ":", 1)})
    versions = sorted(v for v in candidates if v.strip() == v and v)  # dpkg trims; it treats "" as "no version"
    messages = dpkg_syntax(versions)
    bad = [
        f"{v!r}: is_valid {is_valid('Debian', v)}, dpkg says {message or 'fine'}"
        for v, message in zip(versions, messages, strict=True)
        if is_valid("Debian", v) != (message == "")
    ]
    assert sum(1 for m in messages if m) > 100, "the damaged versions should include many that dpkg rejects"
    assert not bad, f"seed {SEED + 1}: validity disagrees with dpkg:\n" + "\n".join(bad[:40])
