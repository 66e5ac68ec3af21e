"""Identify the distribution from os-release, falling back to the distribution-specific release files.

Precedence: `/etc/os-release`, then `/usr/lib/os-release` (as the freedesktop spec says), then the
older per-distribution files for images that predate os-release (CentOS 5/6, SLES 11, Photon 1…).
The first file that names a distribution wins. Binaries (e.g. `/bin/busybox`) are not read here.

The OS's CPE is os-release CPE_NAME, else `/etc/system-release-cpe` whichever file named the distribution
(CentOS 6 has no os-release, RHEL 7's os-release and its system-release-cpe agree): Red Hat scopes its
advisories by the CPE's product stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from scanner.inventory.detectors.base import DetectContext, Extraction, FileSet, FixedPathDetector
from scanner.model.types import OSInfo, Warning_

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
# Inside double quotes the shell only unescapes these (os-release follows shell quoting).
_DQUOTE_ESCAPABLE = '$"\\`'
_NUMBER = re.compile(r"\d+(?:\.\d+)*")  # a release number: 12, 12.5, 3.0.20240417
# "CentOS release 5.11 (Final)", "Amazon Linux AMI release 2018.03", "CentOS Stream release 8".
_RELEASE_LINE = re.compile(r"(?P<name>.+?)\s+release\s+(?P<version>\d[\w.]*)", re.IGNORECASE)
# Debian's VERSION before VERSION_CODENAME existed: "8 (jessie)".
_PAREN_CODENAME = re.compile(r"\(([a-z]+)\)")
# A CPE as images write it: `cpe:/o:redhat:enterprise_linux:8::baseos`, `cpe:2.3:o:amazon:amazon_linux:2`.
# Longer or stranger text is not a CPE and is not kept.
_CPE = re.compile(r"cpe:[A-Za-z0-9._:/~%*+-]{3,200}")
SYSTEM_RELEASE_CPE = "/etc/system-release-cpe"

# Distribution names as the release files spell them (lower case prefix) -> os-release ID.
_NAME_IDS: tuple[tuple[str, str], ...] = (
    ("red hat enterprise linux", "rhel"),
    ("centos", "centos"),
    ("scientific linux", "scientific"),
    ("fedora", "fedora"),
    ("oracle linux", "ol"),
    ("enterprise linux", "ol"),  # Oracle Linux 5 says "Enterprise Linux Enterprise Linux Server release 5.x"
    ("amazon linux", "amzn"),
    ("rocky linux", "rocky"),
    ("almalinux", "almalinux"),
    ("ubuntu", "ubuntu"),
    ("debian", "debian"),
)

# CPE vendor:product (system-release-cpe) -> os-release ID.
_CPE_IDS: dict[tuple[str, str], str] = {
    ("centos", "linux"): "centos",
    ("centos", "centos"): "centos",
    ("redhat", "enterprise_linux"): "rhel",
    ("fedoraproject", "fedora"): "fedora",
    ("amazon", "linux"): "amzn",
    ("amazon", "amazon_linux"): "amzn",
    ("oracle", "linux"): "ol",
    ("scientificlinux", "scientificlinux"): "scientific",
    ("rocky", "rocky"): "rocky",
    ("almalinux", "almalinux"): "almalinux",
}


def parse_key_values(text: str) -> dict[str, str]:
    """Parse an os-release style file (also lsb-release): KEY=value lines with shell quoting.

    Comments and blank lines are skipped; lines that are not assignments are ignored (the spec says
    a reader should skip what it does not understand). A later assignment overrides an earlier one.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if match:
            values[match.group(1)] = _unquote(match.group(2))
    return values


def _unquote(raw: str) -> str:
    """Shell-style value: single quotes literal, double quotes with backslash escapes, unquoted text
    ending at whitespace (so a trailing `# comment` or stray blank is dropped)."""
    out: list[str] = []
    chars = iter(raw)
    for char in chars:
        if char == "'":
            out.extend(_until(chars, "'", escapable=""))
        elif char == '"':
            out.extend(_until(chars, '"', escapable=_DQUOTE_ESCAPABLE))
        elif char == "\\":
            out.append(next(chars, ""))
        elif char.isspace():
            break
        else:
            out.append(char)
    return "".join(out)


def _until(chars: Iterator[str], close: str, escapable: str) -> Iterator[str]:
    """Characters up to the closing quote (an unterminated quote runs to the end of the line)."""
    for char in chars:
        if char == close:
            return
        if char == "\\" and escapable:
            following = next(chars, "")
            if following in escapable:
                yield following
            else:
                yield char
                yield following
        else:
            yield char


def parse_os_release(text: str, source: str) -> OSInfo | None:
    """OSInfo from os-release content; None when it names no distribution (no ID)."""
    fields = parse_key_values(text)
    os_id = fields.get("ID", "").strip().lower()
    if not os_id:
        return None
    version = fields.get("VERSION_ID", "")
    if os_id == "alpine" and _is_alpine_edge(version, fields.get("PRETTY_NAME", "")):
        version = "edge"
    return OSInfo(
        id=os_id,
        version=version,
        codename=_codename(os_id, fields),
        name=fields.get("NAME", ""),
        pretty_name=fields.get("PRETTY_NAME", ""),
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
        source=source,
        cpe=_cpe(fields.get("CPE_NAME", "")),
    )


