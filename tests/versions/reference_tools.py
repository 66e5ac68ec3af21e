"""Batched calls into the reference implementations installed on this machine: dpkg and python3-rpm.

Thousands of pairs must finish in seconds, so no tool is started once per pair from Python: dpkg
runs inside a few `sh` loops fed by one `xargs` (one dpkg process per comparison, several loops in
parallel), and rpm's `labelCompare` runs in one system-python process reading every pair as JSON.
A missing tool fails the test with an install hint; it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"

# Each sh loop gets (id, a, b) triples; it prints "id result" with result -1, 0, 1, or "error <status>".
_DPKG_LOOP = r"""
while [ "$#" -ge 3 ]; do
  dpkg --compare-versions "$2" lt "$3" 2>/dev/null; s=$?
  if [ "$s" = 0 ]; then r=-1
  elif [ "$s" = 1 ]; then
    dpkg --compare-versions "$2" eq "$3" 2>/dev/null; s=$?
    if [ "$s" = 0 ]; then r=0; elif [ "$s" = 1 ]; then r=1; else r="error $s"; fi
  else r="error $s"; fi
  printf '%s %s\n' "$1" "$r"
  shift 3
done
"""

# Each sh loop gets (id, version) pairs; it prints "id status first-stderr-line" for `dpkg --compare-versions v eq v`.
_DPKG_SYNTAX_LOOP = r"""
while [ "$#" -ge 2 ]; do
  msg=$(dpkg --compare-versions "$2" eq "$2" 2>&1); s=$?
  printf '%s %s %s\n' "$1" "$s" "$(printf '%s' "$msg" | head -n 1)"
  shift 2
done
"""

_RPM_PROGRAM = r"""
import json, sys
import rpm
out = []
for kind, a, b in json.load(sys.stdin):
    if kind == "evr":
        # rpm parses each EVR itself (rpmverParse, the same parseEVR split); labelCompare then compares.
        va, vb = rpm.ver(a), rpm.ver(b)
        out.append(rpm.labelCompare((va.e, va.v, va.r), (vb.e, vb.v, vb.r)))
    else:
        # A bare version: labelCompare of two labels that differ only in the version is rpmvercmp.
        out.append(rpm.labelCompare((None, a, None), (None, b, None)))
json.dump(out, sys.stdout)
"""


def require_dpkg() -> str:
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        pytest.fail("dpkg is not installed; it is the reference for Debian version ordering: apt-get install dpkg")
    return dpkg


def require_python3_rpm() -> None:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import rpm"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(
            "python3-rpm is not importable by /usr/bin/python3; it is the reference for rpm version ordering: "
            f"run scripts/install-system-deps.sh (it installs python3-rpm). {probe.stderr.strip()}"
        )


def _xargs(script: str, args: list[str], per_loop: int) -> list[str]:
    payload = b"".join(arg.encode() + b"\0" for arg in args)
    command = ["xargs", "-0", "-n", str(per_loop), "-P", str(os.cpu_count() or 1), "sh", "-c", script, "sh"]
    done = subprocess.run(command, input=payload, capture_output=True, check=True, timeout=600)
    return done.stdout.decode().splitlines()


def dpkg_compare(pairs: list[tuple[str, str]]) -> list[int | str]:
    """`dpkg --compare-versions` on every pair: -1, 0, 1, or "error <status>" when dpkg rejects a version."""
    require_dpkg()
    args = [field for index, (a, b) in enumerate(pairs) for field in (str(index), a, b)]
    results: dict[int, int | str] = {}
    for line in _xargs(_DPKG_LOOP, args, 3 * 100):
        index, result = line.split(" ", 1)
        results[int(index)] = result if result.startswith("error") else int(result)
    assert len(results) == len(pairs), "dpkg loop lost pairs"
    return [results[i] for i in range(len(pairs))]


def dpkg_syntax(versions: list[str]) -> list[str]:
    """For each version: "" when dpkg accepts it silently, else dpkg's first error or warning line."""
    require_dpkg()
    args = [field for index, version in enumerate(versions) for field in (str(index), version)]
    results: dict[int, str] = {}
    for line in _xargs(_DPKG_SYNTAX_LOOP, args, 2 * 50):
        index, status, message = [*line.split(" ", 2), ""][:3]
        results[int(index)] = message if status != "0" or message else ""
    assert len(results) == len(versions), "dpkg loop lost versions"
    return [results[i] for i in range(len(versions))]


def rpm_compare(cases: list[tuple[str, str, str]]) -> list[int]:
    """python3-rpm on (kind, a, b) cases: kind "evr" for EVR strings, "vercmp" for bare versions."""
    require_python3_rpm()
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", _RPM_PROGRAM], input=json.dumps(cases), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results: list[int] = json.loads(done.stdout)
    assert len(results) == len(cases)
    return results
