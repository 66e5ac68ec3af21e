"""Readers for tests/fixtures/versions: one function per file grammar in FORMAT.md there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "versions"
SIGN = {"<": -1, "=": 0, "==": 0, ">": 1}


@dataclass(frozen=True)
class Case:
    """`a op b`: compare(a, b) must be `want` (and compare(b, a) must be -want)."""

    a: str
    want: int
    b: str
    where: str  # file:line, for failure messages

    def __str__(self) -> str:
        op = {-1: "<", 0: "=", 1: ">"}[self.want]
        return f"{self.where}: {self.a} {op} {self.b}"


def scalibr(name: str) -> list[Case]:
    """osv-scalibr `a op b` lines: exactly one space between fields; `# ` and `// ` lines are comments."""
    cases = []
    path = FIXTURES / "scalibr" / name
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith(("# ", "// ")):
            continue
        fields = line.split(" ")
        assert len(fields) == 3, f"{path.name}:{number}: not `a op b`: {line!r}"
        cases.append(Case(fields[0], SIGN[fields[1]], fields[2], f"{path.name}:{number}"))
    return cases


def claircore(name: str) -> list[list[str]]:
    """claircore lines: whitespace-separated fields; blank lines and `#` lines skipped."""
    rows = []
    for line in (FIXTURES / "claircore-rpmver" / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split())
    return rows


def claircore_cases(name: str) -> list[Case]:
    cases = []
    for number, fields in enumerate(claircore(name), 1):
        assert len(fields) == 3, fields
        cases.append(Case(fields[0], SIGN[fields[1]], fields[2], f"{name}:case {number}"))
    return cases


def dpkg_data() -> list[Case]:
    """dpkg's Dpkg_Version.t `__DATA__`: `a b result` with result -1, 0 or 1."""
    cases = []
    path = FIXTURES / "dpkg-version.data"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        a, b, result = line.split(" ")
        cases.append(Case(a, int(result), b, f"{path.name}:{number}"))
    return cases


@dataclass(frozen=True)
class ApkLine:
    """One apk-tools version.data case: an ordering (`ops`, possibly negated) or a validity check."""

    where: str
    a: str
    ops: str = ""  # characters of <, >, =, ~ ; empty for a validity line
    negated: bool = False
    b: str = ""
    valid: bool = True  # for validity lines


def apk_data() -> list[ApkLine]:
    """apk-tools test/unit/version.data: `#` starts a comment; fields split on whitespace; `!` negates."""
    lines = []
    path = FIXTURES / "apk-version.data"
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{path.name}:{number}"
        fields = text.split()
        if len(fields) == 1:
            version = fields[0]
            invalid = version.startswith("!")
            lines.append(ApkLine(where, version[1:] if invalid else version, valid=not invalid))
            continue
        assert len(fields) == 3, f"{where}: {raw!r}"
        a, op, b = fields
        lines.append(ApkLine(where, a, op.lstrip("!"), op.startswith("!"), b))
    return lines