def _cpe(text: str) -> str:
    """The CPE written in `text` (a CPE_NAME value or a system-release-cpe line), "" when it is not one."""
    candidate = text.strip()
    return candidate if _CPE.fullmatch(candidate) else ""


def _codename(os_id: str, fields: dict[str, str]) -> str:
    codename = fields.get("VERSION_CODENAME") or fields.get("UBUNTU_CODENAME") or ""
    if codename:
        return codename
    # Debian before 9 has no VERSION_CODENAME but writes it in VERSION ("8 (jessie)"); Debian advisories
    # are keyed by codename, so it is worth recovering. Other families' parentheses ("(Core)",
    # "(Maipo)") are marketing names that no advisory source uses: left empty, as os-release does.
    if os_id == "debian" or "debian" in fields.get("ID_LIKE", "").split():
        match = _PAREN_CODENAME.search(fields.get("VERSION", ""))
        if match:
            return match.group(1)
    return ""


def _is_alpine_edge(version: str, pretty_name: str) -> bool:
    # edge reports the next release's alpha as VERSION_ID (3.22.0_alpha20250108); PRETTY_NAME says edge.
    return version == "edge" or "_alpha" in version or pretty_name.lower().endswith(" edge")


def _apply_debian_version(info: OSInfo, debian_version: str | None) -> OSInfo:
    """Debian testing/sid has no VERSION_ID: take /etc/debian_version when it is a release number."""
    if info.id != "debian" or info.version or debian_version is None:
        return info
    version = debian_version.strip()
    if not _NUMBER.fullmatch(version):
        return info  # "trixie/sid": the codename from os-release is all there is
    return replace(info, version=version.split(".")[0])  # VERSION_ID is the major number on Debian


# ---- distribution-specific fallbacks: each takes the file content and returns OSInfo or None ----


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _id_for_name(name: str) -> str:
    lowered = name.lower()
    for prefix, os_id in _NAME_IDS:
        if lowered.startswith(prefix):
            return os_id
    # Unknown: the first word, lower case, so it is never mistaken for a known distribution.
    return lowered.split()[0] if lowered.split() else ""


def _from_release_line(text: str, source: str) -> OSInfo | None:
    """redhat-release, centos-release, system-release: "<Name> release <version> (<label>)"."""
    line = _first_line(text)
    match = _RELEASE_LINE.match(line)
    if not match:
        return None
    name = match.group("name").strip()
    os_id = _id_for_name(name)
    if not os_id:
        return None
    return OSInfo(id=os_id, version=match.group("version"), name=name, pretty_name=line, source=source)


def _from_cpe(text: str, source: str) -> OSInfo | None:
    """system-release-cpe: `cpe:/o:centos:linux:6:GA` or `cpe:2.3:o:amazon:amazon_linux:2`."""
    cpe = _first_line(text)
    parts = cpe.split(":")
    if cpe.startswith("cpe:2.3:"):
        del parts[1]  # drop the "2.3" so both forms line up: cpe, part, vendor, product, version
    if len(parts) < 4 or parts[0] != "cpe" or parts[1] not in ("/o", "o"):
        return None
    vendor, product = parts[2].lower(), parts[3].lower()
    version = parts[4] if len(parts) > 4 and parts[4] not in ("", "*", "-") else ""
    os_id = _CPE_IDS.get((vendor, product), vendor)
    return OSInfo(id=os_id, version=version, pretty_name=cpe, source=source, cpe=_cpe(cpe)) if os_id else None


def _from_alpine_release(text: str, source: str) -> OSInfo | None:
    version = _first_line(text)
    if not version:
        return None
    if _is_alpine_edge(version, ""):
        version = "edge"
    return OSInfo(id="alpine", version=version, name="Alpine Linux", source=source)


def _from_debian_version(text: str, source: str) -> OSInfo | None:
    """ "12.5" -> debian 12 (VERSION_ID is the major number); "trixie/sid" -> codename trixie."""
    content = _first_line(text)
    if not content:
        return None
    if _NUMBER.fullmatch(content):
        return OSInfo(id="debian", version=content.split(".")[0], name="Debian GNU/Linux", source=source)
    codename = content.split("/")[0] if content.endswith("/sid") else ""
    return OSInfo(id="debian", codename=codename, name="Debian GNU/Linux", source=source)


def _from_lsb_release(text: str, source: str) -> OSInfo | None:
    fields = parse_key_values(text)
    distrib = fields.get("DISTRIB_ID", "").strip()
    if not distrib:
        return None
    return OSInfo(
        id=distrib.lower(),
        version=fields.get("DISTRIB_RELEASE", ""),
        codename=fields.get("DISTRIB_CODENAME", ""),
        name=distrib,
        pretty_name=fields.get("DISTRIB_DESCRIPTION", ""),
        source=source,
    )


