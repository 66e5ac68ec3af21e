"""OSV ecosystem names and purl namespaces for distributions (pure)."""

from __future__ import annotations

from scanner.model.types import OSInfo

# os-release ID -> (OSV ecosystem prefix, how much of VERSION_ID the OSV release suffix keeps)
# "major" keeps the first dotted part; "minor" the first two; "full" all of it; "" none.
_ECOSYSTEMS: dict[str, tuple[str, str]] = {
    "debian": ("Debian", "major"),
    "ubuntu": ("Ubuntu", "minor"),
    "alpine": ("Alpine", "minor"),  # Alpine:v3.19, the "v" is added below
    "almalinux": ("AlmaLinux", "major"),
    "rocky": ("Rocky Linux", "major"),
    "rhel": ("Red Hat", ""),
    "centos": ("Red Hat", ""),
    "fedora": ("Fedora", "major"),
    "azurelinux": ("Azure Linux", "minor"),
    "mariner": ("Mariner", "minor"),
    "sles": ("SUSE", ""),
    "opensuse-leap": ("openSUSE", ""),
    "opensuse-tumbleweed": ("openSUSE", ""),
    "wolfi": ("Wolfi", ""),
    "chainguard": ("Chainguard", ""),
    "ol": ("Oracle Linux", "major"),
    "amzn": ("Amazon Linux", "major"),
    "photon": ("Photon OS", "minor"),
}


def _cut(version: str, how: str) -> str:
    parts = version.split(".")
    if how == "major":
        return parts[0]
    if how == "minor":
        return ".".join(parts[:2])
    if how == "full":
        return version
    return ""


def os_ecosystem(os_info: OSInfo | None) -> str:
    """OSV ecosystem for packages of this OS: `Debian:12`, `Ubuntu:22.04`, `Alpine:v3.19`…

    Unknown distributions give their os-release ID as is, so nothing is silently matched against the
    wrong distribution's advisories later.
    """
    if os_info is None or not os_info.id:
        return ""
    known = _ECOSYSTEMS.get(os_info.id)
    if known is None:
        return os_info.id
    prefix, how = known
    if os_info.id == "alpine" and os_info.version == "edge":
        return "Alpine:edge"
    suffix = _cut(os_info.version, how) if os_info.version else ""
    if os_info.id == "alpine" and suffix:
        suffix = "v" + suffix
    return f"{prefix}:{suffix}" if suffix else prefix


def purl_namespace(os_info: OSInfo | None) -> str:
    """purl namespace for OS packages: the os-release ID (debian, ubuntu, alpine, almalinux…)."""
    return os_info.id if os_info and os_info.id else ""


def purl_distro(os_info: OSInfo | None) -> str:
    """purl `distro` qualifier, e.g. `debian-12`, `alpine-3.19.1`."""
    if os_info is None or not os_info.id:
        return ""
    return f"{os_info.id}-{os_info.version}" if os_info.version else os_info.id