def _from_suse_release(text: str, source: str) -> OSInfo | None:
    """SuSE-release: "SUSE Linux Enterprise Server 11 (x86_64)" then "VERSION = 11", "PATCHLEVEL = 4"."""
    title = _first_line(text)
    fields = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in text.splitlines()[1:])}
    lowered = title.lower()
    if "enterprise server" in lowered:
        os_id = "sles"
    elif "enterprise desktop" in lowered:
        os_id = "sled"
    elif "leap" in lowered:
        os_id = "opensuse-leap"
    elif "opensuse" in lowered:
        os_id = "opensuse"
    else:
        return None
    version = fields.get("VERSION", "")
    patch = fields.get("PATCHLEVEL", "")
    if version and patch and patch != "0":
        version = f"{version}.{patch}"  # os-release writes SLES 15 SP2 as VERSION_ID 15.2
    return OSInfo(id=os_id, version=version, name=title.split(" (")[0], pretty_name=title, source=source)


def _versioned_title(os_id: str, parts: int) -> Callable[[str, str], OSInfo | None]:
    """Files whose first line is "<Name> <version>[.<build>]": photon, mariner, azurelinux.

    `parts` dotted components are kept so the version matches that distribution's VERSION_ID
    (mariner-release says 2.0.20220226 where os-release says 2.0).
    """

    def parse(text: str, source: str) -> OSInfo | None:
        title = _first_line(text)
        match = _NUMBER.search(title)
        if not match:
            return None
        version = ".".join(match.group(0).split(".")[:parts])
        return OSInfo(id=os_id, version=version, name=title[: match.start()].strip(), pretty_name=title, source=source)

    return parse


# Tried in this order after os-release. Specific files come before generic ones: Oracle Linux ships a
# redhat-release that says "Red Hat Enterprise Linux", Ubuntu ships a debian_version that says
# "bookworm/sid", so the file naming the real distribution has to win.
_FALLBACKS: tuple[tuple[str, Callable[[str, str], OSInfo | None]], ...] = (
    ("/etc/azurelinux-release", _versioned_title("azurelinux", 2)),
    ("/etc/mariner-release", _versioned_title("mariner", 2)),
    ("/etc/photon-release", _versioned_title("photon", 2)),
    ("/etc/alpine-release", _from_alpine_release),
    ("/etc/SuSE-release", _from_suse_release),
    ("/etc/centos-release", _from_release_line),
    ("/etc/system-release", _from_release_line),
    ("/etc/redhat-release", _from_release_line),
    # The CPE has the major version only (centos 6, not 6.10): after the release-line files.
    (SYSTEM_RELEASE_CPE, _from_cpe),
    ("/etc/lsb-release", _from_lsb_release),
    ("/etc/debian_version", _from_debian_version),
)

REQUIRED_PATHS = frozenset((*OS_RELEASE_PATHS, *(path for path, _ in _FALLBACKS)))
# Release files are a few hundred bytes; a larger one is not read (the inventory is then Incomplete), so
# that a padded one cannot make the line-by-line parse claim gigabytes.
MAX_RELEASE_FILE = 64 * 1024


class OSReleaseDetector(FixedPathDetector):
    name = "os-release"
    version = 2
    group = "os"
    paths = frozenset(REQUIRED_PATHS)

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        wanted = REQUIRED_PATHS.intersection(files.paths())
        oversized = sorted(path for path in wanted if files.size(path) > MAX_RELEASE_FILE)
        incomplete = [Warning_(path, f"larger than {MAX_RELEASE_FILE} bytes; not read") for path in oversized]
        texts = {path: files.read(path).decode("utf-8", errors="replace") for path in wanted if path not in oversized}
        found = self._identify(texts)
        found.incomplete = incomplete
        return found

    def _identify(self, texts: dict[str, str]) -> Extraction:
        found = self._first_named(texts)
        if found.os is not None and not found.os.cpe and SYSTEM_RELEASE_CPE in texts:
            cpe = _cpe(_first_line(texts[SYSTEM_RELEASE_CPE]))
            if cpe:
                found.os = replace(found.os, cpe=cpe)
        return found

    def _first_named(self, texts: dict[str, str]) -> Extraction:
        warnings: list[Warning_] = []
        for path in OS_RELEASE_PATHS:
            if path not in texts:
                continue
            info = parse_os_release(texts[path], path)
            if info is not None:
                os_info = _apply_debian_version(info, texts.get("/etc/debian_version"))
                return Extraction(os=os_info, warnings=warnings)
            warnings.append(Warning_(path, "no ID field; distribution not identified from this file"))
        for path, parse in _FALLBACKS:
            if path in texts:
                info = parse(texts[path], path)
                if info is not None:
                    return Extraction(os=info, warnings=warnings)
                warnings.append(Warning_(path, "content not recognised"))
        return Extraction(warnings=warnings)
